"""`user_models.catalog` is now `playlist_sim.data.catalog` (a lower layer); import from there.

This alias keeps the old path working for code and docs that name it.
"""

from playlist_sim.data import catalog as _moved
from playlist_sim.data.catalog import *  # noqa: F401,F403  pylint: disable=wildcard-import

__all__ = list(_moved.__all__)
