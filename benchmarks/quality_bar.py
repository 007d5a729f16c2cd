"""The quality bar of time to quality, and where a learning curve crosses it.

A policy is "good" when its world return beats greedy-by-the-same-learned-
model by at least the bar, with the paired 95% interval of the difference
above zero. The bar follows issue #20: 5% (`max_lift`) when the world's
one-step lookahead oracle gains at least 10% over its greedy oracle, else
`gain_fraction` (one half) of that gain, both oracles run on the very
episodes the agent was evaluated on (common random numbers). A world where
the lookahead oracle gains nothing leaves only the interval's condition.

Everything here is arithmetic on per-episode returns: no training, no
TensorFlow (`benchmarks/time_to_quality.py` runs the training).
"""

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from playlist_sim.evaluation.comparison import paired_differences

__all__ = ["GREEDY_MODEL", "QualityBar", "REFERENCES", "assess_curve",
           "quality_bar"]

GREEDY_MODEL = "greedy_user_model"
#: The baselines every curve point is compared with, on its episodes.
REFERENCES = (GREEDY_MODEL, "greedy_oracle", "lookahead_oracle")


@dataclasses.dataclass(frozen=True)
class QualityBar:
  """The lift over greedy-by-model a policy must reach, and why.

  Attributes:
    required_lift: relative lift over greedy-by-model's mean return.
    lookahead_gain: the lookahead oracle's relative gain over the greedy
      oracle on the same episodes.
    gain_fraction: share of that gain required.
    max_lift: the required lift when the gain is large.
    rule: the rule in words, for benchmark.json.
  """
  required_lift: float
  lookahead_gain: float
  gain_fraction: float
  max_lift: float
  rule: str


def quality_bar(returns: Mapping[str, np.ndarray], gain_fraction: float = 0.5,
                max_lift: float = 0.05) -> QualityBar:
  """The bar of the world whose oracles' returns are given.

  Args:
    returns: "greedy_oracle" and "lookahead_oracle" -> per-episode returns
      (or their mean).
    gain_fraction: share of the lookahead oracle's gain required, in (0, 1].
    max_lift: the lift required at most (issue #16's 5%).

  Returns:
    The bar.

  Raises:
    ValueError: for a missing oracle or a fraction outside (0, 1].
  """
  missing = [name for name in REFERENCES[1:] if name not in returns]
  if missing:
    raise ValueError(
        f"the quality bar needs the returns of {missing}: evaluate in a "
        "world with a ParametricListener (the oracles read its truth)")
  if not 0.0 < gain_fraction <= 1.0:
    raise ValueError(f"gain_fraction = {gain_fraction}: give a share of the "
                     "lookahead oracle's gain in (0, 1]")
  greedy = float(np.mean(returns["greedy_oracle"]))
  lookahead = float(np.mean(returns["lookahead_oracle"]))
  gain = lookahead / greedy - 1.0 if greedy else 0.0
  required = min(max_lift, gain_fraction * max(gain, 0.0))
  rule = (f"mean return >= greedy_user_model x (1 + {required:.4f}) and the "
          "paired 95% interval of (agent - greedy_user_model) above zero; "
          f"{required:.4f} = min({max_lift}, {gain_fraction} x the lookahead "
          f"oracle's gain over the greedy oracle, {gain:+.4f}, on the same "
          "episodes)")
  return QualityBar(required, gain, gain_fraction, max_lift, rule)


def _verdict(agent: np.ndarray, references: Mapping[str, np.ndarray],
             bar: QualityBar, seed: int) -> dict:
  """The agent against greedy-by-model on the same episodes."""
  greedy = np.asarray(references[GREEDY_MODEL], np.float64)
  if len(greedy) != len(agent):
    raise ValueError(
        f"{len(agent)} agent episodes but {len(greedy)} of greedy-by-model: "
        "evaluate both on the same episodes (num_eval_episodes)")
  difference = paired_differences({"agent": agent, GREEDY_MODEL: greedy},
                                  "agent", seed)[GREEDY_MODEL]
  return {"lift": difference["gain"], "difference": difference["difference"],
          "ci95": difference["ci95"],
          "passed": bool(difference["gain"] >= bar.required_lift and
                         difference["ci95"][0] > 0.0)}


def assess_curve(points: Sequence[Mapping], references: Mapping[str,
                                                                  np.ndarray],
                 final: Mapping, gain_fraction: float = 0.5,
                 max_lift: float = 0.05, seed: int = 0) -> dict:
  """Where a learning curve first clears the bar, confirmed at the end.

  Args:
    points: the curve, in order: {"returns": per-episode returns, and any
      other keys (progress, seconds), copied to the result}.
    references: `REFERENCES` -> per-episode returns on the curve's episodes.
    final: the run's final comparison, on its own (usually more) episodes:
      {"policies": name -> {"mean_return"}, "differences": baseline ->
      {"gain", "difference", "ci95"} (as `train_eval`'s metrics.json), and
      "episodes"}, with `REFERENCES` among the baselines; or {} for none.
    gain_fraction: see `quality_bar`.
    max_lift: see `quality_bar`.
    seed: seed of the bootstraps.

  Returns:
    {"bar", "curve" (each point with mean_return, lift, ci95, passed),
     "first_passed" (index or None), "final", "confirmed", "reason"}.
  """
  bar = quality_bar(references, gain_fraction, max_lift)
  curve, first = [], None
  for index, point in enumerate(points):
    returns = np.asarray(point["returns"], np.float64)
    row = {k: v for k, v in point.items() if k != "returns"}
    row.update(mean_return=float(returns.mean()),
               **_verdict(returns, references, bar, seed))
    curve.append(row)
    if first is None and row["passed"]:
      first = index
  result = {"bar": dataclasses.asdict(bar), "curve": curve,
            "first_passed": first, "final": None, "confirmed": False}
  if final:
    means = {name: policy["mean_return"]
             for name, policy in final["policies"].items()}
    final_bar = quality_bar(means, gain_fraction, max_lift)
    difference = final["differences"][GREEDY_MODEL]
    passed = bool(difference["gain"] >= final_bar.required_lift and
                  difference["ci95"][0] > 0.0)
    result["final"] = {"lift": difference["gain"],
                       "difference": difference["difference"],
                       "ci95": difference["ci95"], "passed": passed,
                       "episodes": final["episodes"],
                       "bar": dataclasses.asdict(final_bar)}
    result["confirmed"] = passed
  result["reason"] = _reason(result, bar)
  return result


def _reason(result: dict, bar: QualityBar) -> str | None:
  """Why there is no time to quality (None when there is one)."""
  curve, first = result["curve"], result["first_passed"]
  if first is not None and result["confirmed"]:
    return None
  if first is None:
    best = max(curve, key=lambda row: row["lift"]) if curve else None
    if best is None:
      return "no periodic evaluation ran"
    return (f"never reached: the best point (train step "
            f"{best.get('train_steps')}) lifts greedy_user_model by "
            f"{best['lift']:+.4f} with paired 95% interval "
            f"[{best['ci95'][0]:.4f}, {best['ci95'][1]:.4f}] of the "
            f"difference; the bar is {bar.required_lift:+.4f} and an "
            "interval above zero")
  final = result["final"]
  if final is None:
    return "reached, but there is no final evaluation to confirm it"
  return (f"reached at train step {curve[first].get('train_steps')}, but the "
          f"final evaluation ({final['episodes']} episodes) lifts "
          f"greedy_user_model by {final['lift']:+.4f}, interval "
          f"[{final['ci95'][0]:.4f}, {final['ci95'][1]:.4f}], against a bar "
          f"of {final['bar']['required_lift']:+.4f}")
