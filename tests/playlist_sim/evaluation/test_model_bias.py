"""model_bias records a policy's world states and cuts models' errors there."""

import copy
import os

import gin
import numpy as np
import pytest

from playlist_sim.data.world import SyntheticWorld
from playlist_sim.evaluation import model_bias
from playlist_sim.jobs.log_generation import generate_logs
from tests.conftest import REPO_ROOT
from user_models.listener import ParametricListener


@pytest.fixture(scope="module")
def world_and_logs(tmp_path_factory):
  """The calibrated world (400 tracks) and 200 sessions of its logs."""
  logs_dir = str(tmp_path_factory.mktemp("bias_logs"))
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config("SyntheticWorld.num_tracks = 400")
  generate_logs(logs_dir, num_sessions=200, progress=False)
  with gin.config_scope("world"):
    world = ParametricListener(SyntheticWorld())
  gin.clear_config()
  return world, logs_dir


@pytest.mark.slow  # Generates logs and runs episodes: about 10 s.
def test_a_model_without_fatigue_overrates_only_where_the_world_tires(
    world_and_logs):
  world, logs_dir = world_and_logs
  untiring = copy.copy(world)
  untiring.fatigue_weight = 0.0
  record = model_bias.record_policy_states(
      world, {"same": world, "untiring": untiring}, logs_dir, "cosine",
      scorer=None, num_episodes=30, seed=0, consecutive_skip_limit=8)
  n = len(record.world)
  assert n >= 30 and all(len(a) == n for a in (
      record.position, record.fatigue, record.jump, record.affinity))
  # The world scored by itself: no gap anywhere.
  np.testing.assert_allclose(record.models["same"], record.world, atol=1e-6)
  tired = record.fatigue > 1e-6
  assert tired.any() and (~tired).any()
  gap = record.models["untiring"] - record.world
  np.testing.assert_allclose(gap[~tired], 0.0, atol=1e-6)
  assert (gap[tired] > 0).all()
  # The first track of a session has no history, so no fatigue.
  assert (record.fatigue[record.position == 0] <= 1e-6).all()

  table = model_bias.gap_table(record, "untiring")
  assert table["all"]["rows"] == n
  assert sum(row["rows"] for row in table["by_decile"]) == n
  assert sum(row["rows"] for row in table["by_fatigue"].values()) == n
  assert table["by_fatigue"]["0"]["untiring"] == pytest.approx(
      table["by_fatigue"]["0"]["world"], abs=1e-6)
  # The listeners the models trained on (the logs' training part).
  trained = model_bias.record_policy_states(
      world, {"same": world}, logs_dir, "cosine", scorer=None,
      num_episodes=10, seed=0, consecutive_skip_limit=8, split="train")
  assert len(trained.world) >= 10
  np.testing.assert_allclose(trained.models["same"], trained.world,
                             atol=1e-6)


def test_bad_requests_are_named(small_world, tmp_path):
  with pytest.raises(ValueError, match="at least one learned model"):
    model_bias.record_policy_states(ParametricListener(small_world), {},
                                    str(tmp_path), "random", None, 5)
  record = model_bias.StateRecord(
      np.full(3, 0.5), {"a": np.full(3, 0.4)}, np.zeros(3, int),
      np.zeros(3, int), np.zeros(3), np.zeros(3), np.zeros(3))
  with pytest.raises(KeyError, match="no model 'b'"):
    model_bias.gap_table(record, "b")
