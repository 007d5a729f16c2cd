"""generate_logs writes readable, deterministic logs in the public schema;
LogEpisodeSampler turns them back into episodes."""

import hashlib
import os
import subprocess
import sys

import gin
import numpy as np
import pytest
from tf_agents.environments import utils as env_utils

import simulator
from playlist_sim.data import log_stats
from playlist_sim.data import logs
from playlist_sim.policies.baselines import acoustic_vectors
from playlist_sim.data.sessions import LoggedSessions
from simulator.log_episodes import LogEpisodeSampler
from playlist_sim.data.sessions import split_sessions
from playlist_sim.jobs.log_generation import generate_logs
from tests.conftest import REPO_ROOT

_BINDINGS = """
SyntheticWorld.num_tracks = 400
SyntheticWorld.num_users = 80
"""


def _generate(root, fmt="parquet", sessions=300, seed=0):
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config(_BINDINGS)
  return generate_logs(str(root), num_sessions=sessions, batch_size=64,
                       seed=seed, file_format=fmt, progress=False)


@pytest.fixture(scope="module")
def world_logs(tmp_path_factory):
  root = tmp_path_factory.mktemp("logs")
  summary = _generate(root)
  gin.clear_config()
  return root, summary


def test_logs_round_trip_through_the_reader(world_logs):
  root, summary = world_logs
  catalog = logs.read_tracks(root / "tracks.parquet")
  table = logs.read_sessions(root / "sessions.parquet", catalog=catalog)
  assert list(table.column_names) == (list(logs.SESSION_COLUMNS) +
                                      list(logs.EXTRA_SESSION_COLUMNS))
  for name, dtype in {**logs.SESSION_DTYPES,
                      **logs.EXTRA_SESSION_DTYPES}.items():
    assert table.schema.field(name).type == dtype, name
  assert summary["num_sessions"] == 300
  assert len(np.unique(table.column("session_id").to_numpy())) == 300
  propensity = table.column("propensity").to_numpy()
  assert ((propensity > 0) & (propensity <= 1)).all()
  levels = log_stats.response_levels(table)
  assert set(np.unique(levels)) == {0, 1, 2, 3, 4}  # All five outcomes.
  assert summary["consecutive_skip_limit"] >= 1


def test_csv_format_and_same_seed_same_bytes(tmp_path):
  _generate(tmp_path / "a", fmt="csv", sessions=100)
  _generate(tmp_path / "b", fmt="csv", sessions=100)
  for name in ("sessions.csv", "tracks.csv"):
    digests = {hashlib.sha256((tmp_path / d / name).read_bytes()).hexdigest()
               for d in ("a", "b")}
    assert len(digests) == 1, name
  header = (tmp_path / "a" / "sessions.csv").read_text().splitlines()
  assert header[0].startswith("session_id,session_position,session_length,")
  assert ",true," in "\n".join(header[1:50]) or ",false," in header[1]
  assert logs.read_sessions(tmp_path / "a" / "sessions.csv").num_rows > 100


@pytest.mark.integration
def test_generate_logs_script_same_seed_same_files(tmp_path):
  for name in ("a", "b"):
    out = subprocess.run(
        [sys.executable, "scripts/generate_logs.py", "--root_dir",
         str(tmp_path / name), "--seed", "3", "--gin_bindings",
         "generate_logs.num_sessions = 200", "--gin_bindings",
         "SyntheticWorld.num_tracks = 500"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
  for f in ("sessions.parquet", "tracks.parquet"):
    assert ((tmp_path / "a" / f).read_bytes() ==
            (tmp_path / "b" / f).read_bytes()), f


def test_log_episode_sampler_builds_valid_environments(world_logs):
  root, _ = world_logs
  world = simulator.RandomEpisodeSampler  # Only for the world's user model.
  del world
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config(_BINDINGS)
  gin.parse_config(f"""
EnvironmentBuilder.episode_sampler = @LogEpisodeSampler()
LogEpisodeSampler.sessions_path = '{root}/sessions.parquet'
LogEpisodeSampler.tracks_path = '{root}/tracks.parquet'
LogEpisodeSampler.max_pool_size = 50
PlaylistEnvironment.consecutive_skip_limit = @consecutive_skip_limit_from_logs()
consecutive_skip_limit_from_logs.sessions_path = '{root}/sessions.parquet'
""")
  for batch_size in (1, 8):
    env = simulator.EnvironmentBuilder().get_py_env(batch_size=batch_size)
    env_utils.validate_py_environment(env, episodes=10)


def test_log_sampler_splits_are_disjoint_and_pools_hold_session_tracks(
    world_logs):
  root, _ = world_logs
  paths = dict(sessions_path=str(root / "sessions.parquet"),
               tracks_path=str(root / "tracks.parquet"), max_pool_size=60)
  train = LogEpisodeSampler(split="train", **paths)
  test = LogEpisodeSampler(split="test", **paths)
  both = LogEpisodeSampler(split="all", **paths)
  assert train.num_sessions + test.num_sessions == both.num_sessions == 300
  assert not set(train._session_index) & set(test._session_index)
  by_user = LogEpisodeSampler(split="test", split_by="user", **paths)
  train_users = set(LogEpisodeSampler(split="train", split_by="user",
                                      **paths)._session_users[
                                          train._session_index])
  del train_users  # Users differ by construction of the hash split:
  held = split_sessions(by_user._session_users, 0.2, 0)
  assert held[by_user._session_index].all()
  modes = test.sample(np.random.default_rng(0), 4)
  assert modes.candidate_ids.shape == (4, 60)
  for row, session in zip(modes.candidate_ids, modes.play_mode_ids):
    own = test._track_rows[test._offsets[session]:test._offsets[session + 1]]
    assert len(set(row)) == 60
    assert set(own[:60]) <= set(row) or len(set(own)) > 60


def _mean_listen_vector(data, sessions):
  rows = np.isin(data.bounds.session_index, sessions) & (data.levels == 4)
  if not rows.any():
    return np.zeros(8)
  return acoustic_vectors(data.catalog)[data.track_rows[rows]].mean(0)


@pytest.mark.parametrize("split_by", ["session", "user"])
def test_taste_profiles_never_hold_the_sessions_own_outcomes(world_logs,
                                                             split_by):
  root, _ = world_logs
  data = LoggedSessions.load(str(root / "sessions.parquet"),
                             str(root / "tracks.parquet"), split_by=split_by)
  assert data.split_by == split_by
  held_users = set(data.session_users[data.held_out])
  if split_by == "user":  # Held-out listeners have no training session.
    assert not held_users & set(data.session_users[~data.held_out])
  checked = 0
  for s in np.flatnonzero(data.held_out)[:20]:
    mine = np.flatnonzero(data.session_users == data.session_users[s])
    visible = (mine[mine != s] if split_by == "user" else
               mine[~data.held_out[mine]])
    np.testing.assert_allclose(data.session_profile[s],
                               _mean_listen_vector(data, visible), atol=1e-5)
    checked += int(len(visible) > 0)
  assert checked > 0  # Held-out listeners are not cold: they have a past.


def test_log_sampler_rejects_bad_arguments(world_logs):
  root, _ = world_logs
  paths = dict(sessions_path=str(root / "sessions.parquet"),
               tracks_path=str(root / "tracks.parquet"))
  with pytest.raises(ValueError, match="extra_tracks"):
    LogEpisodeSampler(extra_tracks="nearest", **paths)
  with pytest.raises(ValueError, match="max_pool_size"):
    LogEpisodeSampler(max_pool_size=0, **paths)
  with pytest.raises(logs.LogFormatError):
    LogEpisodeSampler(sessions_path=str(root / "tracks.parquet"),
                      tracks_path=paths["tracks_path"])
