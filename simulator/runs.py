"""`simulator.runs` is now `playlist_sim.common.runs`.

It moved to a lower layer; import it from there.

This alias keeps the old path working for code and docs that name it.
"""

from playlist_sim.common import runs as _moved
from playlist_sim.common.runs import *  # noqa: F401,F403

__all__ = list(_moved.__all__)
