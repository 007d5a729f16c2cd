"""Validation of off-policy estimator inputs, in our 1-D form and OBP's form.

Our estimators take one 1-D array per quantity, indexed by logged decision
(`rewards`, `logging_propensities`, `target_probabilities`, ...). Open Bandit
Pipeline (OBP) users pass `reward`, `action`, `position`, `pscore`, the
target's full distribution `action_dist [n, K, L]` and a reward model's
`estimated_rewards_by_reg_model [n, K, L]`; `from_obp_inputs` checks those
(shapes, ranges, distributions summing to 1, actions and positions in range)
and indexes them into the 1-D form, so both forms give the same numbers.

Everything here is NumPy only: importing it must not pull in TensorFlow.
"""

import collections
import math
from typing import Mapping

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "DISTRIBUTION_TOLERANCE",
    "EstimatorInputError",
    "OBP_ARGUMENTS",
    "check_distribution",
    "check_lengths",
    "check_max_weight",
    "check_range",
    "from_obp_inputs",
    "real_array",
    "validate_arrays",
]

#: How far a distribution's sum may be from 1 (OBP uses np.allclose's 1e-8
#: relative + 1e-5 absolute; float32 softmax outputs need about this much).
DISTRIBUTION_TOLERANCE = 1e-5

#: OBP's argument names, in the order its estimators take them.
OBP_ARGUMENTS = ("reward", "action", "position", "pscore", "action_dist",
                 "estimated_rewards_by_reg_model")

# Which OBP inputs each 1-D input is computed from.
_OBP_SOURCES = {
    "rewards": ("reward",),
    "logging_propensities": ("pscore",),
    "target_probabilities": ("action", "action_dist"),
    "predicted_rewards": ("action", "estimated_rewards_by_reg_model"),
    "expected_predicted_rewards": ("action_dist",
                                   "estimated_rewards_by_reg_model"),
}


class EstimatorInputError(ValueError):
  """Invalid input to an off-policy estimator.

  Attributes:
    argument: the name of the offending argument (as the caller spelled it).
  """

  def __init__(self, argument: str, message: str):
    super().__init__(message)
    self.argument = argument


def real_array(owner: str, name: str, values: ArrayLike | None,
               ndim: int = 1) -> np.ndarray:
  """`values` as a finite, non-empty float64 array of `ndim` dimensions.

  Args:
    owner: the estimator (or function) named in errors.
    name: the argument named in errors.
    values: the input.
    ndim: the required number of dimensions.

  Returns:
    The float64 array.

  Raises:
    EstimatorInputError: if `values` is missing, not real numbers (complex
      values, strings, including numeric strings, and objects are refused
      rather than converted), of another dimension, empty or non-finite.
  """
  if values is None:
    raise EstimatorInputError(name, f"{owner}: {name} is required")
  raw = np.asarray(values)
  if raw.dtype.kind not in "biuf":
    raise EstimatorInputError(
        name, f"{owner}: {name} must hold real numbers (bool, int or float), "
        f"got dtype {raw.dtype}; convert strings or complex values yourself")
  array = raw.astype(np.float64)
  if array.ndim != ndim:
    raise EstimatorInputError(
        name, f"{owner}: {name} must be {ndim}-D, got shape {array.shape}")
  if array.size == 0:
    raise EstimatorInputError(name, f"{owner}: {name} is empty")
  bad = np.argwhere(~np.isfinite(array))
  if bad.size:
    index = tuple(int(i) for i in bad[0])
    where = index[0] if ndim == 1 else index
    raise EstimatorInputError(
        name, f"{owner}: {name} has a non-finite value ({array[index]}) at "
        f"index {where}")
  return array


def check_range(owner: str, name: str, array: np.ndarray,
                low_open: bool) -> None:
  """Raises unless every entry is in [0, 1] (or (0, 1] with `low_open`)."""
  bad = (array <= 0.0) if low_open else (array < 0.0)
  bad = np.argwhere(bad | (array > 1.0))
  if bad.size:
    index = tuple(int(i) for i in bad[0])
    interval = "(0, 1]" if low_open else "[0, 1]"
    raise EstimatorInputError(
        name, f"{owner}: {name} must be in {interval}; index "
        f"{index[0] if len(index) == 1 else index} is {array[index]}")


def check_lengths(owner: str, arrays: Mapping[str, np.ndarray],
                  required: tuple[str, ...] = ()) -> None:
  """Raises unless `arrays` share one first dimension, naming the odd one.

  The length most arrays share is taken as right; on a tie, the length of
  the first required array (the estimator's own input) wins, so an unused
  optional array of the wrong length is the one blamed.
  """
  if not arrays:
    return
  lengths = {name: array.shape[0] for name, array in arrays.items()}
  counts = collections.Counter(lengths.values())
  most = max(counts.values())
  tied = [length for length, count in counts.items() if count == most]
  reference = tied[0]
  if len(tied) > 1:
    for name in required:
      if name in lengths and lengths[name] in tied:
        reference = lengths[name]
        break
  agreeing = [name for name, length in lengths.items()
              if length == reference]
  for name, length in lengths.items():
    if length != reference:
      raise EstimatorInputError(
          name, f"{owner}: {name} has {length} entries but "
          f"{', '.join(agreeing)} {'has' if len(agreeing) == 1 else 'have'} "
          f"{reference}")


def validate_arrays(owner: str, given: Mapping[str, ArrayLike | None],
                    required: tuple[str, ...]) -> dict[str, np.ndarray]:
  """Validates the given 1-D float inputs; probabilities are range-checked.

  Optional inputs that are not required are still validated when given, so
  a misaligned array is caught even by an estimator that ignores it.
  """
  arrays = {}
  for name, values in given.items():
    if values is None and name not in required:
      continue
    arrays[name] = real_array(owner, name, values)
  check_lengths(owner, arrays, required)
  for name, low_open in (("logging_propensities", True),
                         ("target_probabilities", False)):
    if name in arrays:
      check_range(owner, name, arrays[name], low_open)
  return arrays


def check_max_weight(owner: str, max_weight: float | None) -> None:
  """Raises unless `max_weight` is None or positive and finite."""
  if max_weight is not None and not (math.isfinite(max_weight) and
                                     max_weight > 0):
    raise EstimatorInputError(
        "max_weight", f"{owner}: max_weight must be positive and finite, got "
        f"{max_weight}")


def _index_array(owner: str, name: str, values: ArrayLike, size: int
                 ) -> np.ndarray:
  """An int64 vector of indices in [0, size), or a named error."""
  raw = np.asarray(values)
  if raw.dtype.kind not in "iu" or raw.ndim != 1 or raw.size == 0:
    raise EstimatorInputError(
        name, f"{owner}: {name} must be a non-empty 1-D integer array, got "
        f"dtype {raw.dtype} and shape {raw.shape}")
  bad = np.flatnonzero((raw < 0) | (raw >= size))
  if bad.size:
    raise EstimatorInputError(
        name, f"{owner}: {name} must be in [0, {size}) (the size of "
        f"action_dist's axis); index {bad[0]} is {raw[bad[0]]}")
  return raw.astype(np.int64)


def check_distribution(owner: str, name: str, array: np.ndarray) -> None:
  """Raises unless `array [n, K, L]` is in [0, 1] and sums to 1 over K."""
  check_range(owner, name, array, low_open=False)
  sums = array.sum(axis=1)
  bad = np.argwhere(np.abs(sums - 1.0) > DISTRIBUTION_TOLERANCE)
  if bad.size:
    row, slot = (int(i) for i in bad[0])
    raise EstimatorInputError(
        name, f"{owner}: {name}[{row}, :, {slot}] sums to {sums[row, slot]!r},"
        f" not 1 (tolerance {DISTRIBUTION_TOLERANCE}); {name} must be the "
        "target policy's distribution over actions at each position")


def from_obp_inputs(owner: str, needed: tuple[str, ...],
                    obp: Mapping[str, ArrayLike | None]
                    ) -> dict[str, np.ndarray]:
  """OBP-form inputs as our 1-D inputs, validated.

  Args:
    owner: the estimator named in errors.
    needed: the 1-D inputs the estimator requires (e.g. "rewards").
    obp: OBP's arguments by name (`OBP_ARGUMENTS`; None: not given).

  Returns:
    The 1-D inputs computable from what was given: `rewards` (reward),
    `logging_propensities` (pscore), `target_probabilities`
    (action_dist[i, action_i, position_i]), `predicted_rewards`
    (estimated_rewards_by_reg_model[i, action_i, position_i]) and
    `expected_predicted_rewards` (sum_a action_dist[i, a, position_i]
    estimated_rewards_by_reg_model[i, a, position_i]).

  Raises:
    EstimatorInputError: if an input the estimator needs is missing, or a
      given one is not real and finite, of the wrong shape or length, out of
      range, or `action_dist` does not sum to 1 over actions.
  """
  for name in needed:
    for source in _OBP_SOURCES[name]:
      if obp.get(source) is None:
        raise EstimatorInputError(
            source, f"{owner}: {source} is required (OBP form)")
  arrays = {}
  for name in ("reward", "pscore"):
    if obp.get(name) is not None:
      arrays[name] = real_array(owner, name, obp[name])
  cubes = {}
  for name in ("action_dist", "estimated_rewards_by_reg_model"):
    if obp.get(name) is not None:
      cubes[name] = real_array(owner, name, obp[name], ndim=3)
  if len(cubes) == 2 and (cubes["action_dist"].shape !=
                          cubes["estimated_rewards_by_reg_model"].shape):
    raise EstimatorInputError(
        "estimated_rewards_by_reg_model", f"{owner}: "
        "estimated_rewards_by_reg_model has shape "
        f"{cubes['estimated_rewards_by_reg_model'].shape} but action_dist "
        f"has {cubes['action_dist'].shape}; both are [n, K, L]")
  if "action_dist" in cubes:
    check_distribution(owner, "action_dist", cubes["action_dist"])
  shape = next(iter(cubes.values())).shape if cubes else None
  if obp.get("action") is not None:
    arrays["action"] = _index_array(owner, "action", obp["action"],
                                    shape[1] if shape else np.iinfo(
                                        np.int64).max)
  if obp.get("position") is not None:
    arrays["position"] = _index_array(owner, "position", obp["position"],
                                      shape[2] if shape else np.iinfo(
                                          np.int64).max)
  elif shape is not None and shape[2] > 1:
    raise EstimatorInputError(
        "position", f"{owner}: position is required when action_dist has "
        f"{shape[2]} positions (L > 1)")
  check_lengths(owner, {**arrays, **cubes}, ("reward", "action_dist"))
  if "pscore" in arrays:
    check_range(owner, "pscore", arrays["pscore"], low_open=True)
  out = {}
  if "reward" in arrays:
    out["rewards"] = arrays["reward"]
  if "pscore" in arrays:
    out["logging_propensities"] = arrays["pscore"]
  if not cubes:
    return out
  rows = np.arange(shape[0])
  slot = arrays.get("position", np.zeros(shape[0], np.int64))
  if "action_dist" in cubes and "action" in arrays:
    out["target_probabilities"] = cubes["action_dist"][
        rows, arrays["action"], slot]
  model = cubes.get("estimated_rewards_by_reg_model")
  if model is not None and "action" in arrays:
    out["predicted_rewards"] = model[rows, arrays["action"], slot]
  if model is not None and "action_dist" in cubes:
    out["expected_predicted_rewards"] = (
        cubes["action_dist"][rows, :, slot] * model[rows, :, slot]).sum(axis=1)
  return out
