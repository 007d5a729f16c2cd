"""Serving a trained Keras CWM or SWM as an environment's user model.

    EnvironmentBuilder.user_model = @KerasUserModel()
    KerasUserModel.model_path = 'runs/cwm/user_model.keras'
    KerasUserModel.catalog = 'runs/logs/tracks.parquet'

`KerasUserModel` builds the model inputs with `user_models.features` (the
code that built the training inputs) and makes one batched call per
environment step: the CWM scores every placed track of every running row in
one call; the SWM keeps a GRU state per environment row ([rows, units]),
reset to the learned start state by `begin_sessions` and advanced in
`observe` with each heard track, in slate order, so a step costs one head
call (plus one cell call per slate item after the first, see
`user_models.features` for slates).

Files are checked before Keras reads them (`user_models.model_files`: only
the layer classes our CWM/SWM are built from, no op layers, no code), then
loaded with Keras' safe mode, and their input and output shapes are
checked against the features the environment will feed; every failure is
a `UserModelLoadError` that names the file and the mismatch.
"""

import json
import os

import gin
import numpy as np

from user_models import _keras2  # noqa: F401  (must run before TensorFlow)
from user_models import features
from user_models import keras_models
from user_models.model_files import check_keras_archive
from user_models.base import AbstractUserModel, PUBLIC_RESPONSE_LEVELS
from user_models.base import SessionContext, UserModelError
from user_models.base import UserModelLoadError
from playlist_sim.common.io_utils import atomic_path
from playlist_sim.data import logs
from playlist_sim.data.catalog import TrackCatalog
from user_models.features import FeatureTables

import tensorflow as tf  # pylint: disable=g-import-not-at-top,g-bad-import-order

__all__ = ["KerasUserModel", "load_user_model", "save_user_model",
           "training_split"]


def save_user_model(model: tf.keras.Model, path: str | os.PathLike) -> str:
  """Saves a model as a `.keras` file, atomically.

  Keras picks the format from the file name, so the model is written under a
  temporary `.keras` name beside `path` and renamed.

  Args:
    model: the model.
    path: the destination, ending in `.keras`.

  Returns:
    The path written.

  Raises:
    ValueError: if `path` does not end in `.keras`.
    UserModelError: if the file cannot be written.
  """
  path = os.fspath(path)
  if not path.endswith(".keras"):
    raise ValueError(f"a Keras user model is saved as a .keras file, got "
                     f"{path!r}")
  try:
    with atomic_path(path) as tmp:
      staged = tmp + ".keras"
      try:
        model.save(staged)
        os.replace(staged, tmp)
      finally:
        if os.path.exists(staged):
          os.remove(staged)
  except (OSError, tf.errors.OpError) as e:  # Read-only, full, quota.
    raise UserModelError(
        f"could not save the user model to {path!r} ({type(e).__name__}: "
        f"{e}); make its folder writable or free space") from e
  return path


def load_user_model(path: str | os.PathLike) -> tf.keras.Model:
  """Loads a CWM or SWM `.keras` file, checked first, in safe mode.

  The archive's config is checked against the allowlist of
  `user_models.model_files` before Keras deserialises anything, so a
  crafted file runs nothing.

  Args:
    path: a file written by `save_user_model` (or `model.save`).

  Returns:
    The uncompiled model.

  Raises:
    UserModelLoadError: if the file is missing, not a `.keras` file, cannot
      be read (truncated, not a model), holds a layer outside the
      allowlist (named in the message), or holds a model that
      is neither a CWM nor an SWM.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise UserModelLoadError(f"user model file {path!r} does not exist")
  if not path.endswith(".keras"):
    raise UserModelLoadError(
        f"user model file {path!r} is not a .keras file (Keras user models "
        "are saved with model.save('....keras'))")
  check_keras_archive(path)
  try:
    model = tf.keras.models.load_model(path, compile=False, safe_mode=True)
  except Exception as e:  # Keras raises ValueError, OSError, BadZipFile...
    raise UserModelLoadError(
        f"could not load the Keras user model {path!r}: it is truncated, "
        f"not a saved Keras model, or needs unsafe code "
        f"({type(e).__name__}: {e})") from e
  try:
    keras_models.model_kind(model)
  except ValueError as e:
    raise UserModelLoadError(f"user model {path!r}: {e}") from e
  return model


def training_split(model_path: str | os.PathLike) -> dict | None:
  """How the logs were split when the model beside `metrics.json` trained.

  Args:
    model_path: a model written by `scripts/train_user_model.py`.

  Returns:
    {"split_by", "holdout_fraction", "split_seed"} from the `metrics.json`
    of the model's training run, or None if there is none to read.
  """
  path = os.path.join(os.path.dirname(os.path.abspath(model_path)),
                      "metrics.json")
  try:
    with open(path) as f:
      split = json.load(f).get("split")
  except (OSError, ValueError, AttributeError):
    return None
  return split if isinstance(split, dict) else None


def _check_shape(path: str, what: str, actual, expected: tuple,
                 explain: str) -> None:
  actual = tuple(None if d is None else int(d) for d in actual)
  if actual != expected:
    raise UserModelLoadError(
        f"user model {path!r}: {what} has shape {actual}, but the "
        f"environment's features need {expected} ({explain}); was the model "
        "trained with another catalog, user-feature width or history "
        "window?")


def _as_catalog(catalog) -> TrackCatalog:
  if isinstance(catalog, TrackCatalog):
    return catalog
  if isinstance(catalog, (str, os.PathLike)):
    return logs.read_tracks(catalog)
  if isinstance(getattr(catalog, "catalog", None), TrackCatalog):
    return catalog.catalog  # A SyntheticWorld or an episode sampler.
  raise TypeError(f"catalog must be a TrackCatalog, a tracks file path or an "
                  f"object with a .catalog, got {type(catalog).__name__}")


@gin.configurable
class KerasUserModel(AbstractUserModel):
  """A trained CWM or SWM (`.keras`) as an `AbstractUserModel`."""

  response_levels = PUBLIC_RESPONSE_LEVELS

  def __init__(self, model_path: str = gin.REQUIRED,
               catalog: TrackCatalog | str = gin.REQUIRED,
               user_feature_dim: int = 8,
               history_window: int = features.HISTORY_WINDOW):
    """Loads and checks the model.

    Args:
      model_path: a `.keras` file from `scripts/train_user_model.py`.
      catalog: the environment's track catalog (track ids are its rows): a
        `TrackCatalog`, a tracks file (Parquet/CSV, as the logs), or an
        object holding one in `.catalog` (e.g. a `SyntheticWorld`).
      user_feature_dim: width of the environment's user features (8 for
        both the synthetic world and episodes from logs).
      history_window: the CWM's history window, as in training.

    Raises:
      UserModelLoadError: if the file cannot be loaded or its input or
        output shapes do not fit the features built for this catalog.
    """
    self.model_path = os.fspath(model_path)
    self.catalog = _as_catalog(catalog)
    self.tables = FeatureTables(self.catalog)
    self.spec = self.tables.spec(user_feature_dim, history_window)
    self.model = load_user_model(self.model_path)
    #: The logs' split it trained on (`training_split`), or None.
    self.training_split = training_split(self.model_path)
    self.kind = keras_models.model_kind(self.model)
    self.user_vocab = keras_models.user_vocab_size(self.model)
    index = 1 if self.user_vocab else 0
    parts = (f"{self.spec.user_dim} user features + {self.spec.track_dim} "
             "track features")
    with_index = " + 1 user index" if index else ""
    levels = (None, features.NUM_LEVELS)
    if self.kind == keras_models.CWM_NAME:
      _check_shape(self.model_path, "the input", self.model.input_shape,
                   (None, self.spec.cwm_dim + index),
                   f"{parts} + 5 session scalars + 2 x "
                   f"{self.spec.history_window} history slots{with_index}")
      _check_shape(self.model_path, "the output", self.model.output_shape,
                   levels, f"the {features.NUM_LEVELS} public response levels")
      signature = [tf.TensorSpec([None, self.spec.cwm_dim + index],
                                 tf.float32)]
      cwm = tf.function(lambda x: self.model(x, training=False),
                        input_signature=signature)
      self._cwm = lambda x: cwm(x).numpy()
    else:
      steps_shape, cand_shape = self.model.input_shape
      _check_shape(self.model_path, "the 'steps' input", steps_shape,
                   (None, None, self.spec.swm_step_dim),
                   f"{self.spec.track_dim} track features + "
                   f"{features.NUM_LEVELS} levels + 1 start flag")
      _check_shape(self.model_path, "the 'candidates' input", cand_shape,
                   (None, None, self.spec.swm_candidate_dim + index),
                   f"{parts} + 8 unit acoustic + 5 session scalars + 2 x "
                   f"{self.spec.history_window} history slots{with_index}")
      _check_shape(self.model_path, "the output", self.model.output_shape,
                   (None,) + levels, f"the {features.NUM_LEVELS} public response levels")
      self._init_swm()

  # -- SWM state ---------------------------------------------------------------

  def _init_swm(self) -> None:
    step, head = keras_models.swm_serving_models(self.model, self.spec)
    self.state_units = int(step.output_shape[-1])
    u, dx = self.state_units, self.spec.swm_step_dim
    dc = int(head.input_shape[1][-1])
    step_fn = tf.function(
        lambda x, s: step([x, s], training=False),
        input_signature=[tf.TensorSpec([None, dx], tf.float32),
                         tf.TensorSpec([None, u], tf.float32)])
    head_fn = tf.function(
        lambda s, c: head([s, c], training=False),
        input_signature=[tf.TensorSpec([None, u], tf.float32),
                         tf.TensorSpec([None, dc], tf.float32)])
    self._set_swm_backend(lambda x, s: step_fn(x, s).numpy(),
                          lambda s, c: head_fn(s, c).numpy(), u)

  def _set_swm_backend(self, step, head, state_units: int) -> None:
    """Installs the SWM's step and head (NumPy in, NumPy out)."""
    self._step, self._head = step, head
    self.state_units = int(state_units)
    # The state before any track: the GRU after the start token.
    self.start_state = self._step(
        features.swm_start_features(1, self.tables),
        np.zeros((1, state_units), np.float32))[0]
    self.state = np.zeros((0, state_units), np.float32)

  def _ensure_rows(self, rows: np.ndarray) -> None:
    """Grows the state table so every row exists (new rows start fresh)."""
    need = int(rows.max()) + 1 if rows.size else 0
    if need > self.state.shape[0]:
      extra = np.tile(self.start_state, (need - self.state.shape[0], 1))
      self.state = np.concatenate([self.state, extra], axis=0)

  def begin_sessions(self, rows: np.ndarray, user_ids: np.ndarray) -> None:
    if self.kind == keras_models.SWM_NAME:
      rows = np.asarray(rows, np.int64)
      self._ensure_rows(rows)
      self.state[rows] = self.start_state

  def observe(self, rows: np.ndarray, track_ids: np.ndarray,
              responses: np.ndarray) -> None:
    if self.kind != keras_models.SWM_NAME:
      return
    rows = np.asarray(rows, np.int64)
    self._ensure_rows(rows)
    responses = np.asarray(responses)
    for j in range(responses.shape[1]):  # Slate items are heard in order.
      heard = responses[:, j] >= 0
      if heard.any():
        x = features.swm_step_features(
            track_ids[heard, j], features.one_hot_levels(responses[heard, j]),
            self.tables)
        self.state[rows[heard]] = self._step(x, self.state[rows[heard]])

  # -- prediction --------------------------------------------------------------

  def _check_context(self, context: SessionContext,
                     track_ids: np.ndarray) -> None:
    width = np.shape(context.user_features)[1]
    if width != self.spec.user_dim:
      raise UserModelError(
          f"KerasUserModel({self.model_path!r}) was built for "
          f"{self.spec.user_dim} user features, the environment gives {width}")
    if track_ids.size and (track_ids.min() < 0 or
                           track_ids.max() >= self.tables.num_tracks):
      raise UserModelError(
          f"KerasUserModel({self.model_path!r}): track id "
          f"{int(track_ids.max())} is outside its catalog of "
          f"{self.tables.num_tracks} tracks; pass the environment's catalog")

  def _with_index(self, x: np.ndarray, user_ids: np.ndarray) -> np.ndarray:
    """Appends the user-index column to [R, k, D] inputs, if the model has one."""
    if not self.user_vocab:
      return x
    index = features.user_index_column(user_ids, self.user_vocab)
    index = np.broadcast_to(index[:, None, :], x.shape[:2] + (1,))
    return np.concatenate([x, index], axis=2)

  def predict(self, context: SessionContext,
              track_ids: np.ndarray) -> np.ndarray:
    """Level probabilities [R, k, L] from one batched model call."""
    track_ids = np.asarray(track_ids)
    self._check_context(context, track_ids)
    r, k = track_ids.shape
    if self.kind == keras_models.CWM_NAME:
      x = self._with_index(features.cwm_features(
          context, track_ids, self.tables, self.spec.history_window),
                           context.user_ids)
      probs = self._cwm(x.reshape(r * k, -1))
      return probs.reshape(r, k, -1)
    rows = np.asarray(context.rows, np.int64)
    self._ensure_rows(rows)
    cand = self._with_index(
        features.swm_candidate_features(context, track_ids, self.tables),
        context.user_ids)
    state = self.state[rows]
    out = []
    for j in range(k):
      if j:  # Item j follows items < j, whose responses are not known yet.
        x = features.swm_step_features(track_ids[:, j - 1], out[-1],
                                       self.tables)
        state = self._step(x, state)
      out.append(self._head(state, cand[:, j]))
    return np.stack(out, axis=1)
