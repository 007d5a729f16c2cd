"""Training a CWM or SWM from session logs, and scoring it on held-out data.

`train_user_model` prepares the logs with `user_models.log_inputs` (held-out
sessions split by a seeded hash of the session, each logged track's
`SessionContext` rebuilt and featurised with the serving code), trains with
early stopping on a validation share of the training sessions, and writes
into root_dir:

* `user_model.keras`: the model (`user_models.KerasUserModel` serves it);
* `leaving_model.json`: when listeners leave, fitted on the training
  sessions (`playlist_sim.data.leaving`; the learned simulator's session end,
  summarised under `leaving_model` in metrics.json). It is fitted first:
  on logs selected on length (sessions of >= 10 tracks, as the public
  dataset's), the training rows are weighted by 1 / P(the session reaches
  the minimum | the row), built from it (`playlist_sim.data.selection`,
  docs/selection.md; `selection_weighting`, recorded under
  `selection_weighting` in metrics.json with weighted held-out figures);
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
Held out by user, the second stage instead plays every fit session as the
unknown user and stops early on the validation sessions played the same way
(`swm_stage_as_unknown_users`): the held-out listeners, and any listener
the logs never saw, are served as the unknown user, known only by their
profile, and that is where a session's responses so far say something the
model does not already know. On a known listener's session the embedding
has already learned most of it, and a residual fitted as the unknown user
hurts there (docs/results.md), so a split by session keeps the stacking
step above.
The two stages are `user_models.fitting.train_cwm` and `train_swm`.
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
from playlist_sim.data import propensity as propensity_lib
from playlist_sim.data import selection as selection_lib
from playlist_sim.data.checks import check_count
from playlist_sim.data.leaving import LEAVING_MODEL_FILE
from playlist_sim.data.leaving import LeavingModelError
from playlist_sim.data.leaving import fit_leaving_model
from user_models import features
from user_models import keras_models
from user_models import metrics as skip_metrics_lib
from user_models import skip_prediction
from user_models.base import AbstractUserModel
from user_models.fitting import NonFiniteLossError, TrainedModel
from user_models.fitting import skipped_labels, train_cwm
from user_models.fitting import train_cwm_ensemble, train_swm
from user_models.keras_user_model import save_user_model
# The data preparation lives in user_models.log_inputs; re-exported here.
from user_models.log_inputs import (  # noqa: F401
    LogInputs, find_log_files, hashed_share, leave_session_out_profiles,
    model_inputs, prepare_inputs, true_probabilities)
from user_models.log_inputs import training_row_weights

__all__ = ["LogInputs", "NonFiniteLossError", "find_log_files",
           "leave_session_out_profiles", "model_inputs", "prepare_inputs",
           "reliability_title", "train_user_model",
           "true_probabilities"]

_LISTEN = features.NUM_LEVELS - 1
MODEL_FILE = "user_model.keras"
PLOT_FILE = "reliability.png"
#: Most CWMs `train_user_model.ensemble_size` averages (each costs one
#: training and one more model call per served step).
MAX_ENSEMBLE_SIZE = 16


def _save_leaving_model(data, held_rows: np.ndarray, root_dir: str):
  """Fits the leaving model on the training sessions, saved beside the user
  model (the learned simulator's session end, `playlist_sim.data.leaving`);
  returns (the model or None, its metrics.json summary)."""
  try:
    model = fit_leaving_model(data.table.filter(pa.array(~held_rows)))
  except LeavingModelError as e:
    # Logs too small or uniform to show leaving: the simulator then ends
    # sessions by its rules only, and says so in metrics.json.
    return None, {"path": None, "skipped": str(e)}
  path = model.save(os.path.join(root_dir, LEAVING_MODEL_FILE))
  return model, {"path": path, **model.to_json()}


def _teacher_record(teacher: TrainedModel, inputs: LogInputs) -> dict:
  """The distilled ensemble's own held-out figures, beside its members'."""
  skipped = skipped_labels(inputs, teacher.held_rows)
  p_skip = 1.0 - teacher.probs[:, -1].astype(np.float64)
  return dict(teacher_auc=skip_metrics_lib.auc(skipped, p_skip),
              teacher_epochs=teacher.epochs, **teacher.stage_metrics)


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
    history_units: int = 0,
    history_in_mlp: bool = True,
    ensemble_size: int = 1,
    distill: bool = False,
    state_units: int = 64,
    step_units: int = 64,
    interaction_dim: int = 16,
    residual_units: int = 64,
    state_dropout: float = 0.0,
    sequence_l2: float = 0.0,
    freeze_cwm: bool = True,
    residual_on_validation: bool = True,
    swm_stage_as_unknown_users: bool | None = None,
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
    # Selection of the logs (`playlist_sim.data.selection`).
    selection_weighting: bool | None = None,
    selection_cap_quantile: float | None = (
        selection_lib.DEFAULT_CAP_QUANTILE),
    selection_prior_strength: float = selection_lib.DEFAULT_PRIOR_STRENGTH,
    # Propensity weighting (`playlist_sim.data.propensity`).
    propensity_window: int = 0,
    propensity_cap_quantile: float | None = (
        propensity_lib.DEFAULT_CAP_QUANTILE),
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
    history_units: hidden units of the additive history term of the CWM
      (and the SWM's CWM part): a learned cost per recently played track,
      summed over the history window (`user_models.history_term`,
      docs/model_bias.md); 0 builds none.
    history_in_mlp: with the history term, the MLP reads the history
      slots too; False: the history acts only through the term.
    ensemble_size: N > 1 trains N CWMs from seeds `seed` .. `seed` + N - 1
      on the same rows and saves one model averaging their probabilities
      (`fitting.train_cwm_ensemble`, docs/model_bias.md); CWM only. It
      costs N times the training and the serving of one CWM.
    distill: with ensemble_size N > 1, one more CWM (seed `seed` + N) is
      fitted to the ensemble's probabilities on the same rows and saved
      instead of it: N + 1 times the training, one CWM's serving. The
      ensemble's held-out figures go under `distillation` in metrics.json.
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
    swm_stage_as_unknown_users: with a user embedding, the SWM's second
      stage fits every fit session played as the unknown user (see the
      module docstring). None: on iff `split_by` is "user".
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
    selection_weighting: weight each training row by 1 / P(its session
      reaches the logs' minimum length | the row), from the leaving model
      and the session's skip rates (docs/selection.md). None: on iff the
      logs are selected on length (`min_session_length` > 1 in their
      metrics.json, or no session shorter than 10). Held-out metrics are
      then reported unweighted (the top-level keys) and weighted (under
      `selection_weighting.held_out`).
    selection_cap_quantile: the weights are capped at this quantile of the
      weighted training rows (None: no cap).
    selection_prior_strength: pseudo-rows of the log's skip rates added to
      each session's own (`selection.session_skip_rates`).
    propensity_window: K > 0 weights each training row towards a policy
      that sees only the model's inputs, over its own choice and the K - 1
      before it (`playlist_sim.data.propensity`, docs/model_bias.md); needs
      the logs' `propensity` column. 0: off. Recorded under
      `propensity_weighting` in metrics.json; the weighted held-out figures
      stay those of the selection weights.
    propensity_cap_quantile: the propensity weights are capped at this
      quantile of the training rows (None: no cap).
    true_user_model: the world's ground truth for the bayes_* figures
      (gin: `@ParametricListener()`), or None.

  Returns:
    The metrics written to root_dir/metrics.json.

  Raises:
    ValueError: on an unknown model type or fraction out of range.
    playlist_sim.data.selection.SelectionError: if `selection_weighting`
      is True but the logs are unselected or show no leaving.
    playlist_sim.data.propensity.PropensityError: if `propensity_window`
      is set but the logs carry no valid propensities.
    playlist_sim.data.logs.LogFormatError: for malformed logs.
  """
  if model_type not in (keras_models.CWM_NAME, keras_models.SWM_NAME):
    raise ValueError(f"model_type must be 'cwm' or 'swm', got {model_type!r}")
  check_count("ensemble_size", ensemble_size, maximum=MAX_ENSEMBLE_SIZE,
              owner="train_user_model")
  if ensemble_size > 1 and model_type != keras_models.CWM_NAME:
    raise ValueError(
        f"train_user_model: ensemble_size {ensemble_size} needs model_type "
        f"'cwm' (an SWM is not ensembled); set ensemble_size = 1 or train a "
        "CWM")
  if distill and ensemble_size < 2:
    raise ValueError(
        "train_user_model: distill = True needs ensemble_size >= 2 (a "
        f"teacher to distill), got ensemble_size {ensemble_size}; set "
        "ensemble_size = 3 or distill = False")
  root_dir = ensure_writable_dir(root_dir)
  started = time.time()
  inputs = prepare_inputs(logs_dir, split_by, holdout_fraction,
                          validation_fraction, split_seed, user_embedding,
                          unknown_user_fraction)
  # A live bar on a terminal, one line per epoch in logs and subprocesses.
  verbose = (1 if sys.stdout.isatty() else 2) if progress else 0
  fit_args = dict(max_epochs=max_epochs, patience=patience,
                  lr_patience=lr_patience, verbose=verbose)
  # The leaving model comes first: the selection weights are built on it.
  held_rows = inputs.data.held_out[inputs.data.bounds.session_index]
  leaving_model, leaving_summary = _save_leaving_model(inputs.data, held_rows,
                                                       root_dir)
  selection, selection_summary = selection_lib.training_selection_weights(
      inputs.data.table, find_log_files(logs_dir)[0], leaving_model,
      selection_weighting, selection_cap_quantile,
      inputs.fit[inputs.data.bounds.session_index],
      leaving_summary.get("skipped"), selection_prior_strength)
  selection_rows = None if selection is None else selection.row_weights
  row_weights, propensity_summary = training_row_weights(
      inputs, logs_dir, selection_rows, propensity_window,
      propensity_cap_quantile, split_seed)
  fit_started = time.time()
  architecture = dict(embedding_dim=embedding_dim, user_l2=user_l2,
                      tower_units=tower_units, hidden_units=hidden_units,
                      history_units=history_units,
                      history_in_mlp=history_in_mlp)
  if ensemble_size > 1:
    cwm = train_cwm_ensemble(inputs, root_dir, seed, ensemble_size, fit_args,
                             learning_rate, batch_size, row_weights,
                             **architecture)
  else:
    cwm = train_cwm(inputs, root_dir, seed, fit_args, learning_rate,
                    batch_size, row_weights, **architecture)
  distillation = None
  if distill:
    distillation = _teacher_record(cwm, inputs)
    cwm = train_cwm(inputs, root_dir, seed + ensemble_size, fit_args,
                    learning_rate, batch_size, row_weights,
                    backup_name="student", teacher=cwm.model, **architecture)
    distillation["student_epochs"] = cwm.epochs
  trained = cwm
  if model_type == keras_models.SWM_NAME:
    trained = train_swm(
        inputs, cwm, root_dir, seed, fit_args, swm_learning_rate,
        swm_batch_size, split_seed, freeze_cwm, residual_on_validation,
        dict(state_units=state_units, embedding_dim=embedding_dim,
             user_l2=user_l2, tower_units=tower_units,
             hidden_units=hidden_units, history_units=history_units,
             history_in_mlp=history_in_mlp, step_units=step_units,
             interaction_dim=interaction_dim, residual_units=residual_units,
             state_dropout=state_dropout, sequence_l2=sequence_l2),
        row_weights, split_by == "user" if swm_stage_as_unknown_users is None
        else swm_stage_as_unknown_users)
  train_seconds = time.time() - fit_started
  model_path = save_user_model(trained.model,
                               os.path.join(root_dir, MODEL_FILE))
  metrics = _held_out_metrics(trained, inputs, model_type, root_dir,
                              split_by, true_user_model, selection_rows,
                              selection_summary)
  metrics.update(_run_record(inputs, trained, model_type, model_path,
                             logs_dir, split_by, holdout_fraction,
                             split_seed),
                 untrained_users=cwm.untrained_users,
                 train_seconds=train_seconds,
                 wall_seconds=time.time() - started)
  metrics["leaving_model"] = leaving_summary
  metrics["selection_weighting"] = selection_summary
  metrics["propensity_weighting"] = propensity_summary
  metrics["ensemble_size"] = ensemble_size
  if distillation is not None:
    metrics["distillation"] = distillation
  if user_embedding and not inputs.user_vocab:
    metrics["user_embedding_skipped"] = "the logs have no user_id column"
  write_run_files(root_dir, metrics)
  shutil.rmtree(os.path.join(root_dir, "fit_backup"), ignore_errors=True)
  return metrics


def _run_record(inputs: LogInputs, trained: TrainedModel, model_type: str,
                model_path: str, logs_dir: str, split_by: str,
                holdout_fraction: float, split_seed: int) -> dict:
  """What the run was: files, session counts, split and training length."""
  return dict(
      model_type=model_type, model_path=model_path,
      logs_dir=os.path.abspath(logs_dir),
      num_fit_sessions=int(inputs.fit.sum()),
      num_validation_sessions=int(inputs.validation.sum()),
      num_held_out_sessions=int(inputs.data.held_out.sum()),
      num_held_out_rows=int(trained.held_rows.sum()),
      user_vocab=inputs.user_vocab, split_by=split_by, epochs=trained.epochs,
      # Read back by the served model (`training_split`), so an agent run
      # can tell whether its evaluation episodes were held out from it.
      split={"split_by": split_by, "holdout_fraction": holdout_fraction,
             "split_seed": split_seed},
      best_val_loss=float(min(trained.history.history["val_loss"])),
      ece_bins=skip_metrics_lib.DEFAULT_NUM_BINS)


def _held_out_metrics(trained: TrainedModel, inputs: LogInputs, model_type: str,
                      root_dir: str, split_by: str,
                      true_user_model: AbstractUserModel | None,
                      row_weights: np.ndarray | None,
                      selection_summary: dict) -> dict:
  """Skip figures on the held-out rows (and the world's, when known), the
  reliability plot and the Skip Prediction Challenge's scores; with
  selection weights, the same figures weighted go under
  `selection_summary["held_out"]`."""
  skipped = skipped_labels(inputs, trained.held_rows)
  # Held-out rows, in log order (sessions are contiguous and in order).
  p_skip = 1.0 - trained.probs[:, _LISTEN].astype(np.float64)
  metrics = skip_metrics_lib.skip_metrics(skipped, p_skip)
  metrics.update(trained.stage_metrics)
  curves = {model_type.upper(): (skipped, p_skip)}
  true_probs, reason = true_probabilities(true_user_model, inputs.data,
                                          inputs.context)
  if true_probs is not None:
    p_true = 1.0 - true_probs[trained.held_rows, _LISTEN]
    metrics.update(skip_metrics_lib.skip_metrics(skipped, p_true, "bayes_"))
    curves["world (Bayes)"] = (skipped, p_true)
  else:
    metrics["bayes_unavailable"] = reason
  if row_weights is not None:
    held_w = row_weights[trained.held_rows]
    held = skip_metrics_lib.skip_metrics(skipped, p_skip, weights=held_w)
    if true_probs is not None:
      held.update(skip_metrics_lib.skip_metrics(skipped, p_true, "bayes_",
                                                weights=held_w))
    selection_summary["held_out"] = held
  metrics["reliability_plot"] = skip_metrics_lib.reliability_plot(
      os.path.join(root_dir, PLOT_FILE), curves,
      title=reliability_title(split_by))
  # The field's own score: skip_2 of each second half from the first half.
  metrics["skip_prediction"] = skip_prediction.evaluate_skip_prediction(
      trained.model, inputs, inputs.data.held_out)
  return metrics
