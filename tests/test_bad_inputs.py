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
from playlist_sim.data import logs
from playlist_sim.common import runs
from playlist_sim.common import io_utils
from playlist_sim.evaluation import estimators, saved_policies
from playlist_sim.data.sessions import LoggedSessions
from simulator.log_episodes import LogEpisodeSampler
from tests.conftest import ConstantUserModel, REPO_ROOT, make_env
from tests.user_models import crafted_models as crafted
from tests.playlist_sim.data.test_logs import csv_text, session_columns

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


class _Text(user_models.AbstractUserModel):
  def predict(self, context, track_ids):
    return np.full(track_ids.shape + (2,), "0.5")


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


def _litert_user_model(tmp, meta, content=None, raw_meta=None):
  import json
  from user_models.litert_meta import file_sha256
  path = tmp / "user_model.fp32.tflite"
  path.write_bytes(_mlp_bytes() if content is None else content)
  if raw_meta is not None:
    (tmp / "user_model.meta.json").write_text(raw_meta)
  elif meta is not None:
    meta = dict(meta)
    if "sha256" not in meta:  # A meta that vouches for this file.
      meta["sha256"] = {path.name: file_sha256(path)}
    (tmp / "user_model.meta.json").write_text(json.dumps(meta))
  return user_models.LiteRTUserModel(str(path), CATALOG)


_CWM_BYTES = {}


def _cwm_bytes(user_vocab=5):
  """A tiny fp32 CWM over CATALOG with a user embedding (cached)."""
  if user_vocab not in _CWM_BYTES:
    from user_models import features, keras_models
    from user_models.litert import convert_keras_model
    spec = features.FeatureTables(CATALOG).spec(8)
    model = keras_models.build_cwm(spec, user_vocab=user_vocab,
                                   tower_units=4, hidden_units=(4,))
    _CWM_BYTES[user_vocab] = convert_keras_model(model, "fp32")
  return _CWM_BYTES[user_vocab]


def _cwm_meta(tmp, **change):
  meta = {"kind": "cwm", "user_vocab": 5}
  meta.update(change)
  return _litert_user_model(tmp, meta, content=_cwm_bytes())


def _divide_by_zero_bytes():
  """A flatbuffer that loads and allocates, but fails when invoked on 0."""
  import tensorflow as tf

  @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
  def divide(x):
    i = tf.cast(x, tf.int32)
    return tf.cast(tf.math.floordiv(tf.ones_like(i), i), tf.float32)
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [divide.get_concrete_function()], divide)
  return converter.convert()


def _crafted_keras(tmp, layer=None, config=None, extra_entry=None):
  """Loads a crafted .keras archive; asserts that it wrote nothing."""
  import zipfile
  from user_models.keras_user_model import load_user_model
  target = tmp / "owned.pth"
  if config is None:
    config = crafted.with_layers(layer(str(target)) if callable(layer)
                                 else layer)
  path = crafted.write_archive(tmp / "m.keras", config)
  if extra_entry:
    with zipfile.ZipFile(path, "a") as archive:
      archive.writestr(extra_entry, "import os")
  try:
    return load_user_model(path)
  finally:
    assert not target.exists(), "the crafted model file wrote a file"


def _constant_node_on_dense(target):
  layer = crafted.write_file_layer(target)
  layer.update(class_name="Dense", registered_name=None)
  del layer["config"]["function"]
  return layer


def _foreign_module_config():
  config = crafted.plain_config()
  config["config"]["layers"][1]["module"] = "evil.layers"
  return config


def _nested_attack(tmp):
  return _crafted_keras(tmp, config=crafted.nested_model(
      crafted.write_file_layer(str(tmp / "owned.pth"))))


class _Sampler(simulator.RandomEpisodeSampler):
  """A custom episode sampler whose first pool is edited by `edit`."""

  def __init__(self, edit, **kwargs):
    super().__init__(WORLD, max_pool_size=5, **kwargs)
    self.edit = edit

  def _sample(self, rng, n):
    import dataclasses
    modes = super()._sample(rng, n)
    ids = modes.candidate_ids.copy()
    self.edit(ids)
    return dataclasses.replace(modes, candidate_ids=ids)


def _custom_pool(edit, sampler=None):
  builder = simulator.EnvironmentBuilder(
      user_model=user_models.LogisticUserModel(WORLD),
      track_sampler=simulator.DiscreteTrackSampler(),
      episode_sampler=sampler or _Sampler(edit))
  return builder.build().reset()


def _continuous(value):
  action = np.zeros((1, CATALOG.feature_dim), np.float32)
  action[0, 0] = value
  return _step(action, sampler="continuous")


def _catalog_with(column, value, dtype=np.float64):
  columns = {k: np.array(v) for k, v in CATALOG.columns.items()}
  columns[column] = columns[column].astype(dtype)
  columns[column][3] = value
  return columns


def _tracks_file_with(tmp, column, value):
  path = tmp / "t.parquet"
  pq.write_table(pa.table(_catalog_with(column, value)), path)
  return logs.read_tracks(str(path))


def _saved_policy(tmp, kind, name="mine"):
  """A --policy folder of the given kind, checked for the evaluation."""
  folder = tmp / "policy"
  folder.mkdir()
  if kind in ("foreign", "other_spec"):
    (folder / "saved_model.pb").write_bytes(b"")
  if kind == "other_spec":
    from tf_agents.specs import tensor_spec
    from tf_agents.trajectories import trajectory
    other = make_env(WORLD, max_pool_size=7)
    ts_spec = simulator.TFAgtPyEnvironment(other).time_step_spec()
    specs = {"collect_data_spec": trajectory.Trajectory(
        step_type=ts_spec.step_type, observation=ts_spec.observation,
        action=other.action_space, policy_info=(),
        next_step_type=ts_spec.step_type, reward=ts_spec.reward,
        discount=ts_spec.discount), "policy_state_spec": ()}
    tensor_spec.to_pbtxt_file(str(folder / "policy_specs.pbtxt"), specs)
  found = saved_policies.check_policy_folders({name: str(folder)}, ())
  if kind == "other_spec":
    env = simulator.TFAgtPyEnvironment(make_env(WORLD))
    saved_policies.check_policy_specs(name, found[name],
                                      env.observation_spec(),
                                      env.action_spec())
  return found


class _FloatSampler(simulator.RandomEpisodeSampler):
  def __init__(self):
    super().__init__(WORLD, max_pool_size=5)

  def _sample(self, rng, n):
    import dataclasses
    modes = super()._sample(rng, n)
    return dataclasses.replace(
        modes, candidate_ids=modes.candidate_ids.astype(np.float32))


def _gin_env(binding):
  import gin
  gin.parse_config(f"PlaylistEnvironment.{binding}")
  return make_env(WORLD)

def _evaluate_with(tmp, kind, name="mine"):
  """evaluate_policies with one bad saved policy: refused before it loads
  the (here nonexistent) logs and user model."""
  from playlist_sim.evaluation.evaluate import evaluate_policies
  folder = tmp / "policy"
  if kind != "missing":
    folder.mkdir()
  if kind == "foreign":
    (folder / "saved_model.pb").write_bytes(b"")
  return evaluate_policies(str(tmp / "out"), str(tmp / "logs"),
                           str(tmp / "m.tflite"),
                           saved_policies={name: str(folder)})


def _checkpoint_unwritable(tmp):
  import shutil
  import tensorflow as tf
  checkpointer = _run_checkpoint(tmp, 3)
  shutil.rmtree(tmp / "run" / "checkpoint")
  (tmp / "run" / "checkpoint").write_text("a file, not a folder")
  checkpointer.save(tf.Variable(2, dtype=tf.int64))


def _save_user_model_unwritable(tmp):
  from user_models.keras_user_model import save_user_model
  (tmp / "model_dir").write_text("a file, not a folder")
  return save_user_model(_plain_keras_model(), tmp / "model_dir" / "m.keras")


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
  from playlist_sim.jobs.log_generation import prepare_log_dir
  for name in ("sessions.parquet", "tracks.parquet", "metrics.json"):
    (tmp / name).write_text("{}")
  return prepare_log_dir(str(tmp))


def _generate_logs(tmp, **kwargs):
  from playlist_sim.jobs.log_generation import generate_logs
  return generate_logs(str(tmp), progress=False, **kwargs)


def _train_eval(tmp, **kwargs):
  from agents.train_eval import train_eval
  return train_eval(str(tmp), **kwargs)


LogErr, ActErr = logs.LogFormatError, simulator.ActionError
UMErr, LoadErr = user_models.UserModelError, user_models.UserModelLoadError
CfgErr, EstErr = runs.ConfigError, estimators.EstimatorInputError
try:
  from agents.checkpointing import CheckpointError as CkptErr
  from playlist_sim.jobs.log_generation import LogsExistError as LogsErr
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
    ("model_string_output", lambda t: _env_with(_Text()), UMErr,
     "float probabilities"),
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
    # Model files are data (#18): crafted .keras archives run nothing.
    ("keras_tfoplambda_write_file", lambda t: _crafted_keras(
        t, layer=crafted.write_file_layer), LoadErr,
     "tf.io.write_file.*TFOpLambda"),
    ("keras_lambda_layer", lambda t: _crafted_keras(
        t, layer=lambda target: crafted.lambda_layer()), LoadErr,
     "sneaky.*Lambda"),
    ("keras_unknown_class", lambda t: _crafted_keras(
        t, layer=lambda target: crafted.unknown_class()), LoadErr,
     "backdoor.*Backdoor"),
    ("keras_nested_model_hiding_op", _nested_attack, LoadErr,
     "inner/tf.io.write_file"),
    ("keras_constant_inbound_node", lambda t: _crafted_keras(
        t, layer=_constant_node_on_dense), LoadErr, "_CONSTANT_VALUE"),
    ("keras_allowed_class_foreign_module", lambda t: _crafted_keras(
        t, config=_foreign_module_config()), LoadErr, "evil.layers"),
    ("keras_extra_archive_entry", lambda t: _crafted_keras(
        t, config=crafted.plain_config(),
        extra_entry="payload.py"), LoadErr, "payload.py"),
    ("keras_save_unwritable", _save_user_model_unwritable, UMErr,
     "could not save the user model"),
    # LiteRT meta files that lie, and flatbuffers that fail when run.
    ("litert_meta_smaller_vocab", lambda t: _cwm_meta(t, user_vocab=3),
     LoadErr, "user_vocab.*5 rows"),
    ("litert_meta_larger_vocab", lambda t: _cwm_meta(t, user_vocab=9),
     LoadErr, "user_vocab.*5 rows"),
    ("litert_meta_other_hash", lambda t: _cwm_meta(
        t, sha256={"user_model.fp32.tflite": "0" * 64}), LoadErr,
     "sha256.*does not match"),
    ("litert_meta_no_hash_of_file", lambda t: _cwm_meta(
        t, sha256={"other.tflite": "0" * 64}), LoadErr, "sha256.*no hash"),
    ("litert_meta_malformed_json", lambda t: _litert_user_model(
        t, None, raw_meta="{kind: cwm"), LoadErr, "not valid JSON"),
    ("litert_meta_not_an_object", lambda t: _litert_user_model(
        t, None, raw_meta="[1, 2]"), LoadErr, "JSON object"),
    ("litert_meta_vocab_string", lambda t: _cwm_meta(t, user_vocab="5"),
     LoadErr, "user_vocab.*integer"),
    ("litert_meta_vocab_null", lambda t: _cwm_meta(t, user_vocab=None),
     LoadErr, "user_vocab.*integer"),
    ("litert_meta_vocab_negative", lambda t: _cwm_meta(t, user_vocab=-1),
     LoadErr, "user_vocab"),
    ("litert_meta_unknown_kind", lambda t: _cwm_meta(t, kind="dnn"), LoadErr,
     "kind"),
    ("litert_meta_swm_without_state_units", lambda t: _cwm_meta(
        t, kind="swm", candidate_dim=4), LoadErr, "state_units"),
    ("litert_fails_on_first_invoke", lambda t: _litert(
        t, _divide_by_zero_bytes()), LoadErr, "zero batch"),
    # Track features: finite and sane (one 1e300 zeroed a feature).
    ("tracks_huge_acoustic_value", lambda t: _tracks_file_with(
        t, "acoustic_vector_3", 1e300), LogErr, "acoustic_vector_3.*t_"),
    ("tracks_infinite_tempo", lambda t: _tracks_file_with(
        t, "tempo", np.inf), LogErr, "tempo"),
    ("catalog_huge_value_in_code", lambda t: user_models.TrackCatalog(
        _catalog_with("acoustic_vector_0", 1e300)), ValueError,
     "acoustic_vector_0"),
    # Continuous actions: within the spec's bounds, numeric.
    ("action_continuous_huge", lambda t: _continuous(1e20), ActErr,
     "outside the action spec's bounds"),
    ("action_continuous_below_bounds", lambda t: _continuous(-50.0), ActErr,
     "bounds"),
    ("action_continuous_infinite", lambda t: _continuous(np.inf), ActErr,
     "infinity"),
    ("action_string_continuous", lambda t: _step(
        np.full((1, CATALOG.feature_dim), "x"), sampler="continuous"),
     ActErr, "not numeric"),
    ("action_object_discrete", lambda t: _step(np.array([object()])),
     ActErr, "integer"),
    # Episode samplers' pools, where they enter the environment.
    ("pool_negative_id", lambda t: _custom_pool(
        lambda ids: ids.__setitem__((0, 0), -1)), ValueError,
     "candidate id -1"),
    ("pool_id_past_catalog", lambda t: _custom_pool(
        lambda ids: ids.__setitem__((0, 0), 60)), ValueError,
     "candidate id 60.*0..59"),
    ("pool_repeated_id", lambda t: _custom_pool(
        lambda ids: ids.__setitem__((0, 1), ids[0, 0])), ValueError, "twice"),
    ("pool_float_ids", lambda t: _custom_pool(None, _FloatSampler()),
     ValueError, "dtype"),
    # Rewards.
    ("env_reward_nan", lambda t: make_env(
        WORLD, reward_per_level={"not_skipped": float("nan")}), ValueError,
     "reward_per_level\\['not_skipped'\\] must be a finite"),
    ("env_reward_inf", lambda t: make_env(
        WORLD, reward_per_level={"not_skipped": float("inf")}), ValueError,
     "reward_per_level\\['not_skipped'\\] must be a finite"),
    ("env_reward_string", lambda t: make_env(
        WORLD, reward_per_level={"skip": "1"}), ValueError,
     "reward_per_level\\['skip'\\] must be a finite"),
    # Numeric gin parameters are typed, not cast.
    ("gin_int_as_string", lambda t: _gin_env("batch_size = '5'"),
     ValueError, "PlaylistEnvironment.batch_size must be an integer"),
    ("gin_int_as_float", lambda t: _gin_env("batch_size = 50.7"),
     ValueError, "PlaylistEnvironment.batch_size must be an integer"),
    ("gin_int_as_word", lambda t: _gin_env("max_playlist_length = 'twenty'"),
     ValueError, "max_playlist_length"),
    ("gin_bool_as_int", lambda t: _gin_env("history_length = True"),
     ValueError, "history_length"),
    ("world_tracks_as_string", lambda t: user_models.SyntheticWorld(
        num_tracks="three"), ValueError, "SyntheticWorld.num_tracks"),
    ("world_huge_catalog", lambda t: user_models.SyntheticWorld(
        num_tracks=10**12), ValueError, "num_tracks must be in"),
    ("env_huge_batch", lambda t: make_env(WORLD, batch_size=10**9),
     ValueError, "batch_size must be in"),
    ("world_seed_negative", lambda t: user_models.SyntheticWorld(
        num_tracks=5, num_users=2, seed=-1), ValueError, "seed"),
    ("world_seed_float", lambda t: user_models.SyntheticWorld(
        num_tracks=5, num_users=2, seed=1.5), ValueError, "seed"),
    ("env_seed_string", lambda t: make_env(WORLD, seed="0"), ValueError,
     "PlaylistEnvironment.seed"),
    ("log_sampler_pool_as_string", lambda t: LogEpisodeSampler(
        sessions_path="a", tracks_path="b", max_pool_size="20"), ValueError,
     "LogEpisodeSampler.max_pool_size must be an integer"),
    ("log_sampler_seed_as_float", lambda t: LogEpisodeSampler(
        sessions_path="a", tracks_path="b", split_seed=0.5), ValueError,
     "LogEpisodeSampler.split_seed"),
    ("sampler_pool_as_float", lambda t: simulator.RandomEpisodeSampler(
        WORLD, max_pool_size=5.5), ValueError, "max_pool_size"),
    ("slate_size_as_string", lambda t: simulator.DiscreteTrackSampler(
        slate_size="2"), ValueError, "slate_size"),
    ("tracker_flush_as_float", lambda t: simulator.EpisodeTracker(
        flush_every_rows=1.5), ValueError, "flush_every_rows"),
    ("generate_logs_sessions_as_string", lambda t: _generate_logs(
        t, num_sessions="10"), ValueError, "num_sessions"),
    ("generate_logs_bad_seed", lambda t: _generate_logs(
        t, num_sessions=1, seed="x"), ValueError, "seed"),
    # Evaluation: saved policies named on the command line.
    ("evaluate_policy_flag_without_name",
     lambda t: saved_policies.parse_policy_flags(["runs/ahdqn/policy"]),
     ValueError, "name=folder"),
    ("evaluate_policy_shadows_baseline", lambda t: _evaluate_with(
        t, "empty", name="random"), ValueError, "built-in policy"),
    ("evaluate_policy_missing_folder", lambda t: _evaluate_with(
        t, "missing"), ValueError, "no folder"),
    ("evaluate_policy_not_a_savedmodel", lambda t: _evaluate_with(
        t, "empty"), ValueError, "not a SavedModel"),
    ("evaluate_policy_foreign_savedmodel", lambda t: _evaluate_with(
        t, "foreign"), ValueError, "not a TF-Agents policy"),
    ("evaluate_policy_other_spec", lambda t: _saved_policy(
        t, "other_spec"), ValueError, "another environment"),
    # TF save failures.
    ("checkpoint_folder_unwritable", _checkpoint_unwritable, CkptErr,
     "could not save a checkpoint"),
    # JSON: never NaN.
    ("json_unserialisable_value", lambda t: io_utils.write_json(
        t / "x.json", {"a": object()}), TypeError, "not JSON serialisable"),
]



def test_catalogue_has_at_least_104_cases():
  assert len(CASES) >= 104


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
