"""`simulator.io_utils` is now `playlist_sim.common.io_utils` (a lower layer); import from there.

This alias keeps the old path working for code and docs that name it.
"""

from playlist_sim.common import io_utils as _moved
from playlist_sim.common.io_utils import *  # noqa: F401,F403  pylint: disable=wildcard-import

__all__ = list(_moved.__all__)
