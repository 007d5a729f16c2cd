"""`agents.baselines` is now `playlist_sim.policies.baselines` (a lower layer); import from there.

This alias keeps the old path working for code and docs that name it.
"""

from playlist_sim.policies import baselines as _moved
from playlist_sim.policies.baselines import *  # noqa: F401,F403  pylint: disable=wildcard-import

__all__ = list(_moved.__all__)
