"""Training a CWM or SWM from session logs, and scoring it on held-out sessions.

`train_user_model` reads logs with `simulator.log_episodes.LoggedSessions`
(held-out sessions split by a seeded hash of the session), rebuilds each
logged track's `SessionContext` (`user_models.features.logged_contexts`),
featurises it with the serving code, trains with early stopping on a
validation share of the training sessions, and writes into root_dir:

* `user_model.keras`: the model (`user_models.KerasUserModel` serves it);
* `reliability.png`: the reliability diagram of P(skip) on held-out rows;
* `metrics.json` (+ the gin configs): `auc`, `log_loss`, `ece` of
  P(skip) = 1 - P(not_skipped) on the held-out sessions (`user_models.metrics`
  defines them; ECE over 15 equal-width bins) and, when the logs come from
  the listener world, the same figures of the world's true probabilities on
  the same rows (`bayes_auc`, `bayes_log_loss`, `bayes_ece`), the ceiling a
  model of these logs can reach. Without them, `bayes_unavailable` says why.

The user context is the listener's taste profile from the logs
(`LoggedSessions.session_profile`), exactly what `LogEpisodeSampler` shows
the environment, except that a training session's profile leaves out its
own listens (`leave_session_out_profiles`), as a held-out session's does.
With `user_embedding` (the default when the logs have a
`user_id` column) the models also learn a taste vector per user id; a share
of the training sessions (`unknown_user_fraction`) is trained as the
"unknown user" so that ids unseen in training get a sensible fallback.
"""

import dataclasses
import os
import sys
import time

import gin
import numpy as np

from simulator.io_utils import ensure_writable_dir
from simulator.log_episodes import LoggedSessions
from simulator.runs import write_run_files
from user_models import features
from user_models import keras_models
from user_models import metrics as skip_metrics_lib
from user_models.base import AbstractUserModel, PUBLIC_RESPONSE_LEVELS
from user_models.base import SessionContext
from user_models.keras_user_model import save_user_model

import tensorflow as tf  # pylint: disable=g-import-not-at-top,g-bad-import-order

__all__ = ["LogInputs", "find_log_files", "leave_session_out_profiles",
           "model_inputs", "prepare_inputs", "train_user_model",
           "true_probabilities"]

_LISTEN = features.NUM_LEVELS - 1
MODEL_FILE = "user_model.keras"
PLOT_FILE = "reliability.png"


def find_log_files(logs_dir: str) -> tuple[str, str]:
  """The sessions and tracks files of a logs folder (Parquet, else CSV).

  Args:
    logs_dir: a folder written by `scripts/generate_logs.py`, or holding
      the public dataset's files renamed to sessions.* and tracks.*.

  Returns:
    (sessions_path, tracks_path).

  Raises:
    FileNotFoundError: if either file is missing.
  """
  found = []
  for stem in ("sessions", "tracks"):
    paths = [os.path.join(logs_dir, f"{stem}.{ext}")
             for ext in ("parquet", "pq", "csv", "csv.gz")]
    existing = [p for p in paths if os.path.isfile(p)]
    if not existing:
      raise FileNotFoundError(
          f"no {stem}.parquet/.csv in {logs_dir!r}; generate logs with "
          "scripts/generate_logs.py --root_dir LOGS")
    found.append(existing[0])
  return found[0], found[1]


def true_probabilities(true_user_model: AbstractUserModel | None,
                       data: LoggedSessions,
                       context) -> tuple[np.ndarray | None, str | None]:
  """The world's level probabilities of every logged row, if comparable.

  Args:
    true_user_model: the ground truth (e.g. `ParametricListener`) or None.
    data: the logs.
    context: `logged_contexts` of every row.

  Returns:
    (probs [R, 4], None), or (None, reason) when the logs cannot be scored
    by this model: no model, other levels, or a world whose catalog or
    users differ from the logs'.
  """
  if true_user_model is None:
    return None, "no true_user_model was given"
  if tuple(true_user_model.response_levels) != PUBLIC_RESPONSE_LEVELS:
    return None, (f"the true user model's levels "
                  f"{tuple(true_user_model.response_levels)} are not the "
                  "public four")
  world = getattr(true_user_model, "world", None)
  catalog = getattr(world, "catalog", None)
  if catalog is None:
    return None, "the true user model has no world catalog to check"
  world_ids = np.asarray(catalog.track_ids).astype(str)
  log_ids = np.asarray(data.catalog.track_ids).astype(str)
  if world_ids.shape != log_ids.shape or (world_ids != log_ids).any():
    return None, (f"the world's catalog ({len(world_ids)} tracks) has other "
                  f"track ids than the logs' tracks file ({len(log_ids)} "
                  "tracks): the logs do not come from this world")
  # Worlds of another seed share the ids but not the features.
  if not np.allclose(catalog.features, data.catalog.features, atol=1e-4):
    return None, ("the world's track features differ from the logs' tracks "
                  "file (same ids, another world, e.g. another seed)")
  num_users = getattr(world, "num_users", None)
  if num_users is not None and data.row_users.max() >= num_users:
    return None, (f"the logs' user ids reach {int(data.row_users.max())}, "
                  f"beyond the world's {num_users} users")
  probs = true_user_model.predict(context, data.track_rows[:, None])[:, 0]
  return np.asarray(probs, np.float64), None


def leave_session_out_profiles(data: LoggedSessions) -> np.ndarray | None:
  """Taste profiles of training sessions without their own listens.

  `LoggedSessions.session_profile` averages the acoustic vectors of a user's
  listens over all training sessions, so a training session's profile
  contains its own outcomes while a held-out session's does not. Training on
  the leaky profile teaches a model to trust it more than it deserves on
  held-out sessions and in the environment, so every training session gets
  the average over the user's *other* training sessions (zeros if none, as
  for a user with no training sessions).

  Args:
    data: the logs.

  Returns:
    float32 [S, U] profiles (held-out sessions unchanged), or None if the
    logs' profiles are not the mean acoustic vector of training listens
    (then they are used as they are).
  """
  vectors = features.FeatureTables(data.catalog).acoustic.astype(np.float64)
  session = data.bounds.session_index
  listens = (data.levels == _LISTEN) & ~data.held_out[session]
  num_sessions = data.bounds.num_sessions
  own_sum = np.zeros((num_sessions, vectors.shape[1]))
  np.add.at(own_sum, session[listens], vectors[data.track_rows[listens]])
  own_count = np.bincount(session[listens], minlength=num_sessions)
  users, user_of = np.unique(data.session_users, return_inverse=True)
  user_sum = np.zeros((len(users), vectors.shape[1]))
  np.add.at(user_sum, user_of, own_sum)
  user_count = np.bincount(user_of, own_count, len(users))
  full = user_sum[user_of] / np.maximum(user_count[user_of], 1)[:, None]
  if not np.allclose(full, data.session_profile, atol=1e-4):
    return None
  rest = user_count[user_of] - own_count
  loso = (user_sum[user_of] - own_sum) / np.maximum(rest, 1)[:, None]
  return np.where(data.held_out[:, None], data.session_profile,
                  loso).astype(np.float32)


def _hashed_share(keys: np.ndarray, fraction: float, salt: int) -> np.ndarray:
  """True for a seeded `fraction` of keys, independent of the held-out split.

  A splitmix64 finaliser of (key, salt): unlike `split_sessions`, whose
  seeds shift one hash, different salts give unrelated subsets.
  """
  offset = np.uint64((salt * 0x9E3779B97F4A7C15) % 2**64)
  with np.errstate(over="ignore"):
    z = keys.astype(np.uint64) + offset
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
  z ^= z >> np.uint64(31)
  return (z >> np.uint64(11)).astype(np.float64) / 2.0**53 < fraction


def _sequences(data: LoggedSessions, step_rows: np.ndarray,
               cand_rows: np.ndarray, start: np.ndarray):
  """Pads per-row SWM inputs into [S, T, *] session sequences.

  Position t of session s holds the start token (t = 0) or row t - 1's step
  features, and row t's candidate features and level; weight 0 marks
  padding.
  """
  offsets, lengths = data.bounds.offsets, data.bounds.lengths
  s, t = data.bounds.num_sessions, int(lengths.max())
  session = data.bounds.session_index
  position = np.arange(len(session)) - offsets[session]
  steps = np.zeros((s, t, step_rows.shape[1]), np.float32)
  steps[:, 0] = start
  after = position + 1 < lengths[session]  # Rows followed by another row.
  steps[session[after], position[after] + 1] = step_rows[after]
  cands = np.zeros((s, t, cand_rows.shape[1]), np.float32)
  cands[session, position] = cand_rows
  levels = np.zeros((s, t), np.int32)
  levels[session, position] = data.levels
  weights = np.zeros((s, t), np.float32)
  weights[session, position] = 1.0
  return steps, cands, levels, weights


@dataclasses.dataclass
class LogInputs:
  """Logs prepared for training: arrays, contexts and the three splits.

  Attributes:
    data: the logs.
    tables: the catalog's feature tables.
    spec: the input widths.
    context: the `SessionContext` of every logged row (user features are
      leave-session-out profiles for training sessions).
    fit: bool [S], sessions trained on.
    validation: bool [S], training sessions kept for early stopping.
    user_vocab: rows of the user embedding (0: none).
    user_index: float32 [R, 1] the embedding index of each row (0 for the
      sessions trained as the unknown user), or None.
    profiles_note: why leave-session-out profiles were not used, or None.
  """
  data: LoggedSessions
  tables: features.FeatureTables
  spec: features.FeatureSpec
  context: SessionContext
  fit: np.ndarray
  validation: np.ndarray
  user_vocab: int
  user_index: np.ndarray | None
  profiles_note: str | None


def prepare_inputs(logs_dir: str, split_by: str = "session",
                   holdout_fraction: float = 0.2,
                   validation_fraction: float = 0.1, split_seed: int = 0,
                   user_embedding: bool = True,
                   unknown_user_fraction: float = 0.05) -> LogInputs:
  """Reads logs and prepares what both model types train on.

  Args:
    logs_dir: folder of sessions.* and tracks.*.
    split_by: "session" or "user", the held-out split of `LoggedSessions`.
    holdout_fraction: share held out for the metrics.
    validation_fraction: share of training sessions kept for early stopping.
    split_seed: seed of the splits.
    user_embedding: give the models a user embedding (if the logs have a
      `user_id` column).
    unknown_user_fraction: share of fit sessions trained as the unknown user.

  Returns:
    The prepared `LogInputs`.

  Raises:
    ValueError: if a fraction is out of range or a split is empty.
  """
  if not 0.0 < validation_fraction < 1.0:
    raise ValueError(f"validation_fraction must be in (0, 1), got "
                     f"{validation_fraction}")
  data = LoggedSessions.load(*find_log_files(logs_dir), split_by=split_by,
                             holdout_fraction=holdout_fraction,
                             split_seed=split_seed)
  tables = features.FeatureTables(data.catalog)
  session = data.bounds.session_index
  profiles = leave_session_out_profiles(data)
  context = features.logged_contexts(
      data.track_rows, data.levels, data.bounds.offsets, data.row_users,
      (data.session_profile if profiles is None else profiles)[session])
  keys = np.arange(data.bounds.num_sessions)
  validation = ~data.held_out & _hashed_share(keys, validation_fraction,
                                              2 * split_seed + 1)
  fit = ~data.held_out & ~validation
  if not (fit.any() and validation.any() and data.held_out.any()):
    raise ValueError(f"{len(keys)} sessions are too few to split into fit, "
                     "validation and held-out sessions")
  user_vocab = int(data.row_users.max()) + 2 if (
      user_embedding and "user_id" in data.table.column_names) else 0
  index = None
  if user_vocab:
    # Whole sessions play the unknown user, as an unseen listener would.
    unknown = fit & _hashed_share(keys, unknown_user_fraction,
                                  2 * split_seed + 2)
    index = features.user_index_column(data.row_users, user_vocab)
    index[unknown[session]] = 0.0
  note = None if profiles is not None else (
      "the logs' profiles are not mean acoustic vectors of training listens; "
      "used as they are")
  return LogInputs(data, tables, tables.spec(data.session_profile.shape[1]),
                   context, fit, validation, user_vocab, index, note)


def model_inputs(inputs: LogInputs, model_type: str) -> dict[str, np.ndarray]:
  """The arrays a model of `model_type` reads, for every logged row.

  Args:
    inputs: prepared logs.
    model_type: "cwm" or "swm".

  Returns:
    CWM: {"x": [R, D]}. SWM: {"steps": [S, T, Dx], "candidates": [S, T, Dc],
    "levels": [S, T], "weights": [S, T]} (weight 0 on padding).
  """
  data, tables, context = inputs.data, inputs.tables, inputs.context
  extra = [] if inputs.user_index is None else [inputs.user_index]
  if model_type == keras_models.CWM_NAME:
    x = features.cwm_features(context, data.track_rows[:, None], tables)[:, 0]
    return {"x": np.concatenate([x] + extra, axis=1)}
  step_rows = features.swm_step_features(
      data.track_rows, features.one_hot_levels(data.levels), tables)
  cand_rows = features.swm_candidate_features(
      context, data.track_rows[:, None], tables)[:, 0]
  steps, cands, levels, weights = _sequences(
      data, step_rows, np.concatenate([cand_rows] + extra, axis=1),
      features.swm_start_features(1, tables))
  return {"steps": steps, "candidates": cands, "levels": levels,
          "weights": weights}


@gin.configurable(denylist=["root_dir", "logs_dir", "seed"])
def train_user_model(
    root_dir: str,
    logs_dir: str,
    model_type: str = "cwm",
    # Data and split.
    split_by: str = "session",
    holdout_fraction: float = 0.2,
    validation_fraction: float = 0.1,
    split_seed: int = 0,
    # Model.
    user_embedding: bool = True,
    embedding_dim: int = 8,
    user_l2: float = 1e-3,
    unknown_user_fraction: float = 0.05,
    tower_units: int = 64,
    hidden_units: tuple[int, ...] = (128, 128),
    state_units: int = 64,
    step_units: int = 64,
    interaction_dim: int = 16,
    state_dropout: float = 0.0,
    # Optimisation.
    learning_rate: float = 2e-3,
    batch_size: int = 512,
    max_epochs: int = 40,
    patience: int = 3,
    lr_patience: int = 1,
    seed: int = 0,
    progress: bool = True,
    # Evaluation.
    true_user_model: AbstractUserModel | None = None) -> dict:
  """Trains a CWM or SWM on logs and writes model, plot and metrics.

  Args:
    root_dir: output folder.
    logs_dir: folder of sessions.* and tracks.* (see `find_log_files`).
    model_type: "cwm" (dense, hand-engineered session context) or "swm"
      (GRU over the session).
    split_by: "session" or "user", the held-out split of `LoggedSessions`.
    holdout_fraction: share of sessions (or users) held out for the metrics.
    validation_fraction: share of the training sessions kept for early
      stopping (never the held-out ones).
    split_seed: seed of the splits.
    user_embedding: learn a taste vector per user id (needs a `user_id`
      column; ignored otherwise).
    embedding_dim: width of the taste embedding and the track tower.
    user_l2: L2 weight of the embedding table.
    unknown_user_fraction: share of training sessions trained as the
      unknown user (index 0).
    tower_units: hidden units of the track tower.
    hidden_units: units of the MLP (the SWM's head).
    state_units: GRU units of the SWM.
    step_units: units of the SWM's dense step encoder.
    interaction_dim: width of the SWM head's state x track product.
    state_dropout: dropout rate on the SWM state read by the head (training
      only).
    learning_rate: Adam's initial rate, cut by 3 when validation stalls.
    batch_size: rows per batch (CWM); the SWM takes batch_size / 8
      sessions per batch (sessions average ~13 rows).
    max_epochs: epochs at most.
    patience: epochs without validation improvement before stopping (the
      best weights are kept).
    lr_patience: epochs without validation improvement before the learning
      rate is cut by 3.
    seed: seed of initialisation and shuffling.
    progress: show Keras' progress display.
    true_user_model: the world's ground truth for the bayes_* figures
      (gin: `@ParametricListener()`), or None.

  Returns:
    The metrics written to root_dir/metrics.json.

  Raises:
    ValueError: on an unknown model type or fraction out of range.
    simulator.logs.LogFormatError: for malformed logs.
  """
  if model_type not in (keras_models.CWM_NAME, keras_models.SWM_NAME):
    raise ValueError(f"model_type must be 'cwm' or 'swm', got {model_type!r}")
  root_dir = ensure_writable_dir(root_dir)
  started = time.time()
  inputs = prepare_inputs(logs_dir, split_by, holdout_fraction,
                          validation_fraction, split_seed, user_embedding,
                          unknown_user_fraction)
  arrays = model_inputs(inputs, model_type)
  data, fit, validation = inputs.data, inputs.fit, inputs.validation
  session = data.bounds.session_index

  tf.keras.utils.set_random_seed(seed)
  if model_type == keras_models.CWM_NAME:
    model = keras_models.build_cwm(inputs.spec, inputs.user_vocab,
                                   embedding_dim, user_l2, tower_units,
                                   hidden_units)
    x = arrays["x"]
    train = dict(x=x[fit[session]], y=data.levels[fit[session]])
    valid = (x[validation[session]], data.levels[validation[session]])
    fit_batch = batch_size
  else:
    model = keras_models.build_swm(inputs.spec, inputs.user_vocab,
                                   state_units, embedding_dim, user_l2,
                                   tower_units, hidden_units, step_units,
                                   interaction_dim, state_dropout)
    seq = (arrays["steps"], arrays["candidates"])
    levels, weights = arrays["levels"], arrays["weights"]
    # Keras averages the loss over every [session, t] cell, padding
    # included; weights of mean 1 make it the mean over real rows, as for
    # the CWM, so the embedding's L2 term weighs the same in both.
    scale = lambda w: w / w.mean()  # noqa: E731
    train = dict(x=(seq[0][fit], seq[1][fit]), y=levels[fit],
                 sample_weight=scale(weights[fit]))
    valid = ((seq[0][validation], seq[1][validation]), levels[validation],
             scale(weights[validation]))
    fit_batch = max(1, batch_size // 8)

  model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate),
                loss="sparse_categorical_crossentropy",
                weighted_metrics=[] if model_type == "swm" else None)
  callbacks = [
      tf.keras.callbacks.EarlyStopping(patience=patience,
                                       restore_best_weights=True),
      tf.keras.callbacks.ReduceLROnPlateau(factor=1 / 3, patience=lr_patience,
                                           min_lr=learning_rate / 100),
      # A killed run resumes from its last finished epoch; removed on success.
      tf.keras.callbacks.BackupAndRestore(
          os.path.join(root_dir, "fit_backup"))]
  # A live bar on a terminal, one line per epoch in logs and subprocesses.
  verbose = (1 if sys.stdout.isatty() else 2) if progress else 0
  fit_started = time.time()
  history = model.fit(**train, validation_data=valid, batch_size=fit_batch,
                      epochs=max_epochs, callbacks=callbacks, shuffle=True,
                      verbose=verbose)
  train_seconds = time.time() - fit_started
  model_path = save_user_model(model, os.path.join(root_dir, MODEL_FILE))

  # Held-out rows, in log order (sessions are contiguous and in order).
  held = data.held_out
  held_rows = held[session]
  if model_type == keras_models.CWM_NAME:
    probs = model.predict(x[held_rows], batch_size=8192, verbose=0)
  else:
    out = model.predict((seq[0][held], seq[1][held]), batch_size=512,
                        verbose=0)
    probs = out[weights[held] > 0]
  skipped = (data.levels[held_rows] != _LISTEN).astype(np.float64)
  p_skip = 1.0 - probs[:, _LISTEN].astype(np.float64)
  metrics = skip_metrics_lib.skip_metrics(skipped, p_skip)
  curves = {model_type.upper(): (skipped, p_skip)}
  true_probs, reason = true_probabilities(true_user_model, data,
                                          inputs.context)
  if true_probs is not None:
    p_true = 1.0 - true_probs[held_rows, _LISTEN]
    metrics.update(skip_metrics_lib.skip_metrics(skipped, p_true, "bayes_"))
    curves["world (Bayes)"] = (skipped, p_true)
  else:
    metrics["bayes_unavailable"] = reason
  plot_path = skip_metrics_lib.reliability_plot(
      os.path.join(root_dir, PLOT_FILE), curves)
  metrics.update(
      model_type=model_type, model_path=model_path, reliability_plot=plot_path,
      logs_dir=os.path.abspath(logs_dir),
      num_fit_sessions=int(fit.sum()),
      num_validation_sessions=int(validation.sum()),
      num_held_out_sessions=int(held.sum()),
      num_held_out_rows=int(held_rows.sum()),
      # history.epoch counts from 0 across a resume.
      user_vocab=inputs.user_vocab, epochs=history.epoch[-1] + 1,
      best_val_loss=float(min(history.history["val_loss"])),
      train_seconds=train_seconds, wall_seconds=time.time() - started,
      ece_bins=skip_metrics_lib.DEFAULT_NUM_BINS)
  if inputs.profiles_note:
    metrics["profiles_note"] = inputs.profiles_note
  if user_embedding and not inputs.user_vocab:
    metrics["user_embedding_skipped"] = "the logs have no user_id column"
  write_run_files(root_dir, metrics)
  return metrics
