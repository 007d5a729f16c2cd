"""`simulator.io_utils` is now `playlist_sim.common.io_utils`.

It moved to a lower layer; import it from there.

This alias keeps the old path working for code and docs that name it.
"""

from playlist_sim.common import io_utils as _moved
from playlist_sim.common.io_utils import *  # noqa: F401,F403

__all__ = list(_moved.__all__)
