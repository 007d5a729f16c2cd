"""Session-level estimators with marginalised importance weights.

PDIS weights reward t by rho_t = w_1 ... w_t, a product that explodes with
the session length: over long sessions a few sessions carry all the weight,
and the estimates stop ranking policies. Marginalised importance sampling
(Xie, Ma & Wang, NeurIPS 2019; Liu et al., NeurIPS 2018) weights a row by
the ratio of the two policies' probabilities of reaching its *state*
instead of its whole history:

  omega_1(s) = 1                     (sessions start alike under both),
  omega_{t+1}(s') = sum_{i at t, next state s'} omega_t(s_i) w_i
                    / #{rows at t + 1 in state s'},

with states the pairs (position t, `state_ids`): a discrete summary of the
session so far, such as the listener's consecutive skips (which decide
whether the session ends). Then, with w_t = pi_t / mu_t,

  V_MIS = (1/S) sum_rows omega_t(s_t) w_t r_t,
  V_MDR = (1/S) sum_rows omega_t(s_t) [v_t + w_t (r_t - q_t)],

q_t = r_hat(h_t, a_t) and v_t = E_{a~pi}[r_hat(h_t, a)] a model of the
*immediate* reward (not the return-to-go). Unbiased when the summary is a
Markov state of the session (the reward and the next summary depend on the
history only through it); otherwise biased by what it leaves out, with far
lower variance than PDIS. The summaries are chosen by the caller;
`logged.check_estimators` uses the consecutive skips.
"""

import dataclasses
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from playlist_sim.evaluation.estimators import _bootstrap_interval
from playlist_sim.evaluation.estimators import _Statistic
from playlist_sim.evaluation.inputs import EstimatorInputError
from playlist_sim.evaluation.sequential import SequentialEstimator
from playlist_sim.evaluation.sequential import _LoggedSessions
from playlist_sim.evaluation.sequential import _session_sums

__all__ = [
    "MDR",
    "MIS",
    "MarginalizedDoublyRobust",
    "MarginalizedImportanceSampling",
]


def _state_index(owner: str, state_ids: ArrayLike | None,
                 positions: np.ndarray) -> np.ndarray:
  """int64 [R]: one index per distinct (position, state id) pair."""
  if state_ids is None:
    raise EstimatorInputError("state_ids", f"{owner}: state_ids is required")
  states = np.asarray(state_ids)
  if states.dtype.kind not in "iub" or states.shape != positions.shape:
    raise EstimatorInputError(
        "state_ids", f"{owner}: state_ids must be {positions.shape[0]} "
        f"integers (a discrete state summary per row), got dtype "
        f"{states.dtype} and shape {states.shape}")
  pairs = np.stack([positions, states.astype(np.int64)], axis=1)
  return np.unique(pairs, axis=0, return_inverse=True)[1].reshape(-1)


def _marginal_weights(data: _LoggedSessions, state: np.ndarray,
                      row_counts: np.ndarray | float) -> np.ndarray:
  """omega_t(s_t) for every row, by the forward recursion."""
  weights = data.arrays["target_probabilities"] / data.arrays[
      "logging_propensities"]
  counts = np.broadcast_to(np.asarray(row_counts, np.float64),
                           weights.shape)
  num_states = int(state.max()) + 1
  omega = np.ones_like(weights)
  has_previous = np.flatnonzero(data.positions > 1)
  # Rows of position t + 1 follow rows of position t; positions in order.
  order = has_previous[np.argsort(data.positions[has_previous],
                                  kind="stable")]
  bounds = np.searchsorted(data.positions[order],
                           np.arange(2, int(data.positions.max()) + 1),
                           side="right")
  start = 0
  for stop in bounds:
    rows = order[start:stop]
    start = stop
    if rows.size == 0:
      continue
    carried = counts[rows] * omega[rows - 1] * weights[rows - 1]
    numerator = np.bincount(state[rows], weights=carried,
                            minlength=num_states)
    denominator = np.bincount(state[rows], weights=counts[rows],
                              minlength=num_states)
    ratio = np.divide(numerator, denominator, out=np.zeros(num_states),
                      where=denominator > 0)
    omega[rows] = ratio[state[rows]]
  return omega


@dataclasses.dataclass(frozen=True)
class MarginalizedImportanceSampling(SequentialEstimator):
  """Marginalised importance sampling over a state summary (MIS).

  See the module docstring for the formula; gamma discounts reward t by
  gamma^(t-1).
  """
  estimator_name: ClassVar[str] = "mis"

  def _terms(self, data: _LoggedSessions) -> np.ndarray:
    """Per-row terms that omega multiplies."""
    weights = data.arrays["target_probabilities"] / data.arrays[
        "logging_propensities"]
    return data.discounts * weights * data.arrays["rewards"]

  def _statistic_with_states(self, data: _LoggedSessions,
                             state: np.ndarray) -> _Statistic:
    terms = self._terms(data)
    num_sessions = data.offsets.size - 1

    def statistic(counts):
      row_counts = 1.0 if counts is None else counts[data.session_index]
      omega = _marginal_weights(data, state, row_counts)
      sums = _session_sums(data, omega * terms)
      if counts is None:
        return float(sums.sum() / num_sessions)
      return float(counts @ sums / counts.sum())
    return statistic

  def _statistic(self, data):
    raise NotImplementedError("MIS needs state_ids; use estimate_policy_value")

  def _prepare_states(self, positions, session_ids, offsets, state_ids,
                      **given):
    data = self._prepare(positions, session_ids, offsets, **given)
    return data, _state_index(self.estimator_name, state_ids, data.positions)

  def estimate_policy_value(
      self, *, rewards: ArrayLike | None = None,
      logging_propensities: ArrayLike | None = None,
      target_probabilities: ArrayLike | None = None,
      positions: ArrayLike | None = None,
      session_ids: ArrayLike | None = None,
      offsets: ArrayLike | None = None, state_ids: ArrayLike | None = None,
      predicted_rewards: ArrayLike | None = None,
      expected_predicted_rewards: ArrayLike | None = None) -> float:
    """Estimated expected (discounted) session return of the target policy.

    The data arguments (`rewards`, `logging_propensities`,
    `target_probabilities`, `positions`, `session_ids`, `offsets`) are as for
    `SequentialEstimator`.

    Args:
      state_ids: int [R], a discrete summary of each row's state (e.g. the
        consecutive skips before the decision).
      predicted_rewards: float [R], r_hat(h_t, a_t) of the immediate reward
        (MDR).
      expected_predicted_rewards: float [R], E_{a~pi}[r_hat(h_t, a)] (MDR).

    Returns:
      The estimate.

    Raises:
      EstimatorInputError: as `SequentialEstimator`, or for missing or
        non-integer state_ids of the wrong length.
    """
    data, state = self._prepare_states(
        positions, session_ids, offsets, state_ids, rewards=rewards,
        logging_propensities=logging_propensities,
        target_probabilities=target_probabilities,
        predicted_rewards=predicted_rewards,
        expected_predicted_rewards=expected_predicted_rewards)
    return self._statistic_with_states(data, state)(None)

  def estimate_interval(
      self, *, rewards: ArrayLike | None = None,
      logging_propensities: ArrayLike | None = None,
      target_probabilities: ArrayLike | None = None,
      positions: ArrayLike | None = None,
      session_ids: ArrayLike | None = None,
      offsets: ArrayLike | None = None, state_ids: ArrayLike | None = None,
      predicted_rewards: ArrayLike | None = None,
      expected_predicted_rewards: ArrayLike | None = None,
      alpha: float = 0.05, n_bootstrap: int = 1000,
      seed: int | np.random.Generator = 0) -> dict[str, float]:
    """Percentile-bootstrap interval, resampling whole sessions (the
    marginal weights are re-estimated in each replicate).

    The arguments are as for `estimate_policy_value`, plus `alpha`,
    `n_bootstrap` and `seed` as for `SequentialEstimator.estimate_interval`.

    Returns:
      {"mean", "ci_low", "ci_high"} of the replicates.
    """
    data, state = self._prepare_states(
        positions, session_ids, offsets, state_ids, rewards=rewards,
        logging_propensities=logging_propensities,
        target_probabilities=target_probabilities,
        predicted_rewards=predicted_rewards,
        expected_predicted_rewards=expected_predicted_rewards)
    return _bootstrap_interval(
        self.estimator_name, self._statistic_with_states(data, state),
        data.offsets.size - 1, alpha, n_bootstrap, seed)


@dataclasses.dataclass(frozen=True)
class MarginalizedDoublyRobust(MarginalizedImportanceSampling):
  """Marginalised DR (MDR): per-step DR terms under marginal state weights.

  See the module docstring; with r_hat = 0 it is MIS.
  """
  estimator_name: ClassVar[str] = "mdr"
  required_arguments: ClassVar[tuple[str, ...]] = (
      "rewards", "logging_propensities", "target_probabilities",
      "predicted_rewards", "expected_predicted_rewards")

  def _terms(self, data):
    arrays = data.arrays
    weights = arrays["target_probabilities"] / arrays["logging_propensities"]
    return data.discounts * (arrays["expected_predicted_rewards"] + weights * (
        arrays["rewards"] - arrays["predicted_rewards"]))


MIS = MarginalizedImportanceSampling
MDR = MarginalizedDoublyRobust
