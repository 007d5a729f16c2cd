"""Deprecated: `simulator.evaluation.logged` moved up to
`playlist_sim.evaluation.logged`.

The evaluation sits above the simulator (it runs policies in it), so its code
lives in `playlist_sim`; this alias keeps the old import path working for a
while and warns. It is one of the few upward imports the layers contract
allows (`ignore_imports` in pyproject.toml).
"""

import warnings

import playlist_sim.evaluation.logged as _moved0
from playlist_sim.evaluation.logged import *  # noqa: F401,F403

__all__ = list(_moved0.__all__)

warnings.warn(f"{__name__} is deprecated: import "
              "playlist_sim.evaluation.logged",
              DeprecationWarning, stacklevel=2)
