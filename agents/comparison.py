"""`agents.comparison` is now `playlist_sim.evaluation.comparison`.

It moved to a lower layer; import it from there.

This alias keeps the old path working for code and docs that name it.
"""

from playlist_sim.evaluation import comparison as _moved
from playlist_sim.evaluation.comparison import *  # noqa: F401,F403

__all__ = list(_moved.__all__)
