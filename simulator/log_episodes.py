"""Episodes from logs: play modes built from logged sessions.

`LogEpisodeSampler` replays the *situations* of logged sessions: each episode
takes one logged session's listener and a candidate pool made of that
session's own tracks plus tracks drawn from the catalog (uniformly, or
weighted by popularity), shuffled so the logged tracks hold no special slots.
The sessions, their split and the listeners' taste profiles come from
`playlist_sim.data.sessions.LoggedSessions` (see its module docstring).
"""

import gin
import numpy as np

from playlist_sim.data.checks import check_count, check_number, check_seed
from playlist_sim.data.sessions import LoggedSessions
from playlist_sim.data.sessions import consecutive_skip_limit_from_logs
from playlist_sim.data.sessions import split_sessions
from simulator.episode_sampler import AbstractEpisodeSampler, PlayModes

__all__ = ["LogEpisodeSampler", "LoggedSessions",
           "consecutive_skip_limit_from_logs", "split_sessions"]


@gin.configurable
class LogEpisodeSampler(AbstractEpisodeSampler):
  """Play modes from logged sessions (see module docstring)."""

  def __init__(self, sessions_path: str = gin.REQUIRED,
               tracks_path: str = gin.REQUIRED, max_pool_size: int = 100,
               extra_tracks: str = "uniform", split: str = "train",
               split_by: str = "session", holdout_fraction: float = 0.2,
               split_seed: int = 0):
    """Reads and validates the logs, and prepares the sessions of `split`.

    Args:
      sessions_path: session log (Parquet or CSV, public schema).
      tracks_path: track features (Parquet or CSV).
      max_pool_size: pool size K; longer sessions are truncated to K tracks.
      extra_tracks: "uniform" or "popularity": how the rest of the pool is
        drawn from the catalog.
      split: "train", "test" (held out) or "all".
      split_by: "session" or "user".
      holdout_fraction: fraction of sessions (or users) held out.
      split_seed: seed of the split.

    Raises:
      playlist_sim.data.logs.LogFormatError: for malformed files.
      ValueError: for bad arguments or an empty split.
    """
    if extra_tracks not in ("uniform", "popularity"):
      raise ValueError(f"extra_tracks must be 'uniform' or 'popularity', got "
                       f"{extra_tracks!r}")
    if split not in ("train", "test", "all") or split_by not in ("session",
                                                                 "user"):
      raise ValueError(f"split must be train/test/all and split_by "
                       f"session/user; got {split!r}, {split_by!r}")
    # Typed before the logs are read: '100' or 50.7 is a mistake, not a size.
    check_count("max_pool_size", max_pool_size, owner="LogEpisodeSampler")
    check_seed("split_seed", split_seed, owner="LogEpisodeSampler")
    check_number("holdout_fraction", holdout_fraction, 0.0, 1.0,
                 owner="LogEpisodeSampler")
    data = LoggedSessions.load(sessions_path, tracks_path, split_by=split_by,
                               holdout_fraction=holdout_fraction,
                               split_seed=split_seed)
    self.catalog = data.catalog
    if not 1 <= max_pool_size <= self.catalog.num_tracks:
      raise ValueError(f"max_pool_size must be in 1..{self.catalog.num_tracks}"
                       f", got {max_pool_size}")
    chosen = {"train": ~data.held_out, "test": data.held_out,
              "all": np.ones_like(data.held_out)}[split]
    if not chosen.any():
      raise ValueError(f"the {split!r} split of {sessions_path} is empty")
    self.max_pool_size = int(max_pool_size)
    self.split = split
    #: How the logs were split (compare a learned model's `training_split`).
    self.split_settings = {"split_by": split_by,
                           "holdout_fraction": float(holdout_fraction),
                           "split_seed": int(split_seed)}
    self.user_feature_dim = data.session_profile.shape[1]
    self.extra_tracks = extra_tracks
    self._session_index = np.flatnonzero(chosen)
    self._offsets = data.bounds.offsets
    self._track_rows = data.track_rows
    self._session_users = data.session_users
    self._session_profile = data.session_profile
    pop = self.catalog.popularity.astype(np.float64) + 1e-3
    self._popularity_p = pop / pop.sum()

  @property
  def num_sessions(self) -> int:
    """Sessions in this sampler's split."""
    return int(len(self._session_index))

  def _sample(self, rng: np.random.Generator, n: int) -> PlayModes:
    picks = self._session_index[rng.integers(0, self.num_sessions, size=n)]
    k = self.max_pool_size
    ids = np.zeros((n, k), np.int32)
    for i, s in enumerate(picks):
      own = np.unique(self._track_rows[self._offsets[s]:self._offsets[s + 1]])
      own = rng.permutation(own)[:k]
      need = k - len(own)
      if need:
        p = (self._popularity_p if self.extra_tracks == "popularity" else
             None)
        extra = rng.choice(self.catalog.num_tracks, size=need + len(own),
                           replace=False, p=p)
        extra = extra[~np.isin(extra, own)][:need]
        own = np.concatenate([own, extra])
      ids[i, :len(own)] = rng.permutation(own)
    sizes = np.full(n, k, np.int32)  # The catalog always fills the pool.
    return PlayModes(user_ids=self._session_users[picks],
                     user_features=self._session_profile[picks],
                     candidate_ids=ids, pool_sizes=sizes,
                     play_mode_ids=picks.astype(np.int64))
