"""`user_models.catalog` is now `playlist_sim.data.catalog`.

It moved to a lower layer; import it from there.

This alias keeps the old path working for code and docs that name it.
"""

from playlist_sim.data import catalog as _moved
from playlist_sim.data.catalog import *  # noqa: F401,F403

__all__ = list(_moved.__all__)
