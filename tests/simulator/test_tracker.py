"""Tests of EpisodeTracker: columns, Parquet output, memory bound."""

import os

import numpy as np
import pyarrow.parquet as pq

import simulator
from tests.conftest import make_env

REQUIRED = ("episode_id", "user_id", "step", "track_id", "reward", "skip",
            "done", "termination_reason", "play_mode_id", "p_skip",
            "p_not_skipped")


def _play(env, steps=50):
  env.reset()
  rng = np.random.default_rng(0)
  for _ in range(steps):
    env.step(rng.integers(0, 20, size=env.batch_size).astype(np.int32))


def test_writes_parquet_with_required_columns(small_world, tmp_path):
  tracker = simulator.EpisodeTracker(root_dir=str(tmp_path),
                                     flush_every_rows=37)
  env = make_env(small_world, tracker=tracker, batch_size=4)
  _play(env)
  assert not os.path.exists(tmp_path / "episodes.parquet")  # Not yet closed.
  path = tracker.close()
  table = pq.read_table(path)
  assert set(REQUIRED) <= set(table.column_names)
  assert table.num_rows > 0
  reasons = set(table.column("termination_reason").to_pylist())
  assert reasons <= set(simulator.TERMINATION_REASONS)
  done = np.array(table.column("done").to_pylist())
  assert (np.array(table.column("termination_reason").to_pylist())[done]
          != "").all()
  assert os.listdir(tmp_path) == ["episodes.parquet"]  # No temp file left.


def test_close_without_records_writes_empty_file(small_world, tmp_path):
  tracker = simulator.EpisodeTracker(root_dir=str(tmp_path))
  make_env(small_world, tracker=tracker)
  assert pq.read_table(tracker.close()).num_rows == 0


def test_disabled_tracker_records_nothing(small_world, tmp_path):
  tracker = simulator.EpisodeTracker(root_dir=str(tmp_path), enabled=False)
  _play(make_env(small_world, tracker=tracker))
  assert tracker.close() is None
  assert not os.listdir(tmp_path)


def test_memory_is_bounded_without_root_dir(small_world):
  tracker = simulator.EpisodeTracker(max_rows_in_memory=30)
  _play(make_env(small_world, tracker=tracker, batch_size=8), steps=100)
  table = tracker.to_table()
  assert 30 <= table.num_rows < 30 + 8
  # The newest rows are the ones kept.
  assert max(table.column("episode_id").to_pylist()) > 8
