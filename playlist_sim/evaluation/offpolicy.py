"""`OffPolicyEvaluation`: run several estimators on one logged dataset.

The runner of Open Bandit Pipeline (`obp.ope.OffPolicyEvaluation`), with
its method and argument names, over our estimators (`estimators`, `robust`):

    ope = OffPolicyEvaluation(
        bandit_feedback=dict(reward=r, action=a, position=p, pscore=mu),
        ope_estimators=[IPS(), SNIPS(), DR(), SwitchDR(threshold=10.0)])
    ope.estimate_policy_values(action_dist=pi, estimated_rewards_by_reg_model=q)
    ope.summarize_off_policy_estimates(action_dist=pi, ...)
    ope.visualize_off_policy_estimates(action_dist=pi, ..., fig_dir="out")
    ope.evaluate_performance_of_estimators(ground_truth_policy_value=v, ...)

When the logging propensities were not logged, pass `estimated_pscore`
(e.g. from `regression.estimate_propensities`) instead of a `pscore` key.
Summaries are plain dicts (no pandas); `format_summary` prints one.
"""

import dataclasses
import math
import os
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from playlist_sim.evaluation.estimators import BanditEstimator
from playlist_sim.evaluation.inputs import EstimatorInputError

__all__ = ["METRICS", "OffPolicyEvaluation", "format_summary"]

#: Accuracy metrics of `evaluate_performance_of_estimators` (OBP's names).
METRICS = ("relative-ee", "se")


@dataclasses.dataclass
class OffPolicyEvaluation:
  """Several estimators on one logged dataset, OBP-style.

  Attributes:
    bandit_feedback: the logs: `reward` [n], `action` [n], optionally
      `position` [n] and `pscore` [n] (other keys, like `context`, are
      ignored).
    ope_estimators: the estimators, a list (named by `estimator_name`, which
      must then be distinct) or a dict name -> estimator.
  """
  bandit_feedback: Mapping[str, ArrayLike]
  ope_estimators: Sequence[BanditEstimator] | Mapping[str, BanditEstimator]

  def __post_init__(self):
    if isinstance(self.ope_estimators, Mapping):
      named = dict(self.ope_estimators)
    else:
      named = {}
      for estimator in self.ope_estimators:
        name = getattr(estimator, "estimator_name", None)
        if name in named:
          raise EstimatorInputError(
              "ope_estimators", f"OffPolicyEvaluation: two estimators are "
              f"named {name!r}; pass a dict name -> estimator instead")
        named[name] = estimator
    if not named:
      raise EstimatorInputError(
          "ope_estimators", "OffPolicyEvaluation: ope_estimators is empty")
    for name, estimator in named.items():
      if not isinstance(estimator, BanditEstimator):
        raise EstimatorInputError(
            "ope_estimators", f"OffPolicyEvaluation: {name!r} is a "
            f"{type(estimator).__name__}, not a BanditEstimator")
    for key in ("reward", "action"):
      if key not in self.bandit_feedback:
        raise EstimatorInputError(
            "bandit_feedback", f"OffPolicyEvaluation: bandit_feedback has no "
            f"{key!r} key (it needs reward, action and, unless you pass "
            "estimated_pscore, pscore)")
    self.estimators = named

  def _inputs(self, estimator: BanditEstimator, action_dist: ArrayLike,
              estimated_rewards_by_reg_model: ArrayLike | None,
              estimated_pscore: ArrayLike | None) -> dict:
    feedback = self.bandit_feedback
    pscore = (estimated_pscore if estimated_pscore is not None else
              feedback.get("pscore"))
    if pscore is None and "logging_propensities" in (
        estimator.required_arguments):
      raise EstimatorInputError(
          "estimated_pscore", "OffPolicyEvaluation: bandit_feedback has no "
          "pscore; pass estimated_pscore (see estimate_propensities)")
    inputs = dict(reward=feedback["reward"], action=feedback["action"],
                  position=feedback.get("position"), pscore=pscore,
                  action_dist=action_dist,
                  estimated_rewards_by_reg_model=(
                      estimated_rewards_by_reg_model))
    return {k: v for k, v in inputs.items() if v is not None}

  def estimate_policy_values(
      self, action_dist: ArrayLike,
      estimated_rewards_by_reg_model: ArrayLike | None = None,
      estimated_pscore: ArrayLike | None = None) -> dict[str, float]:
    """Every estimator's estimate of the target's value.

    Args:
      action_dist: float [n, K, L], the target policy's distribution.
      estimated_rewards_by_reg_model: float [n, K, L] (DM, DR and its kin).
      estimated_pscore: float [n], used instead of bandit_feedback's pscore.

    Returns:
      estimator name -> estimate.

    Raises:
      EstimatorInputError: for bad or missing inputs (named).
    """
    return {name: estimator.estimate_policy_value(**self._inputs(
        estimator, action_dist, estimated_rewards_by_reg_model,
        estimated_pscore)) for name, estimator in self.estimators.items()}

  def estimate_intervals(
      self, action_dist: ArrayLike,
      estimated_rewards_by_reg_model: ArrayLike | None = None,
      estimated_pscore: ArrayLike | None = None, alpha: float = 0.05,
      n_bootstrap_samples: int = 1000,
      random_state: int | np.random.Generator = 0
  ) -> dict[str, dict[str, float]]:
    """Every estimator's percentile-bootstrap interval.

    Args:
      action_dist: as for `estimate_policy_values`.
      estimated_rewards_by_reg_model: as for `estimate_policy_values`.
      estimated_pscore: as for `estimate_policy_values`.
      alpha: the intervals cover 1 - alpha.
      n_bootstrap_samples: bootstrap replicates.
      random_state: seed of the resampling (the same for every estimator).

    Returns:
      estimator name -> {"mean", "ci_low", "ci_high"}.
    """
    return {name: estimator.estimate_interval(
        **self._inputs(estimator, action_dist, estimated_rewards_by_reg_model,
                       estimated_pscore), alpha=alpha,
        n_bootstrap=n_bootstrap_samples, seed=random_state)
            for name, estimator in self.estimators.items()}

  def summarize_off_policy_estimates(
      self, action_dist: ArrayLike,
      estimated_rewards_by_reg_model: ArrayLike | None = None,
      estimated_pscore: ArrayLike | None = None, alpha: float = 0.05,
      n_bootstrap_samples: int = 1000,
      random_state: int | np.random.Generator = 0
  ) -> dict[str, dict[str, float]]:
    """Estimates, intervals and values relative to the logging policy.

    The arguments are as for `estimate_intervals`.

    Returns:
      estimator name -> {"estimate", "ci_low", "ci_high",
      "relative_estimated_policy_value"}: the last is the estimate over the
      logged mean reward (the logging policy's on-policy value), as OBP's.
    """
    values = self.estimate_policy_values(
        action_dist, estimated_rewards_by_reg_model, estimated_pscore)
    intervals = self.estimate_intervals(
        action_dist, estimated_rewards_by_reg_model, estimated_pscore, alpha,
        n_bootstrap_samples, random_state)
    logged = float(np.mean(np.asarray(self.bandit_feedback["reward"],
                                      np.float64)))
    return {name: {"estimate": value, "ci_low": intervals[name]["ci_low"],
                   "ci_high": intervals[name]["ci_high"],
                   "relative_estimated_policy_value": (
                       value / logged if logged else math.nan)}
            for name, value in values.items()}

  def visualize_off_policy_estimates(
      self, action_dist: ArrayLike,
      estimated_rewards_by_reg_model: ArrayLike | None = None,
      estimated_pscore: ArrayLike | None = None, alpha: float = 0.05,
      n_bootstrap_samples: int = 1000,
      random_state: int | np.random.Generator = 0,
      is_relative: bool = False, fig_dir: str = ".",
      fig_name: str = "estimated_policy_value.png") -> str:
    """A PNG of every estimate with its interval (and the logged mean).

    The arguments `action_dist` to `random_state` are as for
    `summarize_off_policy_estimates`.

    Args:
      is_relative: plot values relative to the logged mean reward.
      fig_dir: folder of the figure (created if missing).
      fig_name: file name of the figure.

    Returns:
      The path of the PNG.
    """
    summary = self.summarize_off_policy_estimates(
        action_dist, estimated_rewards_by_reg_model, estimated_pscore, alpha,
        n_bootstrap_samples, random_state)
    logged = float(np.mean(np.asarray(self.bandit_feedback["reward"],
                                      np.float64)))
    scale = 1.0 / logged if (is_relative and logged) else 1.0
    names = list(summary)
    values = np.array([summary[n]["estimate"] for n in names]) * scale
    low = np.array([summary[n]["ci_low"] for n in names]) * scale
    high = np.array([summary[n]["ci_high"] for n in names]) * scale
    figure = Figure(figsize=(1.2 * len(names) + 2.0, 3.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.bar(names, values, color="#4c72b0",
             yerr=np.vstack([values - low, high - values]), capsize=4)
    axes.axhline(logged * scale, color="#c44e52", linestyle="--",
                 label="logging policy (logged mean reward)")
    axes.set_ylabel("relative policy value" if is_relative else
                    "estimated policy value")
    axes.set_title(f"Off-policy estimates, {100 * (1 - alpha):.0f}% "
                   "bootstrap intervals")
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    os.makedirs(fig_dir, exist_ok=True)
    path = os.path.join(fig_dir, fig_name)
    figure.savefig(path, dpi=100)
    return path

  def evaluate_performance_of_estimators(
      self, ground_truth_policy_value: float, action_dist: ArrayLike,
      estimated_rewards_by_reg_model: ArrayLike | None = None,
      estimated_pscore: ArrayLike | None = None,
      metric: str = "relative-ee") -> dict[str, float]:
    """Each estimator's error against a known value of the target.

    Args:
      ground_truth_policy_value: the target's true value (e.g. on-policy).
      action_dist: as for `estimate_policy_values`.
      estimated_rewards_by_reg_model: as for `estimate_policy_values`.
      estimated_pscore: as for `estimate_policy_values`.
      metric: "relative-ee" (|estimate - truth| / |truth|) or "se"
        ((estimate - truth)^2).

    Returns:
      estimator name -> error.

    Raises:
      EstimatorInputError: for an unknown metric, a non-finite truth, or a
        zero truth with "relative-ee".
    """
    if metric not in METRICS:
      raise EstimatorInputError(
          "metric", f"evaluate_performance_of_estimators: metric must be one "
          f"of {METRICS}, got {metric!r}")
    truth = float(ground_truth_policy_value)
    if not math.isfinite(truth) or (metric == "relative-ee" and truth == 0):
      raise EstimatorInputError(
          "ground_truth_policy_value", "evaluate_performance_of_estimators: "
          f"ground_truth_policy_value must be finite (and non-zero for "
          f"relative-ee), got {ground_truth_policy_value}")
    values = self.estimate_policy_values(
        action_dist, estimated_rewards_by_reg_model, estimated_pscore)
    if metric == "se":
      return {n: (v - truth) ** 2 for n, v in values.items()}
    return {n: abs(v - truth) / abs(truth) for n, v in values.items()}


def format_summary(summary: Mapping[str, Mapping[str, float]]) -> str:
  """A plain-text table of `summarize_off_policy_estimates`' result."""
  lines = [f"{'estimator':<14} {'estimate':>10} {'ci_low':>10} "
           f"{'ci_high':>10} {'relative':>9}"]
  for name, row in summary.items():
    lines.append(f"{name:<14} {row['estimate']:>10.5f} {row['ci_low']:>10.5f}"
                 f" {row['ci_high']:>10.5f} "
                 f"{row['relative_estimated_policy_value']:>9.4f}")
  return "\n".join(lines)
