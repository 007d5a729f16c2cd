"""`agents.oracle` is now `playlist_sim.policies.oracle`.

It moved to a lower layer; import it from there.

This alias keeps the old path working for code and docs that name it.
"""

from playlist_sim.policies import oracle as _moved
from playlist_sim.policies.oracle import *  # noqa: F401,F403

__all__ = list(_moved.__all__)
