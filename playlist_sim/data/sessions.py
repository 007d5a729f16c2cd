"""Logged sessions as arrays, their train/held-out split, and N from logs.

`LoggedSessions` reads and validates a logs folder's session and track files
into NumPy arrays; `simulator.log_episodes.LogEpisodeSampler` replays them as
episodes and `user_models.log_inputs` trains on them, so both see one split.

Sessions are split into train and held-out parts by session, or by user with
`split_by="user"`, with a seeded hash so the split is stable (`LogSplit`
holds the three settings, handed as one value to every stage that splits
the same logs). The user context is the listener's taste profile from the
logs, the mean `acoustic_vector_*` of the tracks they listened to (not
skipped) in their visible history, so a session's own outcomes never leak
into its context:

* split by session: the user's *training* sessions (a held-out session's
  profile is what training saw of its listener);
* split by user: the user's *other* sessions (leave-session-out). A held-out
  listener has no training sessions; their profile is what a recommender
  knows of a listener it never trained on: their past listening.

Without a `user_id` column every session is its own user: the profile of a
training session is then its own listens and a held-out session's is zero.
"""

import dataclasses

import gin
import numpy as np
import pyarrow as pa

from playlist_sim.data import log_stats
from playlist_sim.data import logs
from playlist_sim.data.catalog import TrackCatalog
from playlist_sim.data.catalog import acoustic_vectors

__all__ = ["LogSplit", "LoggedSessions", "consecutive_skip_limit_from_logs",
           "split_sessions"]


_SKIP_LIMIT_METHODS = ("hazard", "quantile")


@gin.configurable
def consecutive_skip_limit_from_logs(sessions_path: str = gin.REQUIRED,
                                     fraction: float = 0.92,
                                     method: str = "hazard",
                                     hazard_threshold: float = 0.5,
                                     max_session_length: int | None = None
                                     ) -> int:
  """The data-driven N, the skips in a row after which a session ends.

  In gin: `PlaylistEnvironment.consecutive_skip_limit =
  @consecutive_skip_limit_from_logs()`.

  Methods:
  * "hazard" (default):
    `playlist_sim.data.log_stats.consecutive_skip_limit_censored`, the shortest
    run of skips after which logged listeners leave at least `hazard_threshold`
    of the time; sessions cut at the log's length cap are censored (they did not
    end there), so it is right on the public dataset's cut-at-20 logs;
  * "quantile": `playlist_sim.data.log_stats.consecutive_skip_limit`, the
    `fraction` quantile of the skip runs that end sessions (cut sessions
    included, as before the censoring-aware method).

  Args:
    sessions_path: a session log.
    fraction: for "quantile", the share of skip-ended sessions whose final
      run is <= N.
    method: "hazard" or "quantile".
    hazard_threshold: for "hazard", the leaving hazard that marks N.
    max_session_length: for "hazard", the log's cut (None: its longest
      session).

  Returns:
    N >= 1.

  Raises:
    ValueError: on an unknown method (or see the two estimators).
  """
  if method not in _SKIP_LIMIT_METHODS:
    raise ValueError(f"consecutive_skip_limit_from_logs: method must be one "
                     f"of {_SKIP_LIMIT_METHODS}, got {method!r}")
  table = logs.read_sessions(sessions_path)
  if method == "quantile":
    return log_stats.consecutive_skip_limit(table, fraction)
  return log_stats.consecutive_skip_limit_censored(
      table, hazard_threshold, max_session_length)


def split_sessions(session_keys: np.ndarray, holdout_fraction: float,
                   seed: int) -> np.ndarray:
  """True for held-out keys: a seeded, order-free split.

  Args:
    session_keys: int64 keys (session or user index) to split.
    holdout_fraction: fraction held out, in [0, 1).
    seed: seed of the split.

  Returns:
    bool array, True where held out.
  """
  if not 0.0 <= holdout_fraction < 1.0:
    raise ValueError(f"holdout_fraction must be in [0, 1), got "
                     f"{holdout_fraction}")
  mixed = (session_keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) +
           np.uint64(seed * 7919 + 1)) >> np.uint64(11)
  return (mixed % np.uint64(10**6)) < np.uint64(holdout_fraction * 10**6)


@dataclasses.dataclass(frozen=True)
class LogSplit:
  """How logs are split into training and held-out parts.

  One value handed to every consumer of a split (user-model training,
  quantisation, the episode samplers of agents and evaluation), so that they
  hold out the same sessions without reading each other's settings.

  Attributes:
    split_by: "session" or "user".
    holdout_fraction: share of sessions (or users) held out, in [0, 1).
    split_seed: seed of the split's hash.
  """
  split_by: str = "session"
  holdout_fraction: float = 0.2
  split_seed: int = 0

  def __post_init__(self):
    if self.split_by not in ("session", "user"):
      raise ValueError(f"split_by must be 'session' or 'user', got "
                       f"{self.split_by!r}")
    if (isinstance(self.holdout_fraction, bool) or
        not isinstance(self.holdout_fraction, (int, float)) or
        not 0.0 <= self.holdout_fraction < 1.0):
      raise ValueError(f"holdout_fraction must be a number in [0, 1), got "
                       f"{self.holdout_fraction!r}")
    if (isinstance(self.split_seed, bool) or
        not isinstance(self.split_seed, int) or self.split_seed < 0):
      raise ValueError(f"split_seed must be an int >= 0, got "
                       f"{self.split_seed!r}")

  def as_kwargs(self) -> dict:
    """{split_by, holdout_fraction, split_seed}: the keyword arguments of
    `LoggedSessions.load`, `LogEpisodeSampler` and `prepare_inputs`, and the
    `training_split` a learned model records."""
    return dataclasses.asdict(self)


@dataclasses.dataclass
class LoggedSessions:
  """Validated logs as NumPy arrays, with the train/held-out split.

  Attributes:
    catalog: the track catalog (from the tracks file).
    table: the validated session table.
    bounds: session offsets and per-row session index.
    track_rows: int32 [R] catalog row of each logged track.
    levels: int32 [R] response level (index into the five public levels).
    row_users: int64 [R] user of each row (the session index without a
      user_id column).
    session_users: int64 [S] user of each session.
    held_out: bool [S], sessions in the held-out split.
    session_profile: float32 [S, 8] the user's taste profile: mean
      acoustic vector of their listens in their visible history (see the
      module docstring).
    split_by: "session" or "user", how `held_out` was drawn.
  """
  catalog: TrackCatalog
  table: pa.Table
  bounds: log_stats.SessionBoundaries
  track_rows: np.ndarray
  levels: np.ndarray
  row_users: np.ndarray
  session_users: np.ndarray
  held_out: np.ndarray
  session_profile: np.ndarray
  split_by: str = "session"

  @classmethod
  def load(cls, sessions_path: str, tracks_path: str,
           split_by: str = "session", holdout_fraction: float = 0.2,
           split_seed: int = 0) -> "LoggedSessions":
    """Reads, validates and splits logs.

    Args:
      sessions_path: session log (Parquet or CSV, public schema).
      tracks_path: track features.
      split_by: "session" or "user".
      holdout_fraction: fraction held out.
      split_seed: seed of the split.

    Returns:
      The arrays.

    Raises:
      playlist_sim.data.logs.LogFormatError: for malformed files.
      ValueError: for an unknown `split_by`.
    """
    if split_by not in ("session", "user"):
      raise ValueError(f"split_by must be 'session' or 'user', got "
                       f"{split_by!r}")
    catalog = logs.read_tracks(tracks_path)
    table = logs.read_sessions(sessions_path, catalog=catalog)
    bounds = log_stats.session_boundaries(table)
    rows = catalog.rows_of(table.column("track_id_clean").to_pylist())
    levels = log_stats.response_levels(table)
    if "user_id" in table.column_names:
      row_users = table.column("user_id").to_numpy()
      session_users = row_users[bounds.offsets[:-1]]
    else:
      session_users = np.arange(bounds.num_sessions, dtype=np.int64)
      row_users = session_users[bounds.session_index]
    keys = session_users if split_by == "user" else np.arange(
        bounds.num_sessions)
    held_out = split_sessions(keys, holdout_fraction, split_seed)
    data = cls(catalog, table, bounds, rows, levels,
               row_users.astype(np.int64), session_users.astype(np.int64),
               held_out, np.zeros((0, 0), np.float32),  # Set just below.
               split_by)
    data.session_profile = data.taste_profiles(
        leave_session_out=split_by == "user")
    return data

  def visible_totals(self, row_weights: np.ndarray,
                     vectors: np.ndarray, leave_session_out: bool
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per session: weighted sums of row vectors over its user's visible
    history, and the summed weights.

    A session's visible history is its user's training sessions (split by
    session) or all their sessions (split by user); a held-out session's
    rows are never visible to another session of a session split.

    Args:
      row_weights: float or bool [R], the weight of each logged row.
      vectors: float [R, D], a vector per logged row.
      leave_session_out: leave each session's own rows out of its totals.

    Returns:
      (float64 [S, D] sums, float64 [S] summed weights).
    """
    session = self.bounds.session_index
    num_sessions = self.bounds.num_sessions
    weight = np.asarray(row_weights, np.float64)
    if self.split_by == "session":
      weight = weight * ~self.held_out[session]
    own_sum = np.zeros((num_sessions, vectors.shape[1]))
    np.add.at(own_sum, session, vectors * weight[:, None])
    own_count = np.bincount(session, weight, minlength=num_sessions)
    _, user_of = np.unique(self.session_users, return_inverse=True)
    user_sum = np.zeros((user_of.max() + 1, vectors.shape[1]))
    np.add.at(user_sum, user_of, own_sum)
    sums = user_sum[user_of]
    counts = np.bincount(user_of, own_count)[user_of]
    if leave_session_out:
      sums, counts = sums - own_sum, counts - own_count
    return sums, counts

  def taste_profiles(self, leave_session_out: bool) -> np.ndarray:
    """Each session's profile: the mean vector of its user's visible listens.

    The visible history is that of `visible_totals`.

    Args:
      leave_session_out: leave each session's own listens out of its
        profile (always so for `session_profile` split by user; training
        a model on a session split wants it too, see
        `user_models.log_inputs`).

    Returns:
      float32 [S, 8] profiles (zeros for a user without visible listens).
    """
    vectors = acoustic_vectors(self.catalog).astype(np.float64)
    sums, counts = self.visible_totals(
        self.levels == log_stats.LISTEN_LEVEL, vectors[self.track_rows],
        leave_session_out)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
