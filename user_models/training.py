"""Training a CWM or SWM from session logs, and scoring it on held-out data.

`train_user_model` prepares the logs with `user_models.log_inputs` (held-out
sessions split by a seeded hash of the session, each logged track's
`SessionContext` rebuilt and featurised with the serving code), trains with
early stopping on a validation share of the training sessions, and writes
into root_dir:

* `user_model.keras`: the model (`user_models.KerasUserModel` serves it);
* `leaving_model.json`: when listeners leave, fitted on the training
  sessions (`playlist_sim.data.leaving`; the learned simulator's session end,
  summarised under `leaving_model` in metrics.json);
* `reliability.png`: the reliability diagram of P(skip) on held-out rows
  (its title names the split: held-out sessions or held-out users);
* `metrics.json` (+ the gin configs): `auc`, `log_loss`, `ece` of
  P(skip) = 1 - P(not_skipped) on the held-out sessions (`user_models.metrics`
  defines them; ECE over 15 equal-width bins) and, when the logs come from
  the listener world, the same figures of the world's true probabilities on
  the same rows (`bayes_auc`, `bayes_log_loss`, `bayes_ece`), the ceiling a
  model of these logs can reach. Without them, `bayes_unavailable` says why.
  Under `skip_prediction`, the Skip Prediction Challenge's scores on the
  held-out sessions (`user_models.skip_prediction`): mean average accuracy
  and first-prediction accuracy of skip_2 in each second half, predicted
  from the first half, beside the repeat-last-skip and majority baselines.

The user context is the listener's taste profile from the logs
(`LoggedSessions.session_profile`), exactly what `LogEpisodeSampler` shows
the environment, except that a training session's profile leaves out its
own listens (`leave_session_out_profiles`), as a held-out session's does.
With `user_embedding` (the default when the logs have a
`user_id` column) the models also learn a taste vector per user id; a share
of the training sessions (`unknown_user_fraction`) is trained as the
"unknown user" so that ids unseen in training get a sensible fallback;
after training, every embedding row that training never read (the held-out
users' of a split by user) gets that fallback vector
(`keras_models.share_unknown_user`), so held-out metrics and serving treat
an unseen listener as the unknown user, known only by their profile.

An SWM trains in two stages (`keras_models` describes the model): its CWM
part first, exactly as a CWM; then, from that CWM (the residual starts at
zero), its sequence layers. By default the second stage is a stacking step:
the CWM part is frozen and the sequence layers learn on half of the
validation sessions, which the CWM part never fit (on the fit sessions the
user embedding has already seen every response, so the residual would learn
nothing that carries to new sessions), and stop early on the other half.
"""

import os
import shutil
import sys
import time

import gin
import numpy as np
import pyarrow as pa

from playlist_sim.common.io_utils import ensure_writable_dir
from playlist_sim.common.runs import write_run_files
from playlist_sim.data.leaving import LEAVING_MODEL_FILE
from playlist_sim.data.leaving import LeavingModelError
from playlist_sim.data.leaving import fit_leaving_model
from user_models import features
from user_models import keras_models
from user_models import metrics as skip_metrics_lib
from user_models import skip_prediction
from user_models.base import AbstractUserModel
from user_models.keras_user_model import save_user_model
# The data preparation lives in user_models.log_inputs; re-exported here.
from user_models.log_inputs import (  # noqa: F401
    LogInputs, find_log_files, hashed_share, leave_session_out_profiles,
    model_inputs, prepare_inputs, true_probabilities)

import tensorflow as tf  # pylint: disable=g-import-not-at-top,g-bad-import-order

__all__ = ["LogInputs", "NonFiniteLossError", "find_log_files",
           "leave_session_out_profiles", "model_inputs", "prepare_inputs",
           "reliability_title", "train_user_model",
           "true_probabilities"]

_LISTEN = features.NUM_LEVELS - 1
MODEL_FILE = "user_model.keras"
PLOT_FILE = "reliability.png"


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


def _fit(model: tf.keras.Model, train: dict, valid: tuple, batch_size: int,
         learning_rate: float, max_epochs: int, patience: int,
         lr_patience: int, verbose: int, weighted: bool, backup_dir: str,
         keep_start: bool = False):
  """Compiles and fits with early stopping; returns the Keras history.

  The best weights (lowest validation loss) are kept; with `keep_start`,
  the starting weights compete too: a model that only gets worse on the
  validation sessions is returned as it started. A killed fit resumes from
  its last finished epoch in `backup_dir` (removed on success).
  """
  model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate),
                loss="sparse_categorical_crossentropy",
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


def _save_leaving_model(data, held_rows: np.ndarray, root_dir: str) -> dict:
  """Fits the leaving model on the training sessions, saved beside the user
  model (the learned simulator's session end, `playlist_sim.data.leaving`)."""
  try:
    model = fit_leaving_model(data.table.filter(pa.array(~held_rows)))
  except LeavingModelError as e:
    # Logs too small or uniform to show leaving: the simulator then ends
    # sessions by its rules only, and says so in metrics.json.
    return {"path": None, "skipped": str(e)}
  path = model.save(os.path.join(root_dir, LEAVING_MODEL_FILE))
  return {"path": path, **model.to_json()}


def reliability_title(split_by: str) -> str:
  """The reliability plot's title, naming what was held out."""
  held_out = "held-out users" if split_by == "user" else "held-out sessions"
  return f"Reliability of P(skip), {held_out}"


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
    hidden_units: tuple[int, ...] = (256, 256, 128),
    state_units: int = 64,
    step_units: int = 64,
    interaction_dim: int = 16,
    residual_units: int = 64,
    state_dropout: float = 0.0,
    sequence_l2: float = 0.0,
    freeze_cwm: bool = True,
    residual_on_validation: bool = True,
    # Optimisation.
    learning_rate: float = 2e-3,
    swm_learning_rate: float = 1e-3,
    swm_batch_size: int = 64,
    batch_size: int = 512,
    max_epochs: int = 40,
    patience: int = 3,
    lr_patience: int = 1,
    seed: int = 0,
    progress: bool = True,
    # Evaluation.
    true_user_model: AbstractUserModel | None = None) -> dict:
  """Trains a CWM or SWM on logs and writes model, plot and metrics.

  An SWM is trained in two stages: first its CWM part, exactly as a CWM
  (same code, data and seed), then, starting from that CWM (the residual
  starts at zero), the sequence layers on whole sessions: by default on
  half of the validation sessions with the CWM part frozen
  (`residual_on_validation`, `freeze_cwm`; see the module docstring).
  Early stopping keeps the best weights on the stage's validation
  sessions, the CWM's own included, so the SWM never does worse than its
  CWM there. Its metrics also hold the CWM stage's held-out figures
  (`cwm_stage_*`).

  Args:
    root_dir: output folder.
    logs_dir: folder of sessions.* and tracks.* (see `find_log_files`).
    model_type: "cwm" (dense, hand-engineered session context) or "swm"
      (the CWM plus a GRU over the session).
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
    hidden_units: units of the MLP (the CWM, and the SWM's CWM part).
    state_units: GRU units of the SWM.
    step_units: units of the SWM's dense step encoder.
    interaction_dim: width of the SWM's state x track product.
    residual_units: hidden units of the SWM's residual.
    state_dropout: dropout rate on the SWM state read by the residual
      (training only).
    sequence_l2: L2 weight on the kernels of the SWM's sequence layers.
    freeze_cwm: keep the SWM's CWM part fixed in the second stage.
    residual_on_validation: train the second stage on half of the
      validation sessions (early stopping on the other half) instead of on
      the fit sessions (early stopping on the validation sessions).
    learning_rate: Adam's initial rate (CWM, and the SWM's CWM stage), cut
      by 3 when validation stalls.
    swm_learning_rate: Adam's initial rate of the SWM's sequence stage.
    swm_batch_size: sessions per batch in the SWM's sequence stage.
    batch_size: rows per batch (CWM and the SWM's CWM stage).
    max_epochs: epochs at most (per stage).
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
    playlist_sim.data.logs.LogFormatError: for malformed logs.
  """
  if model_type not in (keras_models.CWM_NAME, keras_models.SWM_NAME):
    raise ValueError(f"model_type must be 'cwm' or 'swm', got {model_type!r}")
  root_dir = ensure_writable_dir(root_dir)
  started = time.time()
  inputs = prepare_inputs(logs_dir, split_by, holdout_fraction,
                          validation_fraction, split_seed, user_embedding,
                          unknown_user_fraction)
  data, fit, validation = inputs.data, inputs.fit, inputs.validation
  session = data.bounds.session_index
  held = data.held_out
  held_rows = held[session]
  # A live bar on a terminal, one line per epoch in logs and subprocesses.
  verbose = (1 if sys.stdout.isatty() else 2) if progress else 0
  fit_args = dict(max_epochs=max_epochs, patience=patience,
                  lr_patience=lr_patience, verbose=verbose)

  # The CWM (for an SWM: its first stage).
  tf.keras.utils.set_random_seed(seed)
  x = model_inputs(inputs, keras_models.CWM_NAME)["x"]
  cwm = keras_models.build_cwm(inputs.spec, inputs.user_vocab, embedding_dim,
                               user_l2, tower_units, hidden_units)
  fit_started = time.time()
  history = _fit(cwm, dict(x=x[fit[session]], y=data.levels[fit[session]]),
                 (x[validation[session]], data.levels[validation[session]]),
                 batch_size, learning_rate, weighted=False,
                 backup_dir=os.path.join(root_dir, "fit_backup", "cwm"),
                 **fit_args)
  # Users training never saw (held out by user) fall back to the unknown
  # user, in the metrics below and wherever the model serves.
  trained_index = (None if inputs.user_index is None else
                   inputs.user_index[fit[session]])
  untrained_users = (0 if trained_index is None else
                     keras_models.share_unknown_user(cwm, trained_index))
  cwm_probs = cwm.predict(x[held_rows], batch_size=8192, verbose=0)
  skipped = (data.levels[held_rows] != _LISTEN).astype(np.float64)
  # history.epoch counts from 0 across a resume.
  model, probs, epochs = cwm, cwm_probs, history.epoch[-1] + 1
  stage = {}

  if model_type == keras_models.SWM_NAME:
    stage = {f"cwm_stage_{k}": v for k, v in skip_metrics_lib.skip_metrics(
        skipped, 1.0 - cwm_probs[:, _LISTEN].astype(np.float64)).items()}
    stage["cwm_stage_epochs"] = epochs
    arrays = model_inputs(inputs, model_type)
    tf.keras.utils.set_random_seed(seed)
    model = keras_models.build_swm(inputs.spec, inputs.user_vocab,
                                   state_units, embedding_dim, user_l2,
                                   tower_units, hidden_units, step_units,
                                   interaction_dim, residual_units,
                                   state_dropout, sequence_l2)
    keras_models.copy_cwm_weights(cwm, model, freeze=freeze_cwm)
    seq = (arrays["steps"], arrays["candidates"])
    levels, weights = arrays["levels"], arrays["weights"]
    # Keras averages the loss over every [session, t] cell, padding
    # included; weights of mean 1 make it the mean over real rows, as for
    # the CWM, so the embedding's L2 term weighs the same in both.
    scale = lambda w: w / w.mean()  # noqa: E731
    stage_fit, stage_valid = fit, validation
    if residual_on_validation:
      # Stacking: the sequence layers learn on sessions the CWM part never
      # fit, as held-out sessions are, and stop on the rest.
      keys = np.arange(data.bounds.num_sessions)
      half = hashed_share(keys, 0.5, 2 * split_seed + 3)
      if (validation & half).any() and (validation & ~half).any():
        stage_fit, stage_valid = validation & half, validation & ~half
    train = dict(x=(seq[0][stage_fit], seq[1][stage_fit]),
                 y=levels[stage_fit], sample_weight=scale(weights[stage_fit]))
    valid = ((seq[0][stage_valid], seq[1][stage_valid]), levels[stage_valid],
             scale(weights[stage_valid]))
    history = _fit(model, train, valid, swm_batch_size, swm_learning_rate,
                   weighted=True, keep_start=True,
                   backup_dir=os.path.join(root_dir, "fit_backup", "swm"),
                   **fit_args)
    epochs += history.epoch[-1] + 1
    if trained_index is not None:  # In case stage 2 moved them (no freeze).
      keras_models.share_unknown_user(model, trained_index)
    out = model.predict((seq[0][held], seq[1][held]), batch_size=512,
                        verbose=0)
    probs = out[weights[held] > 0]
  train_seconds = time.time() - fit_started
  model_path = save_user_model(model, os.path.join(root_dir, MODEL_FILE))

  # Held-out rows, in log order (sessions are contiguous and in order).
  p_skip = 1.0 - probs[:, _LISTEN].astype(np.float64)
  metrics = skip_metrics_lib.skip_metrics(skipped, p_skip)
  metrics.update(stage)
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
      os.path.join(root_dir, PLOT_FILE), curves,
      title=reliability_title(split_by))
  # The field's own score: skip_2 of each second half from the first half.
  metrics["skip_prediction"] = skip_prediction.evaluate_skip_prediction(
      model, inputs, held)
  metrics.update(
      model_type=model_type, model_path=model_path, reliability_plot=plot_path,
      logs_dir=os.path.abspath(logs_dir),
      num_fit_sessions=int(fit.sum()),
      num_validation_sessions=int(validation.sum()),
      num_held_out_sessions=int(held.sum()),
      num_held_out_rows=int(held_rows.sum()),
      user_vocab=inputs.user_vocab, untrained_users=untrained_users,
      split_by=split_by, epochs=epochs,
      # Read back by the served model (`training_split`), so an agent run
      # can tell whether its evaluation episodes were held out from it.
      split={"split_by": split_by, "holdout_fraction": holdout_fraction,
             "split_seed": split_seed},
      best_val_loss=float(min(history.history["val_loss"])),
      train_seconds=train_seconds, wall_seconds=time.time() - started,
      ece_bins=skip_metrics_lib.DEFAULT_NUM_BINS)
  metrics["leaving_model"] = _save_leaving_model(data, held_rows, root_dir)
  if user_embedding and not inputs.user_vocab:
    metrics["user_embedding_skipped"] = "the logs have no user_id column"
  write_run_files(root_dir, metrics)
  shutil.rmtree(os.path.join(root_dir, "fit_backup"), ignore_errors=True)
  return metrics
