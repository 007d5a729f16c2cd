"""`simulator.log_stats` is now `playlist_sim.data.log_stats`.

It moved to a lower layer; import it from there.

This alias keeps the old path working for code and docs that name it.
"""

from playlist_sim.data import log_stats as _moved
from playlist_sim.data.log_stats import *  # noqa: F401,F403

__all__ = list(_moved.__all__)
