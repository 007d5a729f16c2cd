"""More per-decision estimators: Switch-DR, DRos, SNDR, sub-Gaussian IPS.

The estimators Open Bandit Pipeline users reach for when IPS and DR are too
variable. Each is a `BanditEstimator` (so it takes our 1-D form or OBP's
form, and bootstraps over decisions), with the notation of `estimators`:
w_i = pi_i / mu_i, q_i = r_hat(x_i, a_i), v_i = E_{a ~ pi(.|x_i)}[r_hat].
Their settings keep OBP's meaning of `lambda_` under a descriptive name (see
docs/ope.md for the side-by-side table).
"""

import dataclasses
import math
from typing import ClassVar

import numpy as np

from playlist_sim.evaluation.estimators import BanditEstimator
from playlist_sim.evaluation.estimators import _Statistic
from playlist_sim.evaluation.estimators import _importance_weights
from playlist_sim.evaluation.estimators import _mean_of
from playlist_sim.evaluation.estimators import _safe_ratio
from playlist_sim.evaluation.inputs import EstimatorInputError

__all__ = [
    "DRos",
    "DoublyRobustWithShrinkage",
    "SNDR",
    "SelfNormalizedDoublyRobust",
    "SubGaussianIPS",
    "SubGaussianInversePropensityScoring",
    "SwitchDR",
    "SwitchDoublyRobust",
]

_DR_ARGUMENTS = ("rewards", "logging_propensities", "target_probabilities",
                 "predicted_rewards", "expected_predicted_rewards")


def _check_setting(owner: str, name: str, value: float, low: float,
                   high: float, allow_inf: bool = False) -> None:
  """Raises unless low <= value <= high (value may be inf if allowed)."""
  ok = (isinstance(value, (int, float, np.floating, np.integer)) and
        not isinstance(value, bool) and not math.isnan(value) and
        (math.isfinite(value) or allow_inf) and low <= value <= high)
  if not ok:
    raise EstimatorInputError(
        name, f"{owner}: {name} must be a number in [{low}, {high}], got "
        f"{value!r}")


@dataclasses.dataclass(frozen=True)
class SwitchDoublyRobust(BanditEstimator):
  """Switch doubly robust (Wang, Agarwal & Dudik, ICML 2017).

    V_SwitchDR = (1/n) sum_i [v_i + 1{w_i <= tau} w_i (r_i - q_i)],

  DR where the weight is small enough and the direct method where it is not
  (the form of OBP's `SwitchDoublyRobust`, equal to the paper's split of
  the actions by w(x, a) <= tau). tau = inf is DR; tau = 0 is DM.

  Attributes:
    threshold: tau >= 0 (OBP's `lambda_`).
  """
  threshold: float = math.inf
  estimator_name: ClassVar[str] = "switch_dr"
  required_arguments: ClassVar[tuple[str, ...]] = _DR_ARGUMENTS

  def __post_init__(self):
    _check_setting(self.estimator_name, "threshold", self.threshold, 0.0,
                   math.inf, allow_inf=True)

  def _statistic(self, arrays) -> _Statistic:
    weights = _importance_weights(arrays)
    kept = np.where(weights <= self.threshold, weights, 0.0)
    return _mean_of(arrays["expected_predicted_rewards"] + kept * (
        arrays["rewards"] - arrays["predicted_rewards"]))


@dataclasses.dataclass(frozen=True)
class DoublyRobustWithShrinkage(BanditEstimator):
  """DR with optimistic shrinkage (DRos, Su, Dimakopoulou, Krishnamurthy &
  Dudik, ICML 2020).

    V_DRos = (1/n) sum_i [v_i + w~_i (r_i - q_i)],
    w~_i = lambda w_i / (w_i^2 + lambda),

  the weight that minimises a bound on the mean squared error; lambda = 0 is
  DM, lambda = inf is DR.

  Attributes:
    shrinkage: lambda >= 0 (OBP's `lambda_`).
  """
  shrinkage: float = 0.0
  estimator_name: ClassVar[str] = "dr_os"
  required_arguments: ClassVar[tuple[str, ...]] = _DR_ARGUMENTS

  def __post_init__(self):
    _check_setting(self.estimator_name, "shrinkage", self.shrinkage, 0.0,
                   math.inf, allow_inf=True)

  def _statistic(self, arrays) -> _Statistic:
    weights = _importance_weights(arrays)
    if math.isinf(self.shrinkage):
      shrunk = weights
    else:
      shrunk = _safe_ratio(self.shrinkage * weights,
                           weights**2 + self.shrinkage)
    return _mean_of(arrays["expected_predicted_rewards"] + shrunk * (
        arrays["rewards"] - arrays["predicted_rewards"]))


@dataclasses.dataclass(frozen=True)
class SelfNormalizedDoublyRobust(BanditEstimator):
  """Self-normalised doubly robust (SNDR; Kallus & Uehara, NeurIPS 2019,
  in OBP's form).

    V_SNDR = (1/n) sum_i v_i + sum_i w_i (r_i - q_i) / sum_i w_i.

  The DR correction normalised like SNIPS: bounded by the largest residual.
  If every weight is 0 the correction is 0 (the estimate is DM). The
  bootstrap re-normalises in each replicate.
  """
  estimator_name: ClassVar[str] = "sndr"
  required_arguments: ClassVar[tuple[str, ...]] = _DR_ARGUMENTS

  def _statistic(self, arrays) -> _Statistic:
    weights = _importance_weights(arrays)
    model = arrays["expected_predicted_rewards"]
    corrections = weights * (arrays["rewards"] - arrays["predicted_rewards"])

    def statistic(counts):
      if counts is None:
        return float(model.mean() +
                     _safe_ratio(corrections.sum(), weights.sum()))
      return float(counts @ model / counts.sum() +
                   _safe_ratio(counts @ corrections, counts @ weights))
    return statistic


@dataclasses.dataclass(frozen=True)
class SubGaussianInversePropensityScoring(BanditEstimator):
  """Sub-Gaussian IPS (Metelli, Russo & Restelli, NeurIPS 2021).

    V_SGIPS = (1/n) sum_i w~_i r_i,   w~_i = w_i / (1 - lambda + lambda w_i),

  the power-mean correction of the weights that makes the estimator's
  deviations sub-Gaussian; lambda = 0 is IPS. The paper's choice is
  lambda = sqrt(log(1/delta) / (3 d n)) with d the Renyi divergence
  (exponentiated) of the two policies.

  Attributes:
    smoothing: lambda in [0, 1] (OBP's `lambda_`).
  """
  smoothing: float = 0.0
  estimator_name: ClassVar[str] = "sg_ips"

  def __post_init__(self):
    _check_setting(self.estimator_name, "smoothing", self.smoothing, 0.0, 1.0)

  def _statistic(self, arrays) -> _Statistic:
    weights = _importance_weights(arrays)
    smoothed = _safe_ratio(weights, 1.0 - self.smoothing +
                           self.smoothing * weights)
    return _mean_of(smoothed * arrays["rewards"])


# The short names used in the literature and in OBP's tables.
SwitchDR = SwitchDoublyRobust
DRos = DoublyRobustWithShrinkage
SNDR = SelfNormalizedDoublyRobust
SubGaussianIPS = SubGaussianInversePropensityScoring
