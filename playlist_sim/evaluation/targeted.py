"""Session returns from the learned simulator, targeted to the logged data.

The learned simulator's mean return for a target policy (the session-level
direct method) carries the model's errors through the whole session, and
session-level importance weighting cannot remove them for targets far from
the logging policy: the cumulative weights of a cold softmax collapse within
a few tracks, so clipped sequential DR falls back on the same model. What the
logs do estimate well is the next-track listen rate of the target in the
logged situations: bandit DR (`estimators.DR`) is unbiased given correct
propensities and errs below 1% on every target of the default pipeline.

`targeted_estimates` moves the simulator just enough to agree with that
estimate, then lets the simulator carry the correction through the session.
Per target policy pi, it finds the shift delta of the model's listen logit
for which the model's own one-step listen rate of pi on the R logged
situations equals bandit DR's,

    (1/R) sum_r sum_a pi(a | x_r) sigmoid(logit p_hat(x_r, a) + delta)
        = V_DR(pi),

and re-simulates pi with the shifted model (`ListenShiftedModel`): a
listener who listens less in the model also skips more and leaves sooner.
It is a one-parameter targeting step in the sense of targeted maximum
likelihood (van der Laan & Rose, "Targeted Learning", 2011; for off-policy
evaluation Bibaut et al., "More Efficient Off-Policy Evaluation through
Regularized Targeted Learning", ICML 2019): the initial model is fluctuated
along a logistic submodel until the estimating equation of the quantity DR
estimates holds.

It corrects the part of the model's error that the target's choices share
in the logged situations. What the one-step rates do not show (how the
simulated session unfolds: runs of skips, leaving, fatigue along the
target's own trajectories, docs/model_bias.md) is left. The interval
propagates DR's bootstrap interval through the shift (re-simulating at the
shifts of its two ends, common random numbers) and adds the simulation's own
Monte-Carlo interval in quadrature.

`anchored_estimates` then removes the session-level error the targets share
with the logging policy, whose session return the logs observe on-policy:

    V_anchored(pi) = V_targeted(pi) * V_logs(mu) / V_targeted(mu),

a ratio control variate (the simulator's relative error on the logging
policy stands for its error on every target). Its interval adds the three
relative half-widths in quadrature.
"""

from collections.abc import Callable, Mapping

import numpy as np

from playlist_sim.evaluation.estimators import relative_error
from user_models.base import AbstractUserModel, SessionContext

__all__ = ["ListenShiftedModel", "anchored_estimates", "listen_logit_shift",
           "shift_listen", "targeted_estimates"]

#: Bounds of the listen-logit shift. A DR rate outside what shifts in this
#: range reach (DR is not bounded to [0, 1]) is met by the nearest bound.
MAX_SHIFT = 5.0
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
  p = np.clip(p, _EPS, 1.0 - _EPS)
  return np.log(p) - np.log1p(-p)


def _sigmoid(x: np.ndarray) -> np.ndarray:
  return 0.5 * (1.0 + np.tanh(0.5 * x))


def shift_listen(level_probs: np.ndarray, delta: float,
                 listen_level: int) -> np.ndarray:
  """Shifts the listen level's logit by `delta`; the other levels keep their
  proportions and share what is left, so rows still sum to 1.

  Args:
    level_probs: float [..., L] probabilities over the response levels.
    delta: the shift of logit P(listen).
    listen_level: index of the listen level.

  Returns:
    float64 [..., L].
  """
  probs = np.asarray(level_probs, np.float64)
  listen = np.clip(probs[..., listen_level], _EPS, 1.0 - _EPS)
  shifted = _sigmoid(_logit(listen) + delta)
  out = probs * ((1.0 - shifted) / (1.0 - listen))[..., None]
  out[..., listen_level] = shifted
  return out


class ListenShiftedModel(AbstractUserModel):
  """A user model whose listen logit is shifted by a constant.

  Everything else (session state, observations, leaving) is the wrapped
  model's.

  Args:
    base: the user model to shift.
    delta: the shift of logit P(listen).
  """

  def __init__(self, base: AbstractUserModel, delta: float):
    self.base = base
    self.delta = float(delta)
    self.response_levels = base.response_levels

  def begin_sessions(self, rows: np.ndarray, user_ids: np.ndarray) -> None:
    self.base.begin_sessions(rows, user_ids)

  def observe(self, rows: np.ndarray, track_ids: np.ndarray,
              responses: np.ndarray) -> None:
    self.base.observe(rows, track_ids, responses)

  def leave_probability(self, context: SessionContext) -> np.ndarray | None:
    return self.base.leave_probability(context)

  def predict(self, context: SessionContext,
              track_ids: np.ndarray) -> np.ndarray:
    return shift_listen(self.base.predict(context, track_ids), self.delta,
                        self.listen_level)


def listen_logit_shift(target_probabilities: np.ndarray,
                       model_listen: np.ndarray, rate: float) -> float:
  """The delta at which the model's one-step listen rate of the target is
  `rate` (bisection: the rate rises with delta).

  Args:
    target_probabilities: float [R, K], pi(a | x_r) over the candidates.
    model_listen: float [R, K], the model's P(listen) of every candidate.
    rate: the listen rate to meet (bandit DR's estimate).

  Returns:
    The shift, within [-MAX_SHIFT, MAX_SHIFT].
  """
  pi = np.asarray(target_probabilities, np.float64)
  logits = _logit(np.asarray(model_listen, np.float64))

  def model_rate(delta: float) -> float:
    return float((pi * _sigmoid(logits + delta)).sum(axis=1).mean())

  low, high = -MAX_SHIFT, MAX_SHIFT
  if rate <= model_rate(low):
    return low
  if rate >= model_rate(high):
    return high
  for _ in range(50):  # Width 10 / 2**50: far below any rate's precision.
    mid = 0.5 * (low + high)
    if model_rate(mid) < rate:
      low = mid
    else:
      high = mid
  return 0.5 * (low + high)


def targeted_estimates(
    target_probabilities: Mapping[str, np.ndarray], model_listen: np.ndarray,
    dr: Mapping[str, Mapping[str, float]], truth: Mapping[str, float | None],
    simulate: Callable[[str, float], tuple[float, float, float]]) -> dict:
  """Each target's session return in the targeted simulator.

  Args:
    target_probabilities: target -> float [R, K] pi over the logged
      situations' candidates.
    model_listen: float [R, K], the learned simulator's P(listen).
    dr: target -> bandit DR's {estimate, ci_low, ci_high} of the listen
      rate (`logged.check_estimators`' "dr").
    truth: target -> its mean return in the world (None if unknown).
    simulate: (target, delta) -> (mean return, ci_low, ci_high) of the
      target in the simulator with its listen logit shifted by delta.

  Returns:
    target -> {estimate, ci_low, ci_high, truth, relative_error, quantity,
    listen_logit_shift}, as the other estimators in evaluation.json.
  """
  out = {}
  for name, probs in target_probabilities.items():
    shifts = [listen_logit_shift(probs, model_listen, dr[name][key])
              for key in ("estimate", "ci_low", "ci_high")]
    value, mc_low, mc_high = simulate(name, shifts[0])
    ends = [simulate(name, shift)[0] for shift in shifts[1:]]
    low, high = min(ends), max(ends)
    ci_low = value - np.hypot(max(value - low, 0.0), value - mc_low)
    ci_high = value + np.hypot(max(high - value, 0.0), mc_high - value)
    out[name] = {**_entry(value, ci_low, ci_high, truth.get(name)),
                 "listen_logit_shift": shifts[0]}
  return out


def anchored_estimates(targeted: Mapping[str, Mapping[str, float]],
                       logging_name: str,
                       logged_return: tuple[float, float, float],
                       truth: Mapping[str, float | None]) -> dict:
  """`targeted_estimates` scaled so that the logging policy's is its
  return observed in the logs.

  Args:
    targeted: `targeted_estimates`' output; must hold `logging_name`.
    logging_name: the target that is the logging policy.
    logged_return: (mean, ci_low, ci_high) of the logged sessions' return.
    truth: target -> its mean return in the world (None if unknown).

  Returns:
    target -> {estimate, ci_low, ci_high, truth, relative_error, quantity}.

  Raises:
    KeyError: if `logging_name` is not among the targets.
    ValueError: if the targeted return of the logging policy is not
      positive (there is no ratio to take).
  """
  anchor = targeted[logging_name]
  if not anchor["estimate"] > 0:
    raise ValueError(
        f"anchored_estimates: the targeted simulator's return of "
        f"{logging_name!r} is {anchor['estimate']}; the anchor needs a "
        "positive return")
  mean, low, high = logged_return
  scale = mean / anchor["estimate"]

  def half_widths(entry, value):
    return ((value - entry[0]) / value, (entry[1] - value) / value)
  anchor_down, anchor_up = half_widths(
      (anchor["ci_low"], anchor["ci_high"]), anchor["estimate"])
  logs_down, logs_up = half_widths((low, high), mean)
  out = {}
  for name, entry in targeted.items():
    value = entry["estimate"] * scale
    down, up = half_widths((entry["ci_low"], entry["ci_high"]),
                           entry["estimate"])
    if name == logging_name:  # Its own error cancels in the ratio.
      spread_down, spread_up = logs_down, logs_up
    else:
      # A lower anchor raises the estimate: its up and down sides swap.
      spread_down = np.sqrt(down**2 + logs_down**2 + anchor_up**2)
      spread_up = np.sqrt(up**2 + logs_up**2 + anchor_down**2)
    out[name] = _entry(value, value * (1.0 - spread_down),
                       value * (1.0 + spread_up), truth.get(name))
  return out


def _entry(value: float, ci_low: float, ci_high: float,
           truth: float | None) -> dict:
  return {"estimate": float(value), "ci_low": float(ci_low),
          "ci_high": float(ci_high), "truth": truth,
          "relative_error": (None if truth is None else
                             relative_error(value, truth)),
          "quantity": "session return"}
