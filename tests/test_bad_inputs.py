"""The bad-input catalogue: every surface a user touches answers bad input
with the package's own error, naming the input, never a bare traceback from
inside a third-party library.

Each case is (id, a function that feeds one bad input, the error type, a
regex its message must match). The raising frame must be package code.
"""

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import simulator
import user_models
from simulator import io_utils, logs, runs
from simulator.evaluation import estimators
from simulator.log_episodes import LogEpisodeSampler, LoggedSessions
from tests.conftest import ConstantUserModel, REPO_ROOT, make_env
from tests.simulator.test_logs import csv_text, session_columns

WORLD = user_models.SyntheticWorld(num_tracks=60, num_users=10, seed=3)
CATALOG = WORLD.catalog


def _sessions_file(tmp, edit=None, name="s.csv", content=None):
  path = tmp / name
  if content is not None:
    path.write_bytes(content)
    return str(path)
  cols = session_columns()
  if edit:
    edit(cols)
  path.write_text(csv_text(cols))
  return str(path)


def _set(column, row, value):
  def edit(cols):
    cols[column][row] = value
  return edit


def _drop(column):
  def edit(cols):
    del cols[column]
  return edit


def _read(tmp, **kwargs):
  return logs.read_sessions(_sessions_file(tmp, **kwargs), catalog=CATALOG)


def _step(action, sampler="discrete", **kwargs):
  env = make_env(WORLD, sampler=sampler, **kwargs)
  env.reset()
  return env.step(action)


class _Shape(user_models.AbstractUserModel):
  def predict(self, context, track_ids):
    return np.full(track_ids.shape, 0.5)


class _Sum(user_models.AbstractUserModel):
  def predict(self, context, track_ids):
    return np.full(track_ids.shape + (2,), 0.7)


def _env_with(model):
  return _step(np.array([0], np.int32), user_model=model)


def _tracks_without(tmp, column):
  columns = {k: v for k, v in CATALOG.columns.items() if k != column}
  path = tmp / "t.parquet"
  pq.write_table(pa.table(columns), path)
  return logs.read_tracks(str(path))


def _tracks_duplicated(tmp):
  columns = {k: np.concatenate([v, v[:1]]) for k, v in CATALOG.columns.items()}
  path = tmp / "t.parquet"
  pq.write_table(pa.table(columns), path)
  return logs.read_tracks(str(path))


def _litert(tmp, content):
  from user_models.litert import LiteRTRunner
  path = tmp / "m.tflite"
  if content is not None:
    path.write_bytes(content)
  return LiteRTRunner(path)


def _mlp_bytes():
  import tensorflow as tf
  from user_models.litert import convert_keras_model
  inputs = tf.keras.Input((4,))
  model = tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs))
  return convert_keras_model(model, "fp32")


def _ips(**kwargs):
  args = dict(rewards=np.ones(3), logging_propensities=np.full(3, 0.5),
              target_probabilities=np.full(3, 0.5))
  args.update(kwargs)
  return estimators.IPS().estimate_policy_value(**args)


def _keras_file(tmp, content=None, model=None, name="m.keras"):
  from user_models.keras_user_model import load_user_model
  path = tmp / name
  if model is not None:
    model.save(path)
  elif content is not None:
    path.write_bytes(content)
  return load_user_model(path)


def _plain_keras_model():
  import tensorflow as tf
  inputs = tf.keras.Input((4,))
  return tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs))


def _litert_user_model(tmp, meta):
  import json
  path = tmp / "user_model.fp32.tflite"
  path.write_bytes(_mlp_bytes())
  if meta is not None:
    (tmp / "user_model.meta.json").write_text(json.dumps(meta))
  return user_models.LiteRTUserModel(str(path), CATALOG)


def _run_checkpoint(tmp, width, agent="ahdqn", corrupt=False):
  import tensorflow as tf
  from agents.checkpointing import RunCheckpointer
  checkpointer = RunCheckpointer(
      str(tmp / "run" / "checkpoint"), seed=0,
      fingerprint={"agent": agent},
      global_step=tf.Variable(0, dtype=tf.int64),
      weights=tf.Variable(tf.zeros(width)))
  checkpointer.restore()
  checkpointer.save(tf.Variable(1, dtype=tf.int64))
  if corrupt:
    for path in (tmp / "run" / "checkpoint").glob("ckpt-1.*"):
      path.write_bytes(b"not a checkpoint")
  return checkpointer


def _another_runs_checkpoint(tmp, **change):
  import tensorflow as tf
  from agents.checkpointing import RunCheckpointer
  _run_checkpoint(tmp, 3, corrupt=change.pop("corrupt", False))
  kwargs = dict(width=3, agent="ahdqn")
  kwargs.update(change)
  return RunCheckpointer(
      str(tmp / "run" / "checkpoint"), seed=0,
      fingerprint={"agent": kwargs["agent"]},
      global_step=tf.Variable(0, dtype=tf.int64),
      weights=tf.Variable(tf.zeros(kwargs["width"]))).restore()


def _finished_logs(tmp):
  from simulator.log_generation import prepare_log_dir
  for name in ("sessions.parquet", "tracks.parquet", "metrics.json"):
    (tmp / name).write_text("{}")
  return prepare_log_dir(str(tmp))


def _generate_logs(tmp, **kwargs):
  from simulator.log_generation import generate_logs
  return generate_logs(str(tmp), progress=False, **kwargs)


def _train_eval(tmp, **kwargs):
  from agents.train_eval import train_eval
  return train_eval(str(tmp), **kwargs)


LogErr, ActErr = logs.LogFormatError, simulator.ActionError
UMErr, LoadErr = user_models.UserModelError, user_models.UserModelLoadError
CfgErr, EstErr = runs.ConfigError, estimators.EstimatorInputError
try:
  from agents.checkpointing import CheckpointError as CkptErr
  from simulator.log_generation import LogsExistError as LogsErr
except ImportError:  # Checked by test_catalogue_covers_every_surface.
  CkptErr = LogsErr = None

CASES = [
    # Session logs.
    ("log_missing_file", lambda t: logs.read_sessions(t / "nope.parquet"),
     LogErr, "nope.parquet"),
    ("log_not_parquet", lambda t: logs.read_sessions(_sessions_file(
        t, name="x.parquet", content=b"definitely not parquet")), LogErr,
     "x.parquet"),
    ("log_empty_file", lambda t: logs.read_sessions(_sessions_file(
        t, content=b"")), LogErr, "s.csv"),
    ("log_missing_column", lambda t: _read(t, edit=_drop("skip_2")), LogErr,
     "skip_2"),
    ("log_text_in_int", lambda t: _read(t, edit=_set("hour_of_day", 1,
                                                     "noon")),
     LogErr, "hour_of_day"),
    ("log_bad_bool", lambda t: _read(t, edit=_set("premium", 0, "maybe")),
     LogErr, "premium"),
    ("log_null_required", lambda t: _read(t, edit=_set("session_id", 0,
                                                       None)),
     LogErr, "session_id"),
    ("log_bad_positions", lambda t: _read(t, edit=_set("session_position", 1,
                                                       7)),
     LogErr, "session_position"),
    ("log_duplicate_position", lambda t: _read(
        t, edit=_set("session_position", 1, 1)), LogErr, "session_position"),
    ("log_inconsistent_skips", lambda t: _read(t, edit=_set("skip_1", 0,
                                                            True)),
     LogErr, "skip"),
    ("log_hour_out_of_range", lambda t: _read(t, edit=_set("hour_of_day", 0,
                                                           25)),
     LogErr, "hour_of_day"),
    ("log_bad_propensity", lambda t: _read(t, edit=_set("propensity", 0,
                                                        0.0)),
     LogErr, "propensity"),
    ("log_unknown_track", lambda t: _read(t, edit=_set("track_id_clean", 0,
                                                       "t_9999999")),
     LogErr, "t_9999999"),
    # Track files.
    ("tracks_missing_column", lambda t: _tracks_without(t, "energy"), LogErr,
     "energy"),
    ("tracks_duplicate_id", _tracks_duplicated, LogErr, "duplicate"),
    # Gin.
    ("gin_unknown_configurable", lambda t: runs.parse_gin([], [
        "NoSuchThing.x = 1"]), CfgErr, "NoSuchThing"),
    ("gin_unknown_parameter", lambda t: runs.parse_gin([], [
        "PlaylistEnvironment.colour = 1"]), CfgErr, "colour"),
    ("gin_syntax_error", lambda t: runs.parse_gin([], [
        "PlaylistEnvironment.batch_size = = 2"]), CfgErr, "batch_size"),
    ("gin_missing_file", lambda t: runs.parse_gin([str(t / "x.gin")], []),
     CfgErr, "x.gin"),
    # Actions.
    ("action_above_pool", lambda t: _step(np.array([20], np.int32)), ActErr,
     "outside the pool"),
    ("action_negative", lambda t: _step(np.array([-2], np.int32)), ActErr,
     "outside the pool"),
    ("action_wrong_shape", lambda t: _step(np.array([1, 2], np.int32)),
     ActErr, "shape"),
    ("action_float_for_discrete", lambda t: _step(np.array([0.5])), ActErr,
     "integer"),
    ("action_nan_continuous", lambda t: _step(
        np.full((1, CATALOG.feature_dim), np.nan, np.float32),
        sampler="continuous"), ActErr, "NaN"),
    # Sizes and settings.
    ("env_skip_limit_zero", lambda t: make_env(
        WORLD, consecutive_skip_limit=0), ValueError,
     "consecutive_skip_limit"),
    ("env_negative_length", lambda t: make_env(WORLD, max_playlist_length=-1),
     ValueError, "max_playlist_length"),
    ("env_zero_batch", lambda t: make_env(WORLD, batch_size=0), ValueError,
     "batch_size"),
    ("env_unknown_reward_level", lambda t: make_env(
        WORLD, reward_per_level={"meh": 1.0}), ValueError, "meh"),
    ("env_slate_zero", lambda t: make_env(WORLD, slate_size=0), ValueError,
     "slate_size"),
    ("pool_bigger_than_catalog", lambda t: make_env(WORLD, max_pool_size=61),
     ValueError, "max_pool_size"),
    ("pool_min_above_max", lambda t: make_env(WORLD, max_pool_size=5,
                                              min_pool_size=6),
     ValueError, "min_pool_size"),
    ("world_no_tracks", lambda t: user_models.SyntheticWorld(num_tracks=0),
     ValueError, "num_tracks"),
    ("world_negative_users", lambda t: user_models.SyntheticWorld(
        num_users=-1), ValueError, "num_users"),
    ("tracker_zero_flush", lambda t: simulator.EpisodeTracker(
        flush_every_rows=0), ValueError, "flush_every_rows"),
    ("listener_bad_decay", lambda t: user_models.ParametricListener(
        WORLD, fatigue_decay=1.5), ValueError, "fatigue_decay"),
    # User-model output.
    ("model_wrong_shape", lambda t: _env_with(_Shape()), UMErr, "shape"),
    ("model_nan", lambda t: _env_with(ConstantUserModel(np.nan)), UMErr,
     "NaN"),
    ("model_not_normalised", lambda t: _env_with(_Sum()), UMErr, "sum to 1"),
    # Model files.
    ("litert_missing", lambda t: _litert(t, None), LoadErr, "does not exist"),
    ("litert_not_flatbuffer", lambda t: _litert(t, b"x" * 64), LoadErr,
     "not a LiteRT"),
    ("litert_truncated", lambda t: _litert(t, _mlp_bytes()[:200]), LoadErr,
     "m.tflite"),
    # Output folders.
    ("root_dir_is_file", lambda t: io_utils.ensure_writable_dir(
        _sessions_file(t)), ValueError, "not a folder"),
    ("root_dir_unwritable", lambda t: io_utils.ensure_writable_dir(
        "/proc/playlist_sim_run"), ValueError, "not writable"),
    # Logged-data estimators.
    ("estimator_length_mismatch", lambda t: _ips(rewards=np.ones(2)), EstErr,
     "rewards|logging_propensities"),
    ("estimator_zero_propensity", lambda t: _ips(
        logging_propensities=np.array([0.5, 0.0, 0.5])), EstErr,
     "logging_propensities"),
    ("estimator_nan_reward", lambda t: _ips(rewards=np.array([1.0, np.nan,
                                                              0.0])),
     EstErr, "rewards"),
    # Episodes from logs.
    ("log_sampler_bad_split", lambda t: LogEpisodeSampler(
        sessions_path="a", tracks_path="b", split="validation"), ValueError,
     "split"),
    ("log_sampler_bad_split_by", lambda t: LogEpisodeSampler(
        sessions_path="a", tracks_path="b", split_by="listener"), ValueError,
     "split_by"),
    ("logged_sessions_bad_split_by", lambda t: LoggedSessions.load(
        "a", "b", split_by="track"), ValueError, "split_by"),
    ("log_sampler_bad_rule", lambda t: LogEpisodeSampler(
        sessions_path="a", tracks_path="b", extra_tracks="nearest"),
     ValueError, "extra_tracks"),
    # Keras model files, and model files of the wrong shape.
    ("keras_missing", lambda t: _keras_file(t), LoadErr, "does not exist"),
    ("keras_wrong_extension", lambda t: _keras_file(
        t, content=b"x", name="m.h5"), LoadErr, "not a .keras file"),
    ("keras_corrupt", lambda t: _keras_file(t, content=b"PK\x03\x04junk"),
     LoadErr, "truncated, not a saved Keras model"),
    ("keras_not_a_user_model", lambda t: _keras_file(
        t, model=_plain_keras_model()), LoadErr, "m.keras"),
    ("litert_wrong_shape", lambda t: _litert_user_model(
        t, {"kind": "cwm", "user_vocab": 0}), LoadErr, "inputs of widths"),
    ("litert_missing_meta", lambda t: _litert_user_model(t, None), LoadErr,
     "meta.json"),
    # Run folders: another run's checkpoint, a corrupt one, finished logs.
    ("checkpoint_other_network", lambda t: _another_runs_checkpoint(
        t, width=5), CkptErr, "holds a checkpoint this run cannot resume.*"
     "float32\\[5\\]"),
    ("checkpoint_other_agent", lambda t: _another_runs_checkpoint(
        t, agent="dqn"), CkptErr, "run.*another run.*agent"),
    ("checkpoint_corrupt", lambda t: _another_runs_checkpoint(
        t, corrupt=True), CkptErr, "cannot be read"),
    ("logs_already_finished", _finished_logs, LogsErr, "--overwrite"),
    # Run sizes and names.
    ("generate_logs_zero_sessions", lambda t: _generate_logs(
        t, num_sessions=0), ValueError, "num_sessions"),
    ("generate_logs_bad_format", lambda t: _generate_logs(
        t, file_format="xlsx"), ValueError, "xlsx"),
    ("train_eval_unknown_agent", lambda t: _train_eval(
        t, agent_name="telepathy"), ValueError, "telepathy"),
    ("train_eval_too_few_initial_steps", lambda t: _train_eval(
        t, initial_collect_steps=8, collect_steps_per_iteration=8,
        env_batch_size=8, n_step_update=3), ValueError,
     "initial_collect_steps"),
]


def test_catalogue_has_at_least_40_cases():
  assert len(CASES) >= 40


def test_catalogue_covers_every_surface():
  ids = " ".join(c[0] for c in CASES)
  for surface in ("log_", "tracks_", "gin_", "action_", "env_", "keras_",
                  "litert_", "model_wrong_shape", "litert_wrong_shape",
                  "root_dir_unwritable", "checkpoint_other", "negative"):
    assert surface in ids, surface
  assert CkptErr is not None and LogsErr is not None


@pytest.mark.parametrize("feed,error,match", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(tmp_path, feed, error, match):
  with pytest.raises(error, match=match) as info:
    feed(tmp_path)
  raised_in = str(info.traceback[-1].path)
  assert raised_in.startswith(REPO_ROOT) and "site-packages" not in raised_in, (
      f"raised inside a third-party library: {raised_in}")


def test_no_loader_uses_pickle():
  offenders = []
  for folder in ("simulator", "user_models", "agents"):
    for root, _, files in os.walk(os.path.join(REPO_ROOT, folder)):
      for name in files:
        if name.endswith(".py"):
          text = open(os.path.join(root, name)).read()
          if "import pickle" in text or "pickle.load" in text:
            offenders.append(name)
  assert not offenders
