"""EpisodeTracker: per-step records of every simulated episode, in Parquet.

The environment hands the tracker one chunk of NumPy arrays per step (every
track played in every row). Chunks stay in memory until `flush_every_rows`
rows accumulate, then go out as one Parquet row group, so memory stays bounded
however long the run. The file is written under a temporary name and renamed
to `root_dir/episodes.parquet` by `close()`: a reader never sees half a file.
Without a `root_dir` the tracker keeps the newest `max_rows_in_memory` rows
for `to_table()` (handy in notebooks and tests).

Columns: episode_id, play_mode_id, user_id, step, slate_position, track_id
(public id), track_row (catalog row), response (level name), skip, reward,
done, termination_reason (`consecutive_skips`, `max_length`,
`pool_exhausted`, or empty while the episode runs), and p_<level> for each of
the user model's response levels.
"""

import collections
import os
from typing import Sequence

import gin
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from playlist_sim.common.io_utils import atomic_path
from playlist_sim.data.checks import check_count

__all__ = ["EpisodeTracker", "TERMINATION_REASONS"]

TERMINATION_REASONS = ("", "consecutive_skips", "max_length", "pool_exhausted",
                       "listener_left")


@gin.configurable
class EpisodeTracker:
  """Collects per-track records and writes them to Parquet."""

  def __init__(self, root_dir: str | None = None, enabled: bool = True,
               flush_every_rows: int = 200_000,
               max_rows_in_memory: int = 1_000_000,
               file_name: str = "episodes.parquet"):
    """Builds the tracker.

    Args:
      root_dir: folder of the Parquet file; None keeps records in memory only.
      enabled: False makes every call a no-op (for speed).
      flush_every_rows: rows buffered before a row group is written.
      max_rows_in_memory: without root_dir, the newest rows kept.
      file_name: name of the file in root_dir.

    Raises:
      ValueError: on non-positive sizes.
    """
    check_count("flush_every_rows", flush_every_rows, maximum=10**9,
                owner="EpisodeTracker")
    check_count("max_rows_in_memory", max_rows_in_memory, maximum=10**12,
                owner="EpisodeTracker")
    self.enabled = bool(enabled)
    self.root_dir = root_dir
    self.path = os.path.join(root_dir, file_name) if root_dir else None
    self.flush_every_rows = int(flush_every_rows)
    self.max_rows_in_memory = int(max_rows_in_memory)
    self._chunks: collections.deque = collections.deque()
    self._buffered = 0
    self._writer = None
    self._atomic = None
    self._levels: tuple[str, ...] = ()
    self._track_ids = None

  def bind(self, response_levels: Sequence[str],
           public_track_ids: np.ndarray) -> None:
    """Called by the environment: names the levels and the public ids."""
    self._levels = tuple(response_levels)
    self._track_ids = np.asarray(public_track_ids)

  def record(self, **columns: np.ndarray) -> None:
    """Buffers one chunk of rows (all arrays the same length).

    Args:
      **columns: episode_id, play_mode_id, user_id, step, slate_position,
        track_row, response (level index), reward, done (bool),
        termination_reason (index into TERMINATION_REASONS), probs [n, L].
    """
    if not self.enabled:
      return
    n = len(columns["episode_id"])
    if n == 0:
      return
    self._chunks.append(columns)
    self._buffered += n
    if self.path is not None:
      if self._buffered >= self.flush_every_rows:
        self.flush()
    else:
      while self._buffered - len(self._chunks[0]["episode_id"]) >= \
          self.max_rows_in_memory:
        self._buffered -= len(self._chunks.popleft()["episode_id"])

  def _chunks_to_table(self) -> pa.Table:
    if not self._chunks:
      return self._empty_table()
    cols = {k: np.concatenate([c[k] for c in self._chunks])
            for k in self._chunks[0]}
    return self._arrow(cols)

  def _arrow(self, cols) -> pa.Table:
    levels = np.asarray(self._levels + ("",))
    data = {
        "episode_id": pa.array(cols["episode_id"], pa.int64()),
        "play_mode_id": pa.array(cols["play_mode_id"], pa.int64()),
        "user_id": pa.array(cols["user_id"], pa.int64()),
        "step": pa.array(cols["step"], pa.int32()),
        "slate_position": pa.array(cols["slate_position"], pa.int32()),
        "track_id": pa.array(self._track_ids[cols["track_row"]].astype(str)),
        "track_row": pa.array(cols["track_row"], pa.int32()),
        "response": pa.array(levels[cols["response"]].astype(str)),
        "skip": pa.array(cols["response"] != len(self._levels) - 1),
        "reward": pa.array(cols["reward"], pa.float32()),
        "done": pa.array(cols["done"], pa.bool_()),
        "termination_reason": pa.array(np.asarray(TERMINATION_REASONS)[
            cols["termination_reason"]].astype(str)),
    }
    for j, level in enumerate(self._levels):
      data[f"p_{level}"] = pa.array(cols["probs"][:, j], pa.float32())
    return pa.table(data)

  def _empty_table(self) -> pa.Table:
    cols = {"episode_id": np.zeros(0, np.int64),
            "play_mode_id": np.zeros(0, np.int64),
            "user_id": np.zeros(0, np.int64), "step": np.zeros(0, np.int32),
            "slate_position": np.zeros(0, np.int32),
            "track_row": np.zeros(0, np.int32),
            "response": np.zeros(0, np.int64),
            "reward": np.zeros(0, np.float32), "done": np.zeros(0, bool),
            "termination_reason": np.zeros(0, np.int64),
            "probs": np.zeros((0, len(self._levels)), np.float32)}
    return self._arrow(cols)

  def flush(self) -> None:
    """Writes buffered rows as a row group (no-op without root_dir)."""
    if self.path is None or not self._chunks:
      return
    table = self._chunks_to_table()
    if self._writer is None:
      self._atomic = atomic_path(self.path)
      tmp = self._atomic.__enter__()
      self._writer = pq.ParquetWriter(tmp, table.schema)
    self._writer.write_table(table)
    self._chunks.clear()
    self._buffered = 0

  def close(self) -> str | None:
    """Flushes, closes and renames the file into place.

    Returns:
      The Parquet path, or None without root_dir or when disabled.
    """
    if self.path is None or not self.enabled:
      return None
    if self._writer is None:  # Nothing recorded yet: still write the schema.
      with atomic_path(self.path) as tmp:
        pq.write_table(self._chunks_to_table(), tmp)
      self._chunks.clear()
      self._buffered = 0
      return self.path
    self.flush()
    self._writer.close()
    self._atomic.__exit__(None, None, None)
    self._writer = self._atomic = None
    return self.path

  def to_table(self) -> pa.Table:
    """The rows kept in memory (without root_dir), as an Arrow table."""
    return self._chunks_to_table()
