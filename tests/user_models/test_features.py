"""The features built from logs (training) equal those built in the
environment (serving), and the context rebuilt from logs is exact."""

import os

import gin
import numpy as np
import pytest

import simulator
import user_models
from simulator.episode_sampler import AbstractEpisodeSampler, PlayModes
from playlist_sim.data.sessions import LoggedSessions
from playlist_sim.jobs.log_generation import generate_logs
from tests.conftest import REPO_ROOT
from user_models import features
from user_models.base import PUBLIC_RESPONSE_LEVELS, SessionContext


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
  root = tmp_path_factory.mktemp("logs")
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config("SyntheticWorld.num_tracks = 400")
  generate_logs(str(root), num_sessions=150, progress=False)
  gin.clear_config()
  return LoggedSessions.load(str(root / "sessions.parquet"),
                             str(root / "tracks.parquet"))


class _ReplaySampler(AbstractEpisodeSampler):
  """One logged session's tracks as the pool, in play order."""

  def __init__(self, catalog, track_rows, user_id, profile):
    self.catalog = catalog
    self.max_pool_size = len(track_rows)
    self.user_feature_dim = profile.shape[0]
    self._rows, self._user, self._profile = track_rows, user_id, profile

  def _sample(self, rng, n):
    return PlayModes(
        user_ids=np.full(n, self._user, np.int64),
        user_features=np.tile(self._profile, (n, 1)),
        candidate_ids=np.tile(self._rows, (n, 1)).astype(np.int32),
        pool_sizes=np.full(n, len(self._rows), np.int32),
        play_mode_ids=np.zeros(n, np.int64))


class _ScriptedListener(user_models.AbstractUserModel):
  """Gives the logged level with probability 1; records what it is asked."""

  response_levels = PUBLIC_RESPONSE_LEVELS

  def __init__(self, levels):
    self.levels = levels
    self.queries = []

  def predict(self, context, track_ids):
    self.queries.append((context, track_ids.copy()))
    level = self.levels[len(self.queries) - 1]
    return np.eye(len(PUBLIC_RESPONSE_LEVELS), dtype=np.float32)[level][None, None, :]


def replay(data, session):
  """Plays logged `session` in a PlaylistEnvironment; returns the queries."""
  start, stop = data.bounds.offsets[session], data.bounds.offsets[session + 1]
  listener = _ScriptedListener(data.levels[start:stop])
  env = simulator.PlaylistEnvironment(
      listener, simulator.DiscreteTrackSampler(),
      _ReplaySampler(data.catalog, data.track_rows[start:stop],
                     data.session_users[session],
                     data.session_profile[session]),
      consecutive_skip_limit=100, max_playlist_length=100)
  env.reset()
  for _ in range(stop - start):
    env.step(np.zeros(1, np.int32))  # Slot 0, else the next free one.
  return listener.queries


def _session_with_skips(data, min_length=13):
  lengths = data.bounds.lengths
  for s in np.flatnonzero(data.held_out & (lengths >= min_length)):
    rows = slice(data.bounds.offsets[s], data.bounds.offsets[s + 1])
    if (data.levels[rows] != 4).sum() >= 2:
      return int(s)
  pytest.skip("no long held-out session with skips in the tiny logs")


def test_logged_contexts_by_hand():
  # Two sessions: levels 4,0,1,4 then 0,0 (4 = listen). History window 3.
  levels = np.array([4, 0, 1, 4, 0, 0])
  tracks = np.array([10, 11, 12, 13, 20, 21])
  ctx = features.logged_contexts(tracks, levels, np.array([0, 4, 6]),
                                 np.array([7, 7, 7, 7, 8, 8]),
                                 np.zeros((6, 2)), history_window=3)
  np.testing.assert_array_equal(ctx.position, [0, 1, 2, 3, 0, 1])
  np.testing.assert_array_equal(ctx.consecutive_skips, [0, 0, 1, 2, 0, 1])
  np.testing.assert_array_equal(ctx.num_skips, [0, 0, 1, 2, 0, 1])
  np.testing.assert_array_equal(ctx.history_ids[3], [10, 11, 12])
  np.testing.assert_array_equal(ctx.history_responses[3], [4, 0, 1])
  np.testing.assert_array_equal(ctx.history_ids[5], [0, 0, 20])
  np.testing.assert_array_equal(ctx.history_responses[5], [-1, -1, 0])
  np.testing.assert_array_equal(ctx.history_responses[4], [-1, -1, -1])


def test_environment_context_equals_logged_context(logs):
  session = _session_with_skips(logs)
  queries = replay(logs, session)
  start = logs.bounds.offsets[session]
  logged = features.logged_contexts(
      logs.track_rows, logs.levels, logs.bounds.offsets, logs.row_users,
      logs.session_profile[logs.bounds.session_index])
  assert len(queries) == logs.bounds.lengths[session]
  for j, (ctx, track_ids) in enumerate(queries):
    row = start + j
    assert track_ids[0, 0] == logs.track_rows[row]
    for field in ("user_ids", "position", "history_ids", "history_responses",
                  "consecutive_skips", "num_skips", "user_features"):
      np.testing.assert_array_equal(getattr(ctx, field)[0],
                                    getattr(logged, field)[row], err_msg=field)


def test_training_and_serving_features_agree(logs):
  session = _session_with_skips(logs)
  queries = replay(logs, session)
  tables = features.FeatureTables(logs.catalog)
  logged = features.logged_contexts(
      logs.track_rows, logs.levels, logs.bounds.offsets, logs.row_users,
      logs.session_profile[logs.bounds.session_index])
  train_cwm = features.cwm_features(logged, logs.track_rows[:, None],
                                    tables)[:, 0]
  train_swm = features.swm_candidate_features(
      logged, logs.track_rows[:, None], tables)[:, 0]
  start = logs.bounds.offsets[session]
  for j, (ctx, track_ids) in enumerate(queries):
    np.testing.assert_array_equal(
        features.cwm_features(ctx, track_ids, tables)[0, 0],
        train_cwm[start + j])
    np.testing.assert_array_equal(
        features.swm_candidate_features(ctx, track_ids, tables)[0, 0],
        train_swm[start + j])


def _context(hist_ids, hist_resp, position, consecutive=0, skips=0):
  return SessionContext(
      rows=np.array([0]), user_ids=np.array([1]),
      user_features=np.ones((1, 8), np.float32),
      position=np.array([position], np.int32),
      history_ids=np.array([hist_ids], np.int32),
      history_responses=np.array([hist_resp], np.int32),
      consecutive_skips=np.array([consecutive], np.int32),
      num_skips=np.array([skips], np.int32))


def test_slate_item_sees_earlier_items_as_played(small_world):
  tables = features.FeatureTables(small_world.catalog)
  before = _context([0, 0, 5, 6], [-1, -1, 3, 0], position=2, consecutive=1,
                    skips=1)
  slate = features.cwm_features(before, np.array([[7, 9]]), tables, 4)
  after = _context([0, 5, 6, 7], [-1, 3, 0, 3], position=3, consecutive=1,
                   skips=1)
  np.testing.assert_allclose(
      slate[0, 1], features.cwm_features(after, np.array([[9]]), tables, 4)[0, 0])
  cand = features.swm_candidate_features(before, np.array([[7, 9]]), tables,
                                         4)
  # The SWM candidate row is the CWM row with the unit acoustic vector
  # after the track features; its first session scalar is the position.
  cut = 8 + tables.track_features.shape[1]
  acoustic = features.ACOUSTIC_DIM
  np.testing.assert_array_equal(cand[..., :cut], slate[..., :cut])
  np.testing.assert_array_equal(cand[..., cut + acoustic:], slate[..., cut:])
  np.testing.assert_array_equal(cand[0, :, cut:cut + acoustic],
                                tables.unit_acoustic[[7, 9]])
  position = cut + acoustic
  assert cand[0, 1, position] - cand[0, 0, position] == pytest.approx(0.1)


def test_widths_match_the_spec(small_world):
  tables = features.FeatureTables(small_world.catalog)
  spec = tables.spec(8)
  ctx = _context([0] * 10, [-1] * 10, position=0)
  ids = np.array([[3]])
  assert features.cwm_features(ctx, ids, tables).shape[-1] == spec.cwm_dim
  assert features.swm_candidate_features(ctx, ids, tables).shape[-1] == (
      spec.swm_candidate_dim)
  step = features.swm_step_features(np.array([3]),
                                    features.one_hot_levels(np.array([2])),
                                    tables)
  assert step.shape == (1, spec.swm_step_dim)
  assert features.swm_start_features(2, tables).shape == (2, spec.swm_step_dim)


def test_user_index_column_maps_unknown_ids_to_zero():
  index = features.user_index_column(np.array([0, 4, 5, 99, -1]), 6)
  np.testing.assert_array_equal(index[:, 0], [1, 5, 0, 0, 0])
  assert index.dtype == np.float32
