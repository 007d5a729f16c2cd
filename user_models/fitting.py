"""Fitting the user models: the CWM, and the SWM's sequence stage.

`train_user_model` (`user_models.training`) runs these steps in order:
`train_cwm` fits the CWM (for an SWM, its first stage) with early stopping on
the validation sessions; `train_swm` then builds the SWM from it and fits
its sequence layers (by default on half of the validation sessions, the CWM
part frozen: see `user_models.training`). Each returns a `TrainedModel`: the
model with its predictions on the held-out rows, which the metrics score.
"""

import dataclasses
import os

import numpy as np

from user_models import features
from user_models import keras_models
from user_models import metrics as skip_metrics_lib
from user_models.log_inputs import LogInputs, hashed_share, model_inputs

import tensorflow as tf  # pylint: disable=g-import-not-at-top,g-bad-import-order

__all__ = ["NonFiniteLossError", "TrainedModel", "as_unknown_users",
           "fit_keras_model", "skipped_labels", "train_cwm",
           "train_cwm_ensemble", "train_swm"]

_LISTEN = features.NUM_LEVELS - 1


class NonFiniteLossError(RuntimeError):
  """User-model training reached a NaN or infinite loss."""


class _StopOnNonFiniteLoss(tf.keras.callbacks.Callback):
  """Raises as soon as a batch or validation loss is not finite.

  Keras' own TerminateOnNaN stops quietly and leaves a model of NaN
  weights to be saved and scored (AUC 0.5); a run that diverged must fail.
  """

  def _check(self, logs, when: str) -> None:
    for key in ("loss", "val_loss"):
      value = (logs or {}).get(key)
      if value is not None and not np.isfinite(value):
        raise NonFiniteLossError(
            f"user-model training diverged: {key} is {value} {when}. Check "
            "the logs' track features for extreme values, or lower "
            "train_user_model.learning_rate")

  def on_train_batch_end(self, batch, logs=None):
    self._check(logs, f"after batch {batch}")

  def on_epoch_end(self, epoch, logs=None):
    self._check(logs, f"after epoch {epoch}")


def fit_keras_model(model: tf.keras.Model, train: dict, valid: tuple,
                    batch_size: int, learning_rate: float, max_epochs: int,
                    patience: int, lr_patience: int, verbose: int,
                    weighted: bool, backup_dir: str,
                    keep_start: bool = False,
                    loss: str = "sparse_categorical_crossentropy"
                    ) -> tf.keras.callbacks.History:
  """Compiles and fits with early stopping; returns the Keras history.

  `loss` is the level labels' cross-entropy by default; a distilled CWM
  fits its teacher's probabilities ("categorical_crossentropy").
  The best weights (lowest validation loss) are kept; with `keep_start`,
  the starting weights compete too: a model that only gets worse on the
  validation sessions is returned as it started. A killed fit resumes from
  its last finished epoch in `backup_dir` (removed on success).
  """
  model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate),
                loss=loss,
                weighted_metrics=[] if weighted else None)
  start_loss = None
  if keep_start:  # E.g. an SWM started as its CWM: the loss to beat.
    x, y, w = valid
    start_loss = float(model.evaluate(x, y, sample_weight=w,
                                      batch_size=batch_size, verbose=0))
  callbacks = [
      _StopOnNonFiniteLoss(),
      tf.keras.callbacks.EarlyStopping(patience=patience,
                                       restore_best_weights=True,
                                       baseline=start_loss),
      tf.keras.callbacks.ReduceLROnPlateau(factor=1 / 3, patience=lr_patience,
                                           min_lr=learning_rate / 100),
      tf.keras.callbacks.BackupAndRestore(backup_dir)]
  start_weights = model.get_weights() if start_loss is not None else None
  history = model.fit(**train, validation_data=valid, batch_size=batch_size,
                      epochs=max_epochs, callbacks=callbacks, shuffle=True,
                      verbose=verbose)
  if start_weights is not None and min(history.history["val_loss"]) >= (
      start_loss):
    model.set_weights(start_weights)
  return history


@dataclasses.dataclass
class TrainedModel:
  """A trained model and its held-out predictions.

  Attributes:
    model: the Keras model.
    probs: float [R, L] level probabilities of the held-out rows, in log
      order.
    held_rows: bool [rows]: the held-out rows of the logs.
    epochs: epochs trained (both stages of an SWM).
    history: the Keras history of the last stage.
    stage_metrics: for an SWM, its CWM stage's held-out figures
      (`cwm_stage_*`); empty for a CWM.
    trained_index: user index of every fit row (None without an embedding).
    untrained_users: embedding rows given the unknown user's vector.
  """
  model: tf.keras.Model
  probs: np.ndarray
  held_rows: np.ndarray
  epochs: int
  history: object
  stage_metrics: dict
  trained_index: np.ndarray | None
  untrained_users: int


def skipped_labels(inputs: LogInputs, held_rows: np.ndarray) -> np.ndarray:
  """1.0 where a held-out row was skipped (any level but a listen)."""
  return (inputs.data.levels[held_rows] != _LISTEN).astype(np.float64)


def train_cwm(inputs: LogInputs, root_dir: str, seed: int, fit_args: dict,
              learning_rate: float, batch_size: int,
              row_weights: np.ndarray | None = None,
              backup_name: str = keras_models.CWM_NAME,
              teacher: tf.keras.Model | None = None,
              **architecture) -> TrainedModel:
  """Builds and fits the CWM (for an SWM: its first stage).

  `row_weights` (float [rows], e.g. the selection weights of
  `playlist_sim.data.selection`) weight the training and validation loss;
  None fits exactly as an unweighted run. With a `teacher` (a CWM, e.g. an
  ensemble) the CWM is distilled: it fits the teacher's level
  probabilities on the same rows instead of the logged levels, and early
  stopping watches its distance from the teacher on the validation rows.
  A killed fit resumes from root_dir/fit_backup/`backup_name`.
  """
  data, fit, validation = inputs.data, inputs.fit, inputs.validation
  session = data.bounds.session_index
  held_rows = data.held_out[session]
  tf.keras.utils.set_random_seed(seed)
  x = model_inputs(inputs, keras_models.CWM_NAME)["x"]
  cwm = keras_models.build_cwm(inputs.spec, inputs.user_vocab,
                               architecture["embedding_dim"],
                               architecture["user_l2"],
                               architecture["tower_units"],
                               architecture["hidden_units"],
                               architecture.get("history_units", 0),
                               architecture.get("history_in_mlp", True))
  fit_rows, valid_rows = fit[session], validation[session]
  if teacher is None:
    labels = (data.levels[fit_rows], data.levels[valid_rows])
    loss = "sparse_categorical_crossentropy"
  else:
    labels = tuple(teacher.predict(x[rows], batch_size=8192, verbose=0)
                   for rows in (fit_rows, valid_rows))
    loss = "categorical_crossentropy"
  train = dict(x=x[fit_rows], y=labels[0])
  valid = (x[valid_rows], labels[1])
  if row_weights is not None:
    train["sample_weight"] = row_weights[fit_rows]
    valid += (row_weights[valid_rows],)
  history = fit_keras_model(
      cwm, train, valid, batch_size, learning_rate,
      weighted=row_weights is not None,
      backup_dir=os.path.join(root_dir, "fit_backup", backup_name),
      loss=loss, **fit_args)
  # Users training never saw (held out by user) fall back to the unknown
  # user, in the metrics and wherever the model serves.
  trained_index = (None if inputs.user_index is None else
                   inputs.user_index[fit[session]])
  untrained_users = (0 if trained_index is None else
                     keras_models.share_unknown_user(cwm, trained_index))
  probs = cwm.predict(x[held_rows], batch_size=8192, verbose=0)
  # history.epoch counts from 0 across a resume.
  return TrainedModel(cwm, probs, held_rows, history.epoch[-1] + 1,
                      history, {}, trained_index, untrained_users)


def train_cwm_ensemble(inputs: LogInputs, root_dir: str, seed: int,
                       size: int, fit_args: dict, learning_rate: float,
                       batch_size: int, row_weights: np.ndarray | None = None,
                       **architecture) -> TrainedModel:
  """Fits `size` CWMs from seeds `seed`, `seed + 1`, ... and averages them.

  Every member is `train_cwm` on the same rows and weights; only the seed
  (initial weights, shuffling) differs, and it is the seed that moves a
  CWM's simulator most (docs/model_bias.md, "An ensemble of training
  seeds"). Members are fitted one after another; a killed run resumes the
  member it was fitting from its backup and fits the others again.

  Returns:
    The ensemble (`keras_models.build_cwm_ensemble`) as a TrainedModel: its
    held-out probabilities, the epochs of all members summed, a `history`
    whose one record is the ensemble's own (weighted) validation loss, and
    in `stage_metrics` the members' epochs, validation losses and held-out
    AUCs (`ensemble_*`).
  """
  members = [train_cwm(inputs, root_dir, seed + i, fit_args, learning_rate,
                       batch_size, row_weights,
                       backup_name=f"{keras_models.ENSEMBLE_MEMBER}{i}",
                       **architecture) for i in range(size)]
  ensemble = keras_models.build_cwm_ensemble([m.model for m in members])
  data, session = inputs.data, inputs.data.bounds.session_index
  x = model_inputs(inputs, keras_models.CWM_NAME)["x"]
  valid_rows = inputs.validation[session]
  probs = ensemble.predict(x[valid_rows], batch_size=8192, verbose=0)
  loss = -np.log(np.maximum(probs[np.arange(len(probs)),
                                  data.levels[valid_rows]], 1e-7))
  if row_weights is not None:  # As Keras weighs the members' val_loss.
    loss = loss * row_weights[valid_rows]
  history = tf.keras.callbacks.History()
  history.history = {"val_loss": [float(loss.mean())]}
  first = members[0]
  held_skipped = skipped_labels(inputs, first.held_rows)
  stage = {
      "ensemble_member_seeds": [seed + i for i in range(size)],
      "ensemble_member_epochs": [m.epochs for m in members],
      "ensemble_member_val_loss": [
          float(min(m.history.history["val_loss"])) for m in members],
      "ensemble_member_auc": [
          skip_metrics_lib.auc(held_skipped,
                               1.0 - m.probs[:, _LISTEN].astype(np.float64))
          for m in members]}
  held_probs = np.mean([m.probs for m in members], axis=0)
  return TrainedModel(ensemble, held_probs, first.held_rows,
                      sum(m.epochs for m in members), history, stage,
                      first.trained_index, first.untrained_users)


def swm_stage_sessions(inputs: LogInputs, split_seed: int,
                       residual_on_validation: bool,
                       as_unknown_users: bool = False
                       ) -> tuple[np.ndarray, np.ndarray]:
  """The sessions the SWM's sequence stage fits and stops early on.

  Played as the unknown user, the stage fits every fit session: the user
  embedding's memory of them is out of play. Played as known users, the
  fit sessions are the embedding's own, so by default
  (`residual_on_validation`) the stage fits half of the validation
  sessions instead.
  """
  fit, validation = inputs.fit, inputs.validation
  if residual_on_validation and not as_unknown_users:
    # Stacking: the sequence layers learn on sessions the CWM part never
    # fit, as held-out sessions are, and stop on the rest.
    keys = np.arange(inputs.data.bounds.num_sessions)
    half = hashed_share(keys, 0.5, 2 * split_seed + 3)
    if (validation & half).any() and (validation & ~half).any():
      return validation & half, validation & ~half
  return fit, validation


def as_unknown_users(candidates: np.ndarray,
                     sessions: np.ndarray) -> np.ndarray:
  """SWM candidate sequences of `sessions` with the user index set to 0.

  Args:
    candidates: float32 [S, T, Dc + 1] candidate sequences whose last column
      is the user index (`features.user_index_column`).
    sessions: bool [S], the sessions to play as the unknown user.

  Returns:
    The sequences of `sessions` only, [sessions.sum(), T, Dc + 1], a copy.
  """
  out = candidates[sessions].copy()
  out[:, :, -1] = 0.0
  return out


def train_swm(inputs: LogInputs, cwm: TrainedModel, root_dir: str, seed: int,
              fit_args: dict, learning_rate: float, batch_size: int,
              split_seed: int, freeze_cwm: bool,
              residual_on_validation: bool,
              architecture: dict,
              row_weights: np.ndarray | None = None,
              stage_as_unknown_users: bool = False) -> TrainedModel:
  """The SWM's second stage: its sequence layers, from the trained CWM.

  `row_weights` (float [rows] or None) weight each logged row's cell of
  the session sequences, as `train_cwm`'s rows. With
  `stage_as_unknown_users` (and a user embedding), the stage's sessions are
  played as the unknown user (see `user_models.training`).
  """
  stage_as_unknown_users = (stage_as_unknown_users and
                            inputs.user_index is not None)
  skipped = skipped_labels(inputs, cwm.held_rows)
  stage = {f"cwm_stage_{k}": v for k, v in skip_metrics_lib.skip_metrics(
      skipped, 1.0 - cwm.probs[:, _LISTEN].astype(np.float64)).items()}
  stage["cwm_stage_epochs"] = cwm.epochs
  stage["swm_stage_as_unknown_users"] = stage_as_unknown_users
  arrays = model_inputs(inputs, keras_models.SWM_NAME)
  tf.keras.utils.set_random_seed(seed)
  model = keras_models.build_swm(inputs.spec, inputs.user_vocab,
                                 **architecture)
  keras_models.copy_cwm_weights(cwm.model, model, freeze=freeze_cwm)
  seq = (arrays["steps"], arrays["candidates"])
  levels, weights = arrays["levels"], arrays["weights"]
  padding = weights > 0  # Real rows; a row weight may be 0.
  if row_weights is not None:
    bounds = inputs.data.bounds
    position = np.arange(len(bounds.session_index)) - bounds.offsets[
        bounds.session_index]
    weights = weights.copy()
    weights[bounds.session_index, position] = row_weights
  # Keras averages the loss over every [session, t] cell, padding
  # included; weights of mean 1 make it the mean over real rows, as for
  # the CWM, so the embedding's L2 term weighs the same in both.
  scale = lambda w: w / w.mean()  # noqa: E731
  stage_fit, stage_valid = swm_stage_sessions(
      inputs, split_seed, residual_on_validation, stage_as_unknown_users)

  def candidates(sessions: np.ndarray) -> np.ndarray:
    if stage_as_unknown_users:
      return as_unknown_users(seq[1], sessions)
    return seq[1][sessions]

  train = dict(x=(seq[0][stage_fit], candidates(stage_fit)),
               y=levels[stage_fit], sample_weight=scale(weights[stage_fit]))
  valid = ((seq[0][stage_valid], candidates(stage_valid)),
           levels[stage_valid], scale(weights[stage_valid]))
  history = fit_keras_model(
      model, train, valid, batch_size, learning_rate, weighted=True,
      keep_start=True, backup_dir=os.path.join(root_dir, "fit_backup", "swm"),
      **fit_args)
  if cwm.trained_index is not None:  # In case stage 2 moved them.
    keras_models.share_unknown_user(model, cwm.trained_index)
  held = inputs.data.held_out
  out = model.predict((seq[0][held], seq[1][held]), batch_size=512,
                      verbose=0)
  return dataclasses.replace(
      cwm, model=model, probs=out[padding[held]], history=history,
      epochs=cwm.epochs + history.epoch[-1] + 1, stage_metrics=stage)
