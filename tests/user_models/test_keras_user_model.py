"""KerasUserModel: serving trained CWM/SWM files in the environment."""

import os

import gin
import numpy as np
import pytest
from tf_agents.environments import utils as env_utils

import simulator
import user_models
from tests.conftest import REPO_ROOT
from user_models import features
from user_models import keras_models
from user_models import training
from user_models.base import SessionContext

import tensorflow as tf  # pylint: disable=g-bad-import-order


@pytest.fixture
def trained(tiny_trained):
  """Tiny logs and a CWM and an SWM trained on them (tests/user_models/
  conftest.py)."""
  return tiny_trained


def _env(trained, kind, batch_size, slate_size=1):
  model = user_models.KerasUserModel(trained[kind], trained["tracks"])
  builder = simulator.EnvironmentBuilder(
      user_model=model,
      track_sampler=simulator.DiscreteTrackSampler(slate_size=slate_size),
      episode_sampler=simulator.LogEpisodeSampler(
          trained["sessions"], trained["tracks"], max_pool_size=20))
  return builder.get_py_env(batch_size=batch_size, seed=1), model


@pytest.mark.parametrize("kind", ["cwm", "swm"])
@pytest.mark.parametrize("batch_size", [1, 8])
def test_validate_py_environment(trained, kind, batch_size):
  env, _ = _env(trained, kind, batch_size)
  env_utils.validate_py_environment(env, episodes=4)


@pytest.mark.parametrize("kind", ["cwm", "swm"])
def test_slates_run(trained, kind):
  env, _ = _env(trained, kind, batch_size=4, slate_size=3)
  env_utils.validate_py_environment(env, episodes=3)


@pytest.mark.parametrize("kind", ["cwm", "swm"])
def test_one_batched_model_call_per_step(trained, kind):
  env, model = _env(trained, kind, batch_size=8)
  calls = {"n": 0}
  name = "_cwm" if kind == "cwm" else "_head"
  inner = getattr(model, name)

  def counted(*args):
    calls["n"] += 1
    return inner(*args)
  setattr(model, name, counted)
  env.reset()
  for _ in range(6):
    env.step(np.zeros(8, np.int32))
  assert calls["n"] == 6


def _context(rows, user_ids, position, width=8):
  n = len(rows)
  return SessionContext(
      rows=np.asarray(rows, np.int64), user_ids=np.asarray(user_ids),
      user_features=np.zeros((n, width), np.float32),
      position=np.full(n, position, np.int32),
      history_ids=np.zeros((n, 10), np.int32),
      history_responses=np.full((n, 10), -1, np.int32),
      consecutive_skips=np.zeros(n, np.int32),
      num_skips=np.zeros(n, np.int32))


def test_swm_state_is_per_row_and_reset_by_begin_sessions(trained):
  model = user_models.KerasUserModel(trained["swm"], trained["tracks"])
  # One epoch barely moves the residual from its zero start: give it
  # weights so that the state shows in the predictions.
  residual = model.model.get_layer("residual_logits")
  rng = np.random.default_rng(0)
  residual.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32)
                        for w in residual.get_weights()])
  model.begin_sessions(np.array([0, 1, 2]), np.array([4, 4, 4]))
  fresh = model.predict(_context([2], [4], 0), np.array([[7]]))
  model.observe(np.array([0, 1]), np.array([[11], [12]]), np.array([[4], [0]]))
  model.observe(np.array([0, 1]), np.array([[13], [14]]), np.array([[4], [0]]))
  # Same context for both rows: only their states differ.
  probs = model.predict(_context([0, 1], [4, 4], 2), np.array([[7], [7]]))
  assert np.abs(probs[0] - probs[1]).max() > 1e-4
  model.begin_sessions(np.array([1]), np.array([4]))
  np.testing.assert_allclose(model.state[1], model.start_state)
  np.testing.assert_allclose(model.predict(_context([1], [4], 0),
                                           np.array([[7]])), fresh, atol=1e-6)
  # A track the listener never reached (-1) leaves the state alone.
  before = model.state[2].copy()
  model.observe(np.array([2]), np.array([[5]]), np.array([[-1]]))
  np.testing.assert_array_equal(model.state[2], before)


@pytest.mark.parametrize("kind", ["cwm", "swm"])
def test_serving_predictions_equal_training_model_on_a_logged_session(
    trained, kind):
  inputs = training.prepare_inputs(trained["logs"])
  arrays = training.model_inputs(inputs, kind)
  data = inputs.data
  session = int(np.flatnonzero(data.held_out)[0])
  start, stop = data.bounds.offsets[session], data.bounds.offsets[session + 1]
  keras_model = tf.keras.models.load_model(trained[kind], compile=False)
  if kind == "cwm":
    expected = keras_model(arrays["x"][start:stop]).numpy()
  else:
    expected = keras_model([arrays["steps"][session:session + 1],
                            arrays["candidates"][session:session + 1]]
                           ).numpy()[0, :stop - start]
  served = user_models.KerasUserModel(trained[kind], trained["tracks"])
  served.begin_sessions(np.array([0]), data.session_users[[session]])
  ctx = inputs.context
  for j, row in enumerate(range(start, stop)):
    context = SessionContext(*(
        np.zeros(1, np.int64) if f == "rows" else getattr(ctx, f)[[row]]
        for f in ("rows", "user_ids", "user_features", "position",
                  "history_ids", "history_responses", "consecutive_skips",
                  "num_skips")))
    probs = served.predict(context, data.track_rows[[[row]]])
    np.testing.assert_allclose(probs[0, 0], expected[j], atol=1e-5)
    served.observe(np.array([0]), data.track_rows[[[row]]],
                   data.levels[[[row]]])


def test_gin_plugs_a_keras_file_into_the_environment(trained):
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config(f"""
      EnvironmentBuilder.user_model = @KerasUserModel()
      KerasUserModel.model_path = '{trained["cwm"]}'
      KerasUserModel.catalog = '{trained["tracks"]}'
      EnvironmentBuilder.episode_sampler = @LogEpisodeSampler()
      LogEpisodeSampler.sessions_path = '{trained["sessions"]}'
      LogEpisodeSampler.tracks_path = '{trained["tracks"]}'
  """)
  env = simulator.EnvironmentBuilder().get_py_env(batch_size=2)
  assert isinstance(env.environment.user_model, user_models.KerasUserModel)
  env.reset()
  env.step(np.zeros(2, np.int32))


def test_wrong_input_width_names_the_mismatch(trained, tmp_path):
  spec = features.FeatureSpec(user_dim=8, track_dim=29, history_window=5)
  path = user_models.save_user_model(keras_models.build_cwm(spec, 0),
                                     tmp_path / "narrow.keras")
  with pytest.raises(user_models.UserModelLoadError,
                     match=r"input has shape \(None, 52\).*\(None, 62\)"):
    user_models.KerasUserModel(path, trained["tracks"])
  wide = features.FeatureSpec(user_dim=12, track_dim=29)
  path = user_models.save_user_model(keras_models.build_swm(wide, 0),
                                     tmp_path / "wide_swm.keras")
  with pytest.raises(user_models.UserModelLoadError, match="'candidates'"):
    user_models.KerasUserModel(path, trained["tracks"])


def test_truncated_file_gives_a_clear_error(trained, tmp_path):
  with open(trained["cwm"], "rb") as f:
    content = f.read()
  path = tmp_path / "truncated.keras"
  path.write_bytes(content[:len(content) // 2])
  with pytest.raises(user_models.UserModelLoadError, match="truncated"):
    user_models.KerasUserModel(str(path), trained["tracks"])


def test_file_that_is_not_a_model_gives_a_clear_error(trained, tmp_path):
  path = tmp_path / "notes.keras"
  path.write_text("not a model\n")
  with pytest.raises(user_models.UserModelLoadError,
                     match="could not load the Keras user model"):
    user_models.KerasUserModel(str(path), trained["tracks"])
  other = tmp_path / "other.keras"
  inputs = tf.keras.Input((3,))
  tf.keras.Model(inputs, tf.keras.layers.Dense(4)(inputs)).save(other)
  with pytest.raises(user_models.UserModelLoadError, match="neither a CWM"):
    user_models.KerasUserModel(str(other), trained["tracks"])


def test_missing_file_and_wrong_suffix(trained, tmp_path):
  with pytest.raises(user_models.UserModelLoadError, match="does not exist"):
    user_models.KerasUserModel(str(tmp_path / "none.keras"), trained["tracks"])
  path = tmp_path / "model.h5"
  path.write_bytes(b"x")
  with pytest.raises(user_models.UserModelLoadError, match="not a .keras"):
    user_models.KerasUserModel(str(path), trained["tracks"])


def test_user_feature_width_is_checked_at_predict(trained):
  model = user_models.KerasUserModel(trained["cwm"], trained["tracks"])
  with pytest.raises(user_models.UserModelError, match="user features"):
    model.predict(_context([0], [1], 0, width=5), np.array([[3]]))
