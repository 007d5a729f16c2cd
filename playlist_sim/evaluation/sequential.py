"""Off-policy estimators on logged sessions (sequential decisions).

The data are the rows of a session log, grouped by session with positions in
order (as `playlist_sim.data.logs.read_sessions` returns them). Row t = 1..T_s
of session s carries r_t (`rewards`), mu_t (`logging_propensities`, in (0, 1]),
pi_t (`target_probabilities`, in [0, 1]) and, for sequential DR, q_t
(`predicted_q_values`: q_hat(h_t, a_t) for the logged action) and v_t
(`expected_predicted_q_values`: v_hat(h_t) = E_{a ~ pi}[q_hat(h_t, a)]).
Sessions are given by `session_ids` (one id per row) or by `offsets` (int
[S + 1]: session s is rows offsets[s]:offsets[s + 1], as in
`playlist_sim.data.log_stats.SessionBoundaries`), and `positions` must run
1..T_s within each session, as the log's `session_position` does.

With per-step weights w_t = pi_t / mu_t, the cumulative weight is
rho_t = w_1 * ... * w_t (rho_0 = 1), and the value of a policy is the
expected discounted session return sum_t gamma^(t-1) r_t (gamma = 1: the sum
of rewards). Sessions are the bootstrap units of `estimate_interval`.
"""

import abc
import dataclasses
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from playlist_sim.evaluation.estimators import _bootstrap_interval
from playlist_sim.evaluation.estimators import _Statistic
from playlist_sim.evaluation.estimators import _importance_weights
from playlist_sim.evaluation.estimators import _mean_of
from playlist_sim.evaluation.estimators import _safe_ratio
from playlist_sim.evaluation.inputs import EstimatorInputError
from playlist_sim.evaluation.inputs import check_max_weight
from playlist_sim.evaluation.inputs import validate_arrays

__all__ = [
    "PDIS",
    "PerDecisionImportanceSampling",
    "SequentialDR",
    "SequentialDoublyRobust",
    "SequentialEstimator",
    "WPDIS",
    "WeightedPerDecisionImportanceSampling",
]


@dataclasses.dataclass(frozen=True)
class _LoggedSessions:
  """Validated rows with their session structure and cumulative weights."""
  arrays: dict[str, np.ndarray]
  offsets: np.ndarray  # int64 [S + 1]
  session_index: np.ndarray  # int64 [R]
  positions: np.ndarray  # int64 [R], 1-based
  cumulative_weights: np.ndarray  # [R] rho_t
  previous_weights: np.ndarray  # [R] rho_{t-1}
  discounts: np.ndarray  # [R] gamma^(t-1)

  @property
  def lengths(self) -> np.ndarray:
    return np.diff(self.offsets)


def _offsets_from_ids(owner: str, session_ids: ArrayLike,
                      num_rows: int) -> np.ndarray:
  ids = np.asarray(session_ids)
  if ids.ndim != 1 or ids.shape[0] != num_rows:
    raise EstimatorInputError(
        "session_ids", f"{owner}: session_ids must be 1-D with one id per "
        f"row ({num_rows}), got shape {ids.shape}")
  if np.issubdtype(ids.dtype, np.inexact) and not np.isfinite(ids).all():
    raise EstimatorInputError(
        "session_ids", f"{owner}: session_ids has a non-finite id")
  starts = np.ones(num_rows, bool)
  starts[1:] = ids[1:] != ids[:-1]
  first_rows = np.flatnonzero(starts)
  try:
    num_distinct = np.unique(ids).size
  except TypeError as error:  # e.g. None among strings: not orderable
    raise EstimatorInputError(
        "session_ids", f"{owner}: session_ids must be of one comparable "
        f"type ({error})") from error
  if num_distinct != first_rows.size:
    raise EstimatorInputError(
        "session_ids", f"{owner}: the rows of a session are not contiguous in "
        "session_ids; group rows by session (positions in order) first")
  return np.append(first_rows, num_rows).astype(np.int64)


def _check_offsets(owner: str, offsets: ArrayLike, num_rows: int
                   ) -> np.ndarray:
  array = np.asarray(offsets)
  if array.ndim != 1 or array.size < 2 or not np.issubdtype(array.dtype,
                                                             np.integer):
    raise EstimatorInputError(
        "offsets", f"{owner}: offsets must be a 1-D integer array of S + 1 "
        f"row offsets, got dtype {array.dtype} and shape {array.shape}")
  if array[0] != 0 or array[-1] != num_rows or np.any(np.diff(array) <= 0):
    raise EstimatorInputError(
        "offsets", f"{owner}: offsets must rise strictly from 0 to the number "
        f"of rows ({num_rows}); empty sessions are not allowed")
  return array.astype(np.int64)


def _check_positions(owner: str, positions: ArrayLike | None,
                     offsets: np.ndarray, session_index: np.ndarray
                     ) -> np.ndarray:
  """`positions` as int64, raising unless they run 1..T_s in each session."""
  if positions is None:
    raise EstimatorInputError("positions", f"{owner}: positions is required")
  array = np.asarray(positions)
  num_rows = session_index.shape[0]
  if (array.ndim != 1 or array.shape[0] != num_rows or
      not np.issubdtype(array.dtype, np.number)):
    raise EstimatorInputError(
        "positions", f"{owner}: positions must be a 1-D numeric array with "
        f"one entry per row ({num_rows}), got dtype {array.dtype} and shape "
        f"{array.shape}")
  expected = np.arange(num_rows) - offsets[session_index] + 1
  bad = np.flatnonzero(array != expected)
  if bad.size:
    row = bad[0]
    raise EstimatorInputError(
        "positions", f"{owner}: positions must run 1..n within each session "
        f"(rows grouped by session, in order); row {row} (session "
        f"{session_index[row]}) has position {array[row]}, expected "
        f"{expected[row]}")
  return expected.astype(np.int64)


def _cumulative_products(weights: np.ndarray, offsets: np.ndarray
                         ) -> np.ndarray:
  """rho_t = w_1 * ... * w_t within each session, exactly (no log-space)."""
  cumulative = weights.copy()
  starts, lengths = offsets[:-1], np.diff(offsets)
  # Longest sessions first, so step t only touches the sessions that reach it
  # and the loop costs O(rows) in all, however long the longest session.
  order = np.argsort(-lengths, kind="stable")
  starts, lengths = starts[order], lengths[order]
  for step in range(1, int(lengths[0]) if lengths.size else 0):
    rows = starts[:np.count_nonzero(lengths > step)] + step
    cumulative[rows] *= cumulative[rows - 1]
  return cumulative


@dataclasses.dataclass(frozen=True)
class SequentialEstimator(abc.ABC):
  """Base of the per-session estimators; sessions are the bootstrap units.

  Attributes:
    gamma: discount per step, in [0, 1]; 1 values the plain sum of rewards.
  """
  gamma: float = 1.0
  estimator_name: ClassVar[str] = "sequential"
  required_arguments: ClassVar[tuple[str, ...]] = (
      "rewards", "logging_propensities", "target_probabilities")

  def __post_init__(self):
    if not 0.0 <= self.gamma <= 1.0:
      raise EstimatorInputError(
          "gamma", f"{self.estimator_name}: gamma must be in [0, 1], got "
          f"{self.gamma}")

  @abc.abstractmethod
  def _statistic(self, data: _LoggedSessions) -> _Statistic:
    """The estimate as a function of session multiplicities (None: once)."""

  def _prepare(self, positions, session_ids, offsets, **given
               ) -> _LoggedSessions:
    owner = self.estimator_name
    arrays = validate_arrays(owner, given, self.required_arguments)
    num_rows = next(iter(arrays.values())).shape[0]
    if (session_ids is None) == (offsets is None):
      raise EstimatorInputError(
          "session_ids", f"{owner}: pass exactly one of session_ids and "
          "offsets to say where sessions start")
    offsets = (_offsets_from_ids(owner, session_ids, num_rows)
               if offsets is None else _check_offsets(owner, offsets,
                                                      num_rows))
    session_index = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    positions = _check_positions(owner, positions, offsets, session_index)
    cumulative = _cumulative_products(_importance_weights(arrays), offsets)
    previous = np.ones(num_rows)
    later = np.flatnonzero(positions > 1)
    previous[later] = cumulative[later - 1]
    return _LoggedSessions(
        arrays=arrays, offsets=offsets, session_index=session_index,
        positions=positions, cumulative_weights=cumulative,
        previous_weights=previous,
        discounts=np.power(float(self.gamma), positions - 1))

  def estimate_policy_value(
      self, *, rewards: ArrayLike | None = None,
      logging_propensities: ArrayLike | None = None,
      target_probabilities: ArrayLike | None = None,
      positions: ArrayLike | None = None,
      session_ids: ArrayLike | None = None,
      offsets: ArrayLike | None = None,
      predicted_q_values: ArrayLike | None = None,
      expected_predicted_q_values: ArrayLike | None = None) -> float:
    """Estimated expected (discounted) session return of the target policy.

    Args:
      rewards: float [R], the reward of each logged row.
      logging_propensities: float [R] in (0, 1], mu_t of the logged action.
      target_probabilities: float [R] in [0, 1], pi_t of the logged action.
      positions: int [R], 1..T_s within each session.
      session_ids: [R] the session of each row (rows grouped by session);
        exclusive with `offsets`.
      offsets: int [S + 1] session row offsets; exclusive with `session_ids`.
      predicted_q_values: float [R], q_hat(h_t, a_t) (sequential DR).
      expected_predicted_q_values: float [R], E_{a~pi}[q_hat(h_t, a)]
        (sequential DR).

    Returns:
      The estimate.

    Raises:
      EstimatorInputError: if a needed input is missing, a given one is
        empty, non-finite, out of range or of another length, both or
        neither of session_ids and offsets are given, a session's rows are
        not contiguous, or positions do not run 1..T_s.
    """
    data = self._prepare(
        positions, session_ids, offsets, rewards=rewards,
        logging_propensities=logging_propensities,
        target_probabilities=target_probabilities,
        predicted_q_values=predicted_q_values,
        expected_predicted_q_values=expected_predicted_q_values)
    return self._statistic(data)(None)

  def estimate_interval(
      self, *, rewards: ArrayLike | None = None,
      logging_propensities: ArrayLike | None = None,
      target_probabilities: ArrayLike | None = None,
      positions: ArrayLike | None = None,
      session_ids: ArrayLike | None = None,
      offsets: ArrayLike | None = None,
      predicted_q_values: ArrayLike | None = None,
      expected_predicted_q_values: ArrayLike | None = None,
      alpha: float = 0.05, n_bootstrap: int = 1000,
      seed: int | np.random.Generator = 0) -> dict[str, float]:
    """Percentile-bootstrap interval, resampling whole sessions.

    The data arguments (`rewards`, `logging_propensities`,
    `target_probabilities`, `positions`, `session_ids`, `offsets`,
    `predicted_q_values`, `expected_predicted_q_values`) are as for
    `estimate_policy_value`.

    Args:
      alpha: the interval covers 1 - alpha.
      n_bootstrap: number of bootstrap replicates.
      seed: seed (or Generator) of the resampling.

    Returns:
      {"mean": mean of the replicates, "ci_low": their alpha/2 quantile,
      "ci_high": their 1 - alpha/2 quantile}.

    Raises:
      EstimatorInputError: as `estimate_policy_value`, or if alpha is not in
        (0, 1) or n_bootstrap is not a positive integer.
    """
    data = self._prepare(
        positions, session_ids, offsets, rewards=rewards,
        logging_propensities=logging_propensities,
        target_probabilities=target_probabilities,
        predicted_q_values=predicted_q_values,
        expected_predicted_q_values=expected_predicted_q_values)
    return _bootstrap_interval(self.estimator_name, self._statistic(data),
                               data.offsets.size - 1, alpha, n_bootstrap,
                               seed)


def _session_sums(data: _LoggedSessions, row_terms: np.ndarray) -> np.ndarray:
  return np.bincount(data.session_index, weights=row_terms,
                     minlength=data.offsets.size - 1)


@dataclasses.dataclass(frozen=True)
class PerDecisionImportanceSampling(SequentialEstimator):
  """Per-decision importance sampling (PDIS, Precup, Sutton & Singh 2000).

    V_PDIS = (1/S) sum_s sum_{t=1..T_s} gamma^(t-1) rho_{s,t} r_{s,t}.

  Unbiased: reward t is weighted only by the actions that led to it.
  """
  estimator_name: ClassVar[str] = "pdis"

  def _statistic(self, data):
    terms = data.discounts * data.cumulative_weights * data.arrays["rewards"]
    return _mean_of(_session_sums(data, terms))


@dataclasses.dataclass(frozen=True)
class WeightedPerDecisionImportanceSampling(SequentialEstimator):
  """Weighted PDIS (WPDIS): cumulative weights normalised per position.

    V_WPDIS = sum_{t=1..T} gamma^(t-1) [sum_s rho_{s,t} r_{s,t}]
                                       / [sum_s rho_{s,min(t, T_s)}],

  T = max_s T_s. A session that ended before position t counts in the
  denominator with its final weight rho_{s,T_s} and reward 0: it sits in an
  absorbing state where both policies agree (w = 1). Normalising only over
  the sessions still running would estimate E_pi[r_t | T_s >= t] instead of
  E_pi[r_t 1{T_s >= t}], overvaluing policies that end sessions early.
  Biased but consistent; with equal lengths it is the textbook WPDIS. A
  position whose weights are all 0 contributes 0.
  """
  estimator_name: ClassVar[str] = "wpdis"

  def _statistic(self, data):
    horizon = int(data.lengths.max())
    steps, ends = data.positions - 1, data.lengths - 1
    weights = data.cumulative_weights
    rewards = weights * data.discounts * data.arrays["rewards"]
    final_weights = weights[data.offsets[1:] - 1]

    def statistic(counts):
      row_counts = 1.0 if counts is None else counts[data.session_index]
      session_counts = 1.0 if counts is None else counts
      numerators = np.bincount(steps, weights=row_counts * rewards,
                               minlength=horizon)
      running = np.bincount(steps, weights=row_counts * weights,
                            minlength=horizon)
      ended_at = np.bincount(ends, weights=session_counts * final_weights,
                             minlength=horizon)
      # Sessions of length k carry their final weight into positions k+1..T.
      carried = np.concatenate([[0.0], np.cumsum(ended_at)[:-1]])
      return float(_safe_ratio(numerators, running + carried).sum())
    return statistic


@dataclasses.dataclass(frozen=True)
class SequentialDoublyRobust(SequentialEstimator):
  """Sequential doubly robust (Jiang & Li 2016).

  Per session, backwards from V_{T+1} = 0:

    V_t = v_t + w_t (r_t + gamma V_{t+1} - q_t),

  with q_t = q_hat(h_t, a_t) and v_t = E_{a~pi}[q_hat(h_t, a)], where
  q_hat(h, a) models the target policy's discounted return-to-go (reward t
  onwards, not reward t alone) after action a at history h; unrolled,

    V_1 = sum_t gamma^(t-1) [rho_{t-1} v_t + rho_t (r_t - q_t)],

  and V_SDR = (1/S) sum_s V_1(s). Unbiased whatever q_hat (given correct
  propensities); with q_hat = v_hat = 0 it is PDIS.

  With `max_weight`, the cumulative weights rho_t and rho_{t-1} are clipped
  at it (the clipping of Bottou et al. 2013 applied to the product): the
  model's terms then carry the part of the value the clipped weights drop,
  which trades a bias towards the model for a variance that no longer grows
  with the session length.

  Attributes:
    max_weight: clip cumulative weights at this value (None: no clipping).
  """
  max_weight: float | None = None
  estimator_name: ClassVar[str] = "sequential_dr"
  required_arguments: ClassVar[tuple[str, ...]] = (
      "rewards", "logging_propensities", "target_probabilities",
      "predicted_q_values", "expected_predicted_q_values")

  def __post_init__(self):
    super().__post_init__()
    check_max_weight(self.estimator_name, self.max_weight)

  def _statistic(self, data):
    arrays = data.arrays
    previous, cumulative = data.previous_weights, data.cumulative_weights
    if self.max_weight is not None:
      previous = np.minimum(previous, self.max_weight)
      cumulative = np.minimum(cumulative, self.max_weight)
    terms = data.discounts * (
        previous * arrays["expected_predicted_q_values"] +
        cumulative * (arrays["rewards"] - arrays["predicted_q_values"]))
    return _mean_of(_session_sums(data, terms))


# The short names used in the literature.
PDIS = PerDecisionImportanceSampling
WPDIS = WeightedPerDecisionImportanceSampling
SequentialDR = SequentialDoublyRobust
