"""Off-policy estimators on logged per-decision (bandit) data.

Each estimator is a small frozen dataclass in the style of Open Bandit
Pipeline: `estimate_policy_value(...)` estimates the value of a target policy
from data logged under another (logging) policy, and `estimate_interval(...)`
gives a percentile-bootstrap confidence interval. Inputs are plain arrays,
one entry per logged decision i = 1..n:

  r_i   `rewards`, observed after the logged action a_i in context x_i;
  mu_i  `logging_propensities`, mu(a_i | x_i) in (0, 1];
  pi_i  `target_probabilities`, pi(a_i | x_i) in [0, 1];
  q_i   `predicted_rewards`, a reward model's r_hat(x_i, a_i) (DR);
  v_i   `expected_predicted_rewards`, E_{a ~ pi(.|x_i)}[r_hat(x_i, a)] (DM, DR),

and importance weights w_i = pi_i / mu_i (optionally clipped). Arguments are
keyword-only: propensities and target probabilities are both arrays of
probabilities, and a swap would pass silently. Bad input raises
`EstimatorInputError`, whose `argument` names the offending input. The
validation and bootstrap here are shared with `sequential`.
"""

import abc
import dataclasses
import functools
import math
from typing import Callable, ClassVar

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "BanditEstimator",
    "DM",
    "DR",
    "DirectMethod",
    "DoublyRobust",
    "EstimatorInputError",
    "IPS",
    "InversePropensityScoring",
    "SNIPS",
    "SelfNormalizedInversePropensityScoring",
    "relative_error",
]


class EstimatorInputError(ValueError):
  """Invalid input to an off-policy estimator.

  Attributes:
    argument: the name of the offending argument (as the caller spelled it).
  """

  def __init__(self, argument: str, message: str):
    super().__init__(message)
    self.argument = argument


def _float_array(owner: str, name: str, values: ArrayLike | None) -> np.ndarray:
  """`values` as a finite, non-empty float64 vector, or a named error."""
  if values is None:
    raise EstimatorInputError(name, f"{owner}: {name} is required")
  try:
    array = np.asarray(values, dtype=np.float64)
  except (TypeError, ValueError) as error:
    raise EstimatorInputError(
        name, f"{owner}: {name} must be numeric ({error})") from error
  if array.ndim != 1:
    raise EstimatorInputError(
        name, f"{owner}: {name} must be 1-D, got shape {array.shape}")
  if array.size == 0:
    raise EstimatorInputError(name, f"{owner}: {name} is empty")
  bad = np.flatnonzero(~np.isfinite(array))
  if bad.size:
    raise EstimatorInputError(
        name, f"{owner}: {name} has a non-finite value ({array[bad[0]]}) at "
        f"index {bad[0]}")
  return array


def _check_range(owner: str, name: str, array: np.ndarray,
                 low_open: bool) -> None:
  """Raises unless every entry is in [0, 1] (or (0, 1] with `low_open`)."""
  bad = (array <= 0.0) if low_open else (array < 0.0)
  bad = np.flatnonzero(bad | (array > 1.0))
  if bad.size:
    interval = "(0, 1]" if low_open else "[0, 1]"
    raise EstimatorInputError(
        name, f"{owner}: {name} must be in {interval}; index {bad[0]} is "
        f"{array[bad[0]]}")


def _check_lengths(owner: str, arrays: dict[str, np.ndarray]) -> None:
  """Raises unless `arrays` have one length, naming the first that differs."""
  (first_name, first), *rest = arrays.items()
  for name, array in rest:
    if array.shape[0] != first.shape[0]:
      raise EstimatorInputError(
          name, f"{owner}: {name} has {array.shape[0]} entries but "
          f"{first_name} has {first.shape[0]}")


def _validate_arrays(owner: str, given: dict[str, ArrayLike | None],
                     required: tuple[str, ...]) -> dict[str, np.ndarray]:
  """Validates the given float inputs; probabilities are range-checked.

  Optional inputs that are not required are still validated when given, so
  a misaligned array is caught even by an estimator that ignores it.
  """
  arrays = {}
  for name, values in given.items():
    if values is None and name not in required:
      continue
    arrays[name] = _float_array(owner, name, values)
  _check_lengths(owner, arrays)
  if "logging_propensities" in arrays:
    _check_range(owner, "logging_propensities",
                 arrays["logging_propensities"], low_open=True)
  if "target_probabilities" in arrays:
    _check_range(owner, "target_probabilities",
                 arrays["target_probabilities"], low_open=False)
  return arrays


def _check_max_weight(owner: str, max_weight: float | None) -> None:
  if max_weight is not None and not (math.isfinite(max_weight) and
                                     max_weight > 0):
    raise EstimatorInputError(
        "max_weight", f"{owner}: max_weight must be positive and finite, got "
        f"{max_weight}")


def _importance_weights(arrays: dict[str, np.ndarray],
                        max_weight: float | None = None) -> np.ndarray:
  weights = arrays["target_probabilities"] / arrays["logging_propensities"]
  return weights if max_weight is None else np.minimum(weights, max_weight)


#: An estimate as a function of per-unit multiplicities (None: each once).
_Statistic = Callable[[np.ndarray | None], float]


def _weighted_mean(values: np.ndarray, counts: np.ndarray | None) -> float:
  """Mean of `values`, each unit repeated `counts` times (None: once)."""
  if counts is None:
    return float(values.mean())
  return float(counts @ values / counts.sum())


def _mean_of(values: np.ndarray) -> _Statistic:
  """The statistic of estimators that average one term per unit."""
  return functools.partial(_weighted_mean, values)


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
  """numerator / denominator with 0 / 0 := 0 (no weight, no evidence)."""
  numerator, denominator = np.asarray(numerator), np.asarray(denominator)
  positive = denominator > 0
  return np.where(positive, numerator / np.where(positive, denominator, 1.0),
                  0.0)


def _bootstrap_interval(owner: str, statistic: _Statistic, num_units: int,
                        alpha: float, n_bootstrap: int,
                        seed: int | np.random.Generator) -> dict[str, float]:
  """Percentile bootstrap over independent units.

  Each replicate draws `num_units` units with replacement and re-evaluates
  the whole estimator with those multiplicities, so self-normalised
  estimators are re-normalised in each replicate (resampling per-unit terms
  normalised once on the full sample, as Open Bandit Pipeline does for
  SNIPW, understates their spread).
  """
  if not 0.0 < alpha < 1.0:
    raise EstimatorInputError(
        "alpha", f"{owner}: alpha must be in (0, 1), got {alpha}")
  if isinstance(n_bootstrap, bool) or not isinstance(
      n_bootstrap, (int, np.integer)) or n_bootstrap < 1:
    raise EstimatorInputError(
        "n_bootstrap", f"{owner}: n_bootstrap must be a positive integer, got "
        f"{n_bootstrap!r}")
  rng = np.random.default_rng(seed)
  replicates = np.empty(int(n_bootstrap))
  for b in range(int(n_bootstrap)):
    draws = rng.integers(0, num_units, size=num_units)
    counts = np.bincount(draws, minlength=num_units).astype(np.float64)
    replicates[b] = statistic(counts)
  low, high = np.quantile(replicates, [alpha / 2.0, 1.0 - alpha / 2.0])
  return {"mean": float(replicates.mean()), "ci_low": float(low),
          "ci_high": float(high)}


def relative_error(estimate: float, truth: float) -> float:
  """|estimate - truth| / |truth|, the usual OPE accuracy measure.

  Args:
    estimate: an estimated policy value.
    truth: the true (e.g. simulated) value of the same policy.

  Returns:
    The relative absolute error, >= 0.

  Raises:
    EstimatorInputError: if either value is not finite or `truth` is 0
      (where the relative error is undefined).
  """
  for name, value in (("estimate", estimate), ("truth", truth)):
    if not math.isfinite(value):
      raise EstimatorInputError(
          name, f"relative_error: {name} must be finite, got {value}")
  if truth == 0:
    raise EstimatorInputError(
        "truth", "relative_error: truth is 0, so the relative error is "
        "undefined; compare absolute errors instead")
  return abs(estimate - truth) / abs(truth)


@dataclasses.dataclass(frozen=True)
class BanditEstimator(abc.ABC):
  """Base of the per-decision estimators; decisions are the bootstrap units.

  Subclasses name the inputs they need in `required_arguments` and define
  `_statistic(arrays)`: the estimate as a function of how many times each
  decision counts, with the work that does not depend on it done once.
  """
  estimator_name: ClassVar[str] = "bandit"
  required_arguments: ClassVar[tuple[str, ...]] = (
      "rewards", "logging_propensities", "target_probabilities")

  @abc.abstractmethod
  def _statistic(self, arrays: dict[str, np.ndarray]) -> _Statistic:
    """The estimate on validated arrays, given decision multiplicities."""

  def _validate(self, **given: ArrayLike | None) -> dict[str, np.ndarray]:
    return _validate_arrays(self.estimator_name, given,
                            self.required_arguments)

  def estimate_policy_value(
      self, *, rewards: ArrayLike | None = None,
      logging_propensities: ArrayLike | None = None,
      target_probabilities: ArrayLike | None = None,
      predicted_rewards: ArrayLike | None = None,
      expected_predicted_rewards: ArrayLike | None = None) -> float:
    """Estimated value (mean reward per decision) of the target policy.

    Args:
      rewards: float [n], the reward of each logged decision.
      logging_propensities: float [n] in (0, 1], the logging policy's
        probability of the logged action.
      target_probabilities: float [n] in [0, 1], the target policy's
        probability of the logged action.
      predicted_rewards: float [n], r_hat(x_i, a_i) (DR).
      expected_predicted_rewards: float [n], E_{a~pi}[r_hat(x_i, a)] (DM, DR).

    Returns:
      The estimate.

    Raises:
      EstimatorInputError: if an input this estimator needs is missing, or
        any given input is empty, non-finite, out of range or of another
        length than the rest.
    """
    arrays = self._validate(
        rewards=rewards, logging_propensities=logging_propensities,
        target_probabilities=target_probabilities,
        predicted_rewards=predicted_rewards,
        expected_predicted_rewards=expected_predicted_rewards)
    return self._statistic(arrays)(None)

  def estimate_interval(
      self, *, rewards: ArrayLike | None = None,
      logging_propensities: ArrayLike | None = None,
      target_probabilities: ArrayLike | None = None,
      predicted_rewards: ArrayLike | None = None,
      expected_predicted_rewards: ArrayLike | None = None,
      alpha: float = 0.05, n_bootstrap: int = 1000,
      seed: int | np.random.Generator = 0) -> dict[str, float]:
    """Percentile-bootstrap interval, resampling decisions with replacement.

    Args:
      rewards, logging_propensities, target_probabilities, predicted_rewards,
        expected_predicted_rewards: as for `estimate_policy_value`.
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
    arrays = self._validate(
        rewards=rewards, logging_propensities=logging_propensities,
        target_probabilities=target_probabilities,
        predicted_rewards=predicted_rewards,
        expected_predicted_rewards=expected_predicted_rewards)
    num_units = next(iter(arrays.values())).shape[0]
    return _bootstrap_interval(self.estimator_name, self._statistic(arrays),
                               num_units, alpha, n_bootstrap, seed)


@dataclasses.dataclass(frozen=True)
class InversePropensityScoring(BanditEstimator):
  """Inverse propensity scoring (IPS), optionally with clipped weights.

    V_IPS = (1/n) sum_i w_i r_i,   w_i = min(pi_i / mu_i, max_weight).

  Unbiased without clipping, given correct propensities and a logging policy
  that gives positive probability to every action the target may take;
  clipping trades a downward bias (for rewards >= 0) for lower variance.

  Attributes:
    max_weight: clip importance weights at this value (None: no clipping).
  """
  max_weight: float | None = None
  estimator_name: ClassVar[str] = "ips"

  def __post_init__(self):
    _check_max_weight(self.estimator_name, self.max_weight)

  def _statistic(self, arrays):
    weights = _importance_weights(arrays, self.max_weight)
    return _mean_of(weights * arrays["rewards"])


@dataclasses.dataclass(frozen=True)
class SelfNormalizedInversePropensityScoring(BanditEstimator):
  """Self-normalised IPS (SNIPS, Swaminathan & Joachims 2015).

    V_SNIPS = sum_i w_i r_i / sum_i w_i,   w_i = pi_i / mu_i.

  Biased but consistent, and invariant to adding a constant to all rewards,
  which usually makes it much less variable than IPS. If every weight is 0
  (the target never takes a logged action) the estimate is 0, like IPS.
  """
  estimator_name: ClassVar[str] = "snips"

  def _statistic(self, arrays):
    weights = _importance_weights(arrays)
    weighted_rewards = weights * arrays["rewards"]

    def statistic(counts):
      if counts is None:
        return float(_safe_ratio(weighted_rewards.sum(), weights.sum()))
      return float(_safe_ratio(counts @ weighted_rewards, counts @ weights))
    return statistic


@dataclasses.dataclass(frozen=True)
class DirectMethod(BanditEstimator):
  """Direct method (DM): the reward model's value of the target policy.

    V_DM = (1/n) sum_i v_i,   v_i = E_{a ~ pi(.|x_i)}[r_hat(x_i, a)].

  Uses only `expected_predicted_rewards`; the logged rewards and propensities
  are optional (validated if given). Low variance, biased by the model.
  """
  estimator_name: ClassVar[str] = "dm"
  required_arguments: ClassVar[tuple[str, ...]] = (
      "expected_predicted_rewards",)

  def _statistic(self, arrays):
    return _mean_of(arrays["expected_predicted_rewards"])


@dataclasses.dataclass(frozen=True)
class DoublyRobust(BanditEstimator):
  """Doubly robust (DR, Dudik, Langford & Li 2011).

    V_DR = (1/n) sum_i [v_i + w_i (r_i - q_i)],   w_i = min(pi_i/mu_i, max_w),

  with q_i = r_hat(x_i, a_i) and v_i = E_{a~pi}[r_hat(x_i, a)]. Unbiased
  (unclipped) if the propensities are right, whatever the model; low
  variance when the model is good.

  Attributes:
    max_weight: clip importance weights at this value (None: no clipping).
  """
  max_weight: float | None = None
  estimator_name: ClassVar[str] = "dr"
  required_arguments: ClassVar[tuple[str, ...]] = (
      "rewards", "logging_propensities", "target_probabilities",
      "predicted_rewards", "expected_predicted_rewards")

  def __post_init__(self):
    _check_max_weight(self.estimator_name, self.max_weight)

  def _statistic(self, arrays):
    weights = _importance_weights(arrays, self.max_weight)
    return _mean_of(arrays["expected_predicted_rewards"] + weights * (
        arrays["rewards"] - arrays["predicted_rewards"]))


# The short names used in the literature.
IPS = InversePropensityScoring
SNIPS = SelfNormalizedInversePropensityScoring
DM = DirectMethod
DR = DoublyRobust
