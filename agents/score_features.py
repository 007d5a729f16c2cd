"""`agents.score_features` is now `playlist_sim.policies.score_features`.

It moved to a lower layer; import it from there.

This alias keeps the old path working for code and docs that name it.
"""

from playlist_sim.policies import score_features as _moved
from playlist_sim.policies.score_features import *  # noqa: F401,F403

__all__ = list(_moved.__all__)
