"""The leaving model: estimated from truncated, censored logs, checked against
the world's own hazard, saved and read back, and used by the environment."""

import json
import os

import gin
import numpy as np
import pytest

import simulator
import user_models
from playlist_sim.data import leaving, logs
from playlist_sim.jobs.log_generation import generate_logs
from tests.conftest import REPO_ROOT, log_table, make_env


@pytest.fixture(scope="module")
def world_logs(tmp_path_factory):
  """4,000 calibrated-world sessions (>= 10 tracks, cut at 20) and the
  world's true leaving coefficients."""
  root = tmp_path_factory.mktemp("leaving_logs")
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  truth = np.array([
      gin.query_parameter("ParametricListener.leave_bias"),
      gin.query_parameter("ParametricListener.leave_consecutive_skip_weight"),
      -gin.query_parameter("ParametricListener.leave_position_weight")])
  limit = gin.query_parameter("PlaylistEnvironment.consecutive_skip_limit")
  summary = generate_logs(str(root), num_sessions=4000, seed=3,
                          progress=False)
  gin.clear_config()
  return logs.read_sessions(summary["sessions_path"]), truth, limit


def test_risk_sets_leave_out_truncated_and_censored_rows():
  # Lengths 3, 4 and 5 with the log's cut at 5: positions 1 and 2 cannot
  # show a leave (selection >= 3), position 5 is the cut (censored).
  table = log_table([[1, 1, 0], [1, 0, 1, 0], [1, 1, 1, 1, 0]])
  run, position, left = leaving.leaving_risk_sets(
      table, consecutive_skip_limit=10)
  np.testing.assert_array_equal(position, [3, 3, 4, 3, 4])
  np.testing.assert_array_equal(run, [1, 0, 1, 0, 0])
  np.testing.assert_array_equal(left, [True, False, True, False, False])
  # A skip limit of 1 leaves out the rows that end by the limit.
  run, _, left = leaving.leaving_risk_sets(table, consecutive_skip_limit=1)
  np.testing.assert_array_equal(run, [0, 0, 0])
  assert not left.any()


def test_estimate_recovers_the_worlds_hazard(world_logs):
  table, truth, limit = world_logs
  model = leaving.fit_leaving_model(table)
  assert model.consecutive_skip_limit == limit
  assert (model.min_position, model.max_position) == (10, 19)
  errors = np.abs(np.array(model.coefficients) - truth)
  # Within four standard errors of the truth, coefficient by coefficient.
  assert (errors < 4 * np.array(model.standard_errors)).all(), (
      model.coefficients, truth)
  # Below position 10, which the logs never show, the hazard comes from the
  # linear-in-position assumption; the world's hazard has that form.
  runs, positions = np.meshgrid(np.arange(limit), np.arange(1, 20))
  true_hazard = 1 / (1 + np.exp(-(truth[0] + truth[1] * runs +
                                  truth[2] * positions)))
  estimate = model.hazard(runs, positions)
  # Common counters (runs of 0..3 skips) closely; long runs at the first
  # positions are an extrapolation in two directions, so within 30%.
  np.testing.assert_allclose(estimate[:, :4], true_hazard[:, :4], atol=0.02)
  np.testing.assert_allclose(estimate, true_hazard, rtol=0.3)


def test_without_a_position_effect_early_leaving_is_understated(world_logs):
  table, truth, _ = world_logs
  flat = leaving.fit_leaving_model(table, position_effect=False)
  assert flat.coefficients[2] == 0.0 and flat.standard_errors[2] == 0.0
  # The world's listeners leave more early in a session: a hazard fitted on
  # positions 10..19 only, with no position effect, misses that.
  true_first = 1 / (1 + np.exp(-(truth[0] + truth[2])))
  assert flat.hazard(0, 1) < 0.8 * true_first


def test_a_log_without_leaving_gives_a_zero_hazard():
  # Every session ends at the cut (20) or at the 3rd skip in a row.
  table = log_table([[1] * 20, [1] * 10 + [0, 0, 0], [1] * 20])
  model = leaving.fit_leaving_model(table, min_session_length=1,
                                    consecutive_skip_limit=3)
  assert model.num_leaves == 0
  assert model.hazard(2, 1) < 1e-12
  with pytest.raises(leaving.LeavingModelError, match="rows that go on"):
    leaving.fit_leaving_model(log_table([[1] * 20, [1] * 20]))


def test_saved_model_reads_back_and_bad_files_are_named(tmp_path):
  model = leaving.LeavingModel((-2.0, 0.1, -0.05), (0.1, 0.01, 0.01), 10,
                               19, 8, 1000, 50)
  path = model.save(str(tmp_path / leaving.LEAVING_MODEL_FILE))
  assert leaving.load_leaving_model(path) == model
  user_model = tmp_path / "user_model.int8.tflite"
  assert leaving.leaving_model_beside(str(user_model)) == model
  assert leaving.leaving_model_beside(str(tmp_path / "x" / "m.keras")) is None
  with pytest.raises(leaving.LeavingModelError, match="does not exist"):
    leaving.leaving_model_beside(str(tmp_path / "x" / "m.keras"),
                                 required=True)
  data = model.to_json()
  for change, message in ((dict(version=2), "version"),
                          (dict(features=["intercept"]), "features"),
                          (dict(coefficients=[1.0, "a", 0.0]), "finite"),
                          (dict(num_leaves=-1), "num_leaves"),
                          (dict(extra=1), "unknown fields")):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**data, **change}))
    with pytest.raises(leaving.LeavingModelError, match=message) as info:
      leaving.load_leaving_model(str(bad))
    assert "bad.json" in str(info.value)
  bad.write_text('{"coefficients": [NaN')
  with pytest.raises(leaving.LeavingModelError, match="not readable"):
    leaving.load_leaving_model(str(bad))
  with pytest.raises(leaving.LeavingModelError, match="finite"):
    leaving.LeavingModel((float("nan"), 0.0, 0.0))


def test_environment_ends_sessions_with_the_leaving_model(small_world):
  sure = leaving.LeavingModel((30.0, 0.0, 0.0))
  env = make_env(small_world, batch_size=4, leaving_model=sure)
  env.reset()
  result = env.step(np.zeros(4, np.int64))
  assert {simulator.TERMINATION_REASONS[r]
          for r in result.termination_reason} == {"listener_left"}
  # A user model that models its own leaving keeps it (the world).
  world = user_models.ParametricListener(small_world)  # Never leaves.
  assert world.leave_probability(env.session_context()) is None
  stays = user_models.ParametricListener(small_world, leave_bias=-30.0)
  env = make_env(small_world, user_model=stays, batch_size=4,
                 leaving_model=sure)
  env.reset()
  assert (env.step(np.zeros(4, np.int64)).termination_reason == 0).all()
  with pytest.raises(ValueError, match="leave_probability"):
    make_env(small_world, leaving_model="0.1")


@pytest.mark.parametrize("crn", [False, True])
def test_leaving_draws_are_seeded_and_batched(small_world, crn):
  half = leaving.LeavingModel((0.0, 0.0, 0.0))  # P(leave) = 0.5.

  def lengths(seed):
    env = make_env(small_world, batch_size=64, leaving_model=half,
                   seed=seed, common_random_numbers=crn,
                   consecutive_skip_limit=100)
    env.reset()
    heard = np.zeros(64, np.int64)
    alive = np.ones(64, bool)
    for _ in range(30):
      result = env.step(np.zeros(64, np.int64))
      heard += np.where(alive, result.heard, 0)
      alive &= result.step_type != 2
    return heard

  first = lengths(5)
  np.testing.assert_array_equal(first, lengths(5))
  # Geometric lengths with P(stay) = 0.5: mean 2 tracks.
  assert 1.5 < first.mean() < 2.6
  assert not np.array_equal(first, lengths(6))


def test_agent_config_gives_the_leaving_model_to_the_training_simulator_only(
    tmp_path):
  model = leaving.LeavingModel((-2.0, 0.1, -0.05))
  model.save(str(tmp_path / leaving.LEAVING_MODEL_FILE))
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "ahdqn.gin"))
  # The small world in place of the logs and the LiteRT file (the bindings
  # of the parts are evaluated even when the parts are passed).
  gin.parse_config([
      f"USER_MODEL_PATH = {str(tmp_path / 'user_model.int8.tflite')!r}",
      "train/EnvironmentBuilder.user_model = @LogisticUserModel()",
      "EnvironmentBuilder.episode_sampler = @RandomEpisodeSampler()",
      "SyntheticWorld.num_tracks = 300", "SyntheticWorld.num_users = 60"])
  try:
    with gin.config_scope("train"):
      train = simulator.EnvironmentBuilder()
    with gin.config_scope("eval"):
      evaluation = simulator.EnvironmentBuilder()
  finally:
    gin.clear_config()
  assert train.leaving_model == model
  assert train.build().leaving_model == model
  assert evaluation.leaving_model is None
  assert evaluation.build().leaving_model is None
