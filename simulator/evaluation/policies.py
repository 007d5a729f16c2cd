"""Deprecated: `simulator.evaluation.policies` moved up to
`playlist_sim.policies.softmax` and `playlist_sim.policies.registry`.

The evaluation sits above the simulator (it runs policies in it), so its code
lives in `playlist_sim`; this alias keeps the old import path working for a
while and warns. It is one of the few upward imports the layers contract
allows (`ignore_imports` in pyproject.toml).
"""

import warnings

import playlist_sim.policies.softmax as _moved0
import playlist_sim.policies.registry as _moved1
from playlist_sim.policies.softmax import *  # noqa: F401,F403
from playlist_sim.policies.registry import *  # noqa: F401,F403

__all__ = list(_moved0.__all__) + list(_moved1.__all__)

warnings.warn(f"{__name__} is deprecated: import "
              "playlist_sim.policies.softmax and playlist_sim.policies.registry",
              DeprecationWarning, stacklevel=2)
