"""Session logs prepared for training the learned user models.

`prepare_inputs` reads logs with `simulator.log_episodes.LoggedSessions`
(held-out sessions split by a seeded hash of the session), rebuilds each
logged track's `SessionContext` (`user_models.features.logged_contexts`) with
leave-session-out taste profiles for training sessions, and splits the
training sessions into fit and validation sessions; `model_inputs` featurises
them with the serving code for a CWM or an SWM. `true_probabilities` scores
the same rows with the world's ground truth, when the logs come from it.
"""

import dataclasses

import numpy as np

from playlist_sim.data import propensity as propensity_lib
from playlist_sim.data.sessions import LoggedSessions
# The logs-folder layout lives with the other file code; re-exported here.
from playlist_sim.data.log_files import LOG_FILE_PATTERNS, find_log_files
from user_models import features
from user_models import keras_models
from user_models.base import AbstractUserModel, PUBLIC_RESPONSE_LEVELS
from user_models.base import SessionContext

__all__ = ["LOG_FILE_PATTERNS", "LogInputs", "find_log_files", "hashed_share",
           "leave_session_out_profiles", "model_inputs", "prepare_inputs",
           "propensity_row_weights", "training_row_weights",
           "true_probabilities"]


def true_probabilities(true_user_model: AbstractUserModel | None,
                       data: LoggedSessions,
                       context) -> tuple[np.ndarray | None, str | None]:
  """The world's level probabilities of every logged row, if comparable.

  Args:
    true_user_model: the ground truth (e.g. `ParametricListener`) or None.
    data: the logs.
    context: `logged_contexts` of every row.

  Returns:
    (probs [R, L], None), or (None, reason) when the logs cannot be scored
    by this model: no model, other levels, or a world whose catalog or
    users differ from the logs'.
  """
  if true_user_model is None:
    return None, "no true_user_model was given"
  if tuple(true_user_model.response_levels) != PUBLIC_RESPONSE_LEVELS:
    return None, (f"the true user model's levels "
                  f"{tuple(true_user_model.response_levels)} are not the "
                  "five public ones")
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


def leave_session_out_profiles(data: LoggedSessions) -> np.ndarray:
  """Taste profiles that leave each session's own listens out.

  Split by session, `LoggedSessions.session_profile` averages the acoustic
  vectors of a user's listens over all their training sessions, so a
  training session's profile contains its own outcomes while a held-out
  session's does not. Training on the leaky profile teaches a model to trust
  it more than it deserves on held-out sessions and in the environment, so
  every training session gets the average over the user's *other* training
  sessions (zeros if none, as for a user with no training sessions); a
  held-out session's profile is unchanged. Split by user, the logs' profiles
  already leave the session out.

  Args:
    data: the logs.

  Returns:
    float32 [S, 8] profiles.
  """
  return data.taste_profiles(leave_session_out=True)


def hashed_share(keys: np.ndarray, fraction: float, salt: int) -> np.ndarray:
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
  """
  data: LoggedSessions
  tables: features.FeatureTables
  spec: features.FeatureSpec
  context: SessionContext
  fit: np.ndarray
  validation: np.ndarray
  user_vocab: int
  user_index: np.ndarray | None


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
  context = features.logged_contexts(
      data.track_rows, data.levels, data.bounds.offsets, data.row_users,
      leave_session_out_profiles(data)[session])
  keys = np.arange(data.bounds.num_sessions)
  validation = ~data.held_out & hashed_share(keys, validation_fraction,
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
    unknown = fit & hashed_share(keys, unknown_user_fraction,
                                  2 * split_seed + 2)
    index = features.user_index_column(data.row_users, user_vocab)
    index[unknown[session]] = 0.0
  return LogInputs(data, tables, tables.spec(data.session_profile.shape[1]),
                   context, fit, validation, user_vocab, index)


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


def propensity_row_weights(inputs: LogInputs, where: str, window: int,
                           cap_quantile: float | None,
                           normalise_on: np.ndarray, seed: int = 0
                           ) -> tuple[np.ndarray, dict]:
  """Propensity weights of every logged row (`playlist_sim.data.propensity`).

  The observable policy is fitted on the fit sessions, from what the models
  read: the session's taste profile (as in `inputs.context`) and the
  track's popularity rank and catalog features.

  Args:
    inputs: prepared logs with a `propensity` column.
    where: the logs' folder, for messages.
    window: choices each weight covers (see `propensity_weights`).
    cap_quantile: quantile the weights are capped at (None: no cap).
    normalise_on: bool [R], the rows trained on.
    seed: seed of the fit's choice of sessions.

  Returns:
    (weights [R] with mean 1 over `normalise_on`, metrics.json summary).

  Raises:
    playlist_sim.data.propensity.PropensityError: if the logs have no
      valid `propensity` column, or the profiles are not acoustic vectors.
  """
  data, tables = inputs.data, inputs.tables
  table = data.table
  propensity = propensity_lib.logged_propensities(
      table.column("propensity").to_numpy()
      if "propensity" in table.column_names else None, where)
  offsets = data.bounds.offsets
  profiles = np.asarray(inputs.context.user_features, np.float64)[offsets[:-1]]
  if profiles.shape[1] != tables.unit_acoustic.shape[1]:
    raise propensity_lib.PropensityError(
        f"propensity weighting reads the user features as a taste profile "
        f"of {tables.unit_acoustic.shape[1]} acoustic values; these have "
        f"{profiles.shape[1]}")
  profiles /= np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True),
                         1e-6)
  track_table = np.column_stack([data.catalog.popularity,
                                 tables.track_features]).astype(np.float64)
  unit_acoustic = tables.unit_acoustic.astype(np.float64)
  session = data.bounds.session_index
  policy, fit_summary = propensity_lib.fit_observable_policy(
      profiles, session, data.track_rows, unit_acoustic, track_table,
      inputs.fit, seed=seed)
  log_observable = policy.log_probabilities(
      profiles, session, data.track_rows, unit_acoustic, track_table)
  weights, summary = propensity_lib.propensity_weights(
      log_observable, propensity,
      table.column("session_position").to_numpy().astype(np.int64),
      offsets, session, window, normalise_on, cap_quantile)
  summary["observable_policy"] = fit_summary
  return weights, summary


def training_row_weights(inputs: LogInputs, logs_dir: str,
                         selection_rows: np.ndarray | None, window: int,
                         cap_quantile: float | None, seed: int = 0
                         ) -> tuple[np.ndarray | None, dict]:
  """The weights a model trains with: the selection weights (or None) times,
  when `window` > 0, the propensity weights, scaled to mean 1 on the fit
  rows; and the metrics.json summary of the propensity part."""
  if not window:
    return selection_rows, {"enabled": False,
                            "reason": "train_user_model.propensity_window "
                                      "is 0"}
  fit_rows = inputs.fit[inputs.data.bounds.session_index]
  weights, summary = propensity_row_weights(inputs, logs_dir, window,
                                            cap_quantile, fit_rows, seed)
  if selection_rows is not None:
    weights = weights * selection_rows
    weights /= weights[fit_rows].mean()
  return weights, {"enabled": True, **summary}
