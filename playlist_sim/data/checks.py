"""Typed checks of numeric settings (sizes, counts, seeds, rates).

Gin passes values as written: `batch_size = '5'` arrives as a string and
`batch_size = 50.7` as a float, and a bare `int(value)` would quietly turn
them into 5 and 50. These checks refuse anything that is not already of
the right type, naming the parameter (`Owner.parameter`) and what to write
instead, and refuse sizes so large they could only be a typo before
anything is allocated. They sit in the lowest package so every layer
(worlds, samplers, environments, trackers, log generation) shares them.
"""

import math
import numbers

import numpy as np

__all__ = ["MAX_SIZE", "check_count", "check_number", "check_seed"]

#: Default ceiling of a size or count: larger values would try to allocate
#: more memory than any machine running this has.
MAX_SIZE = 10**8


def _where(owner: str | None, name: str) -> str:
  return f"{owner}.{name}" if owner else name


def check_count(name: str, value, minimum: int = 1,
                maximum: int = MAX_SIZE, owner: str | None = None) -> int:
  """A size or count: an integer (not bool, str or float) in range.

  Args:
    name: the parameter's name, for the message.
    value: what was passed.
    minimum: smallest allowed value.
    maximum: largest allowed value.
    owner: the configurable it belongs to (e.g. "PlaylistEnvironment").

  Returns:
    The value as a Python int.

  Raises:
    ValueError: naming the parameter, if the value is not an integer or out
      of range.
  """
  where = _where(owner, name)
  if isinstance(value, (bool, np.bool_)) or not isinstance(
      value, numbers.Integral):
    raise ValueError(
        f"{where} must be an integer, got {value!r} "
        f"({type(value).__name__}); write it without quotes or decimals, "
        f"e.g. {where} = {max(minimum, 1)}")
  value = int(value)
  if not minimum <= value <= maximum:
    raise ValueError(f"{where} must be in {minimum}..{maximum}, got {value}")
  return value


def check_seed(name: str, value, owner: str | None = None) -> int:
  """A seed: a non-negative integer below 2**63 (NumPy's generators'
  range), not a bool, string or float."""
  return check_count(name, value, minimum=0, maximum=2**63 - 1, owner=owner)


def check_number(name: str, value, minimum: float = -math.inf,
                 maximum: float = math.inf, owner: str | None = None
                 ) -> float:
  """A finite real number (int or float, not bool or str) in range.

  Raises:
    ValueError: naming the parameter, if the value is not a finite number
      in [minimum, maximum].
  """
  where = _where(owner, name)
  if isinstance(value, (bool, np.bool_)) or not isinstance(
      value, numbers.Real):
    raise ValueError(f"{where} must be a number, got {value!r} "
                     f"({type(value).__name__})")
  value = float(value)
  if not math.isfinite(value) or not minimum <= value <= maximum:
    raise ValueError(f"{where} must be a finite number in "
                     f"[{minimum}, {maximum}], got {value!r}")
  return value
