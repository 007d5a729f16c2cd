"""Deprecated: `simulator.evaluation` moved up to `playlist_sim.evaluation`.

The evaluation sits above the simulator (it runs policies in it), so its code
lives in `playlist_sim`; this alias keeps the old import path working for a
while and warns. It is one of the few upward imports the layers contract
allows (`ignore_imports` in pyproject.toml). Names are looked up on use, so
the NumPy-only estimators still import without TensorFlow.
"""

import warnings

import playlist_sim.evaluation as _moved

__all__ = list(_moved.__all__)

warnings.warn(f"{__name__} is deprecated: import playlist_sim.evaluation",
              DeprecationWarning, stacklevel=2)


def __getattr__(name: str):
  return getattr(_moved, name)
