"""The Sequential Skip Prediction Challenge's task, for our user models.

The Spotify Sequential Skip Prediction Challenge (WSDM Cup 2019, on the
Music Streaming Sessions Dataset; Brost et al., "The Music Streaming
Sessions Dataset", WWW 2019) gives every field of the first half of a
session, `floor(length / 2)` tracks, and asks for `skip_2` of each track of
the second half (whose track ids and features are known, outcomes not).
Its score is, per session with T predictions,

    AA = (1 / T) * sum_i A(i) * L(i),

where A(i) is the accuracy over the first i predictions and L(i) is 1 when
prediction i is right; `mean_average_accuracy` averages AA over sessions,
and `first_prediction_accuracy` is the share of sessions whose first
second-half prediction is right. (The challenge's evaluator adds s/c to the
sum only on a correct prediction, s the correct predictions so far, c the
position: the same formula; see https://www.aicrowd.com/challenges/
spotify-sequential-skip-prediction-challenge.)

A learned model predicts P(skip_2) = P(level <= skip_2) for every
second-half track, one position at a time, from what the first half shows:

* the outcomes of the first half enter its features as they were logged;
* an earlier second-half outcome is never read: in its place the model's
  own predicted level probabilities. The SWM reads them as the level
  weights of its step input (`features.swm_step_features` takes
  probabilities); the CWM's features depend on outcomes only through the
  skip counts, which become expected counts (skips so far: the sum of
  P(skip); consecutive skips: the expected length of the trailing run of
  skips, assuming independent outcomes), and its history slots read only
  which tracks were played, which is known.

Two baselines come with every score: "repeat the last first-half skip"
(each second-half track gets the `skip_2` of the last first-half track, the
challenge's own baseline) and "majority class" (every track gets the more
common `skip_2` value of the training sessions' rows).
"""

import dataclasses
import os

import gin
import numpy as np

from playlist_sim.common.io_utils import ensure_writable_dir
from playlist_sim.data.log_stats import LISTEN_LEVEL, SKIP_2
from user_models import features
from user_models import keras_models
from user_models.base import SessionContext
from user_models.keras_user_model import load_user_model, training_split
from user_models.log_inputs import LogInputs, prepare_inputs

__all__ = ["ChallengeSplit", "average_accuracies", "challenge_split",
           "evaluate_skip_prediction", "first_prediction_accuracy",
           "mean_average_accuracy", "predict_second_half",
           "skip_prediction_benchmark"]

#: P(skip_2) at or above this predicts a skip.
THRESHOLD = 0.5


@dataclasses.dataclass(frozen=True)
class ChallengeSplit:
  """Sessions cut in two halves as the challenge did.

  Attributes:
    sessions: int [S'] the sessions scored (indices into the logs).
    first_half: int [S'] tracks given, floor(length / 2).
    rows: int [N] the logged rows of every second-half track, session by
      session, in play order.
    offsets: int [S' + 1]; session j's second half is rows[offsets[j]:
      offsets[j + 1]].
  """
  sessions: np.ndarray
  first_half: np.ndarray
  rows: np.ndarray
  offsets: np.ndarray


def challenge_split(offsets: np.ndarray, sessions: np.ndarray
                    ) -> ChallengeSplit:
  """The first and second halves of the given sessions.

  Args:
    offsets: int [S + 1] the logs' session offsets.
    sessions: bool [S] mask or int indices of the sessions to score;
      sessions of one track (no first half) are left out.

  Returns:
    The `ChallengeSplit`.

  Raises:
    ValueError: if no session has two tracks or more.
  """
  offsets = np.asarray(offsets, np.int64)
  sessions = np.asarray(sessions)
  if sessions.dtype == bool:
    sessions = np.flatnonzero(sessions)
  lengths = np.diff(offsets)[sessions]
  sessions = sessions[lengths >= 2]
  if not len(sessions):
    raise ValueError("no session to score has two tracks or more; the skip "
                     "prediction task needs a first and a second half")
  lengths = np.diff(offsets)[sessions]
  first = lengths // 2
  second = lengths - first
  out_offsets = np.concatenate([[0], np.cumsum(second)])
  owner = np.repeat(np.arange(len(sessions)), second)
  rows = (offsets[sessions] + first)[owner] + (
      np.arange(out_offsets[-1]) - out_offsets[owner])
  return ChallengeSplit(sessions, first, rows, out_offsets)


def average_accuracies(correct: np.ndarray, offsets: np.ndarray
                       ) -> np.ndarray:
  """The challenge's average accuracy AA of each session.

  Args:
    correct: bool [N] whether each prediction is right, session by session
      in order.
    offsets: int [S + 1]; session s holds predictions offsets[s]:offsets[s+1]
      (at least one each).

  Returns:
    float64 [S], AA = (1/T) sum_i A(i) L(i) per session.

  Raises:
    ValueError: if the offsets do not cover `correct` or a session is empty.
  """
  correct = np.asarray(correct, bool).astype(np.float64)
  offsets = np.asarray(offsets, np.int64)
  lengths = np.diff(offsets)
  if offsets[0] != 0 or offsets[-1] != len(correct) or (lengths < 1).any():
    raise ValueError(f"offsets must run from 0 to {len(correct)} (the number "
                     "of predictions) with at least one prediction per "
                     "session")
  session = np.repeat(np.arange(len(lengths)), lengths)
  position = np.arange(len(correct)) - offsets[session] + 1
  total = np.cumsum(correct)
  before_session = np.concatenate([[0.0], total])[offsets[:-1]]
  right_so_far = total - before_session[session]
  terms = right_so_far / position * correct
  return np.bincount(session, terms, len(lengths)) / lengths


def mean_average_accuracy(predicted: np.ndarray, truth: np.ndarray,
                          offsets: np.ndarray) -> float:
  """Mean over sessions of `average_accuracies` of bool predictions."""
  correct = np.asarray(predicted, bool) == np.asarray(truth, bool)
  return float(average_accuracies(correct, offsets).mean())


def first_prediction_accuracy(predicted: np.ndarray, truth: np.ndarray,
                              offsets: np.ndarray) -> float:
  """Share of sessions whose first prediction is right."""
  first = np.asarray(offsets, np.int64)[:-1]
  return float(np.mean(np.asarray(predicted, bool)[first] ==
                       np.asarray(truth, bool)[first]))


def _expected_counts(p_skip: np.ndarray, rows: np.ndarray,
                     positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Expected skips so far and trailing skips before each row.

  With the earlier rows' skip probabilities (0 or 1 where known), the
  expected number of skips is their sum, and the expected run of skips just
  before the row is sum_j prod_{the last j rows} P(skip).
  """
  num = np.zeros(len(rows))
  run = np.zeros(len(rows))
  survive = np.ones(len(rows))
  for back in range(1, int(positions.max(initial=0)) + 1):
    live = positions >= back
    p = np.where(live, p_skip[np.maximum(rows - back, 0)], 0.0)
    num += p
    survive *= p
    run += survive
  return num, run


def _contexts(inputs: LogInputs, rows: np.ndarray,
              weights: np.ndarray) -> SessionContext:
  """The logged context of `rows`, its outcomes replaced by `weights`.

  Every field that comes from outcomes is rebuilt from the level weights
  (one-hot where known, predicted probabilities elsewhere); the rest (user,
  position, which tracks were played) is the logged context's.
  """
  context = inputs.context
  position = np.asarray(context.position)[rows].astype(np.int64)
  p_skip = 1.0 - weights[:, LISTEN_LEVEL]
  num_skips, consecutive = _expected_counts(p_skip, rows, position)
  window = context.history_ids.shape[1]
  source = rows[:, None] - np.arange(window, 0, -1)[None, :]
  valid = np.asarray(context.history_responses)[rows] >= 0
  levels = np.argmax(weights[np.maximum(source, 0)], axis=2)
  return SessionContext(
      rows=np.arange(len(rows), dtype=np.int64),
      user_ids=np.asarray(context.user_ids)[rows],
      user_features=np.asarray(context.user_features)[rows],
      position=position.astype(np.float32),
      history_ids=np.asarray(context.history_ids)[rows],
      history_responses=np.where(valid, levels, -1).astype(np.int32),
      consecutive_skips=consecutive.astype(np.float32),
      num_skips=num_skips.astype(np.float32))


def _user_column(inputs: LogInputs, rows: np.ndarray, model) -> list:
  """The user-index column the model reads, if it has an embedding."""
  vocab = keras_models.user_vocab_size(model)
  if not vocab:
    return []
  return [features.user_index_column(inputs.data.row_users[rows], vocab)]


def _swm_probs(model, inputs: LogInputs, split: ChallengeSplit,
               weights: np.ndarray, rows: np.ndarray, live: np.ndarray,
               t: np.ndarray, context: SessionContext) -> np.ndarray:
  """SWM level probabilities of `rows` (at position t of their sessions)."""
  tables, data = inputs.tables, inputs.data
  starts = data.bounds.offsets[split.sessions[live]]
  width = int(t.max()) + 1
  steps = np.zeros((len(rows), width, tables.spec(1).swm_step_dim),
                   np.float32)
  steps[:, 0] = features.swm_start_features(1, tables)[0]
  for p in range(1, width):  # Step p holds the track played at p - 1.
    has = t >= p
    prev = starts[has] + p - 1
    steps[has, p] = features.swm_step_features(
        data.track_rows[prev], weights[prev], tables)
  cand = features.swm_candidate_features(
      context, data.track_rows[rows][:, None], tables)[:, 0]
  cand = np.concatenate([cand] + _user_column(inputs, rows, model), axis=1)
  candidates = np.zeros((len(rows), width, cand.shape[1]), np.float32)
  candidates[np.arange(len(rows)), t] = cand
  out = model.predict((steps, candidates), batch_size=512, verbose=0)
  return np.asarray(out[np.arange(len(rows)), t], np.float64)


def predict_second_half(model, inputs: LogInputs,
                        split: ChallengeSplit) -> np.ndarray:
  """Level probabilities of every second-half track, never reading its half.

  Position by position through the second halves: the model sees the first
  half's logged outcomes and, for the earlier second-half tracks, its own
  predicted probabilities (module docstring).

  Args:
    model: a CWM or SWM Keras model (`keras_models.build_cwm/build_swm`).
    inputs: the prepared logs the model reads (`log_inputs.prepare_inputs`).
    split: the sessions and their halves.

  Returns:
    float64 [N, NUM_LEVELS] for `split.rows`, in order.
  """
  kind = keras_models.model_kind(model)
  data = inputs.data
  weights = features.one_hot_levels(data.levels).astype(np.float64)
  second = np.diff(split.offsets)
  # Nothing of a second half may reach the model: blank those rows first.
  weights[split.rows] = 0.0
  weights[split.rows, LISTEN_LEVEL] = 1.0
  probs = np.zeros((len(split.rows), features.NUM_LEVELS))
  for k in range(int(second.max())):
    live = np.flatnonzero(second > k)
    out_index = split.offsets[live] + k
    rows = split.rows[out_index]
    context = _contexts(inputs, rows, weights)
    if kind == keras_models.CWM_NAME:
      x = features.cwm_features(context, data.track_rows[rows][:, None],
                                inputs.tables)[:, 0]
      x = np.concatenate([x] + _user_column(inputs, rows, model), axis=1)
      p = np.asarray(model.predict(x, batch_size=8192, verbose=0),
                     np.float64)
    else:
      p = _swm_probs(model, inputs, split, weights, rows, live,
                     split.first_half[live] + k, context)
    probs[out_index] = p
    weights[rows] = p
  return probs


def evaluate_skip_prediction(model, inputs: LogInputs,
                             sessions: np.ndarray) -> dict:
  """The challenge's scores of a model and the two baselines.

  Args:
    model: a CWM or SWM Keras model.
    inputs: the prepared logs.
    sessions: bool [S] the sessions to score (the model's held-out ones);
      the majority class is taken from the others.

  Returns:
    {"mean_average_accuracy", "first_prediction_accuracy",
    "repeat_last_skip": {...}, "majority_class": {..., "value"},
    "num_sessions", "num_predictions", "threshold", "target"}.
  """
  data = inputs.data
  split = challenge_split(data.bounds.offsets, sessions)
  skip_2 = data.levels <= SKIP_2
  truth = skip_2[split.rows]
  second = np.diff(split.offsets)

  def scores(predicted):
    return {"mean_average_accuracy": mean_average_accuracy(
                predicted, truth, split.offsets),
            "first_prediction_accuracy": first_prediction_accuracy(
                predicted, truth, split.offsets)}

  probs = predict_second_half(model, inputs, split)
  p_skip_2 = probs[:, :SKIP_2 + 1].sum(axis=1)
  last_first = data.bounds.offsets[split.sessions] + split.first_half - 1
  repeat = np.repeat(skip_2[last_first], second)
  scored = np.zeros(data.bounds.num_sessions, bool)
  scored[np.asarray(sessions)] = True
  train_rows = ~scored[data.bounds.session_index]
  majority = bool(skip_2[train_rows].mean() > 0.5) if train_rows.any() else (
      False)
  result = scores(p_skip_2 >= THRESHOLD)
  result.update(
      repeat_last_skip=scores(repeat),
      majority_class={**scores(np.full(len(truth), majority)),
                      "value": majority},
      accuracy=float(np.mean((p_skip_2 >= THRESHOLD) == truth)),
      skip_2_rate=float(truth.mean()),
      num_sessions=int(len(split.sessions)),
      num_predictions=int(len(truth)), threshold=THRESHOLD,
      target="skip_2 = P(level <= skip_2) of each second-half track")
  return result


@gin.configurable(denylist=["root_dir", "logs_dir", "model_path"])
def skip_prediction_benchmark(root_dir: str, logs_dir: str, model_path: str,
                              split_by: str | None = None,
                              holdout_fraction: float | None = None,
                              split_seed: int | None = None) -> dict:
  """Scores a trained CWM or SWM on the challenge's task, on held-out logs.

  The sessions scored are the model's own held-out sessions: the split its
  training recorded (`metrics.json` beside the model), unless given here.

  Args:
    root_dir: output folder (the caller writes the results there).
    logs_dir: the logs folder (see `log_inputs.find_log_files`).
    model_path: a `.keras` model from `scripts/train_user_model.py`.
    split_by: "session" or "user"; None: the model's.
    holdout_fraction: share held out; None: the model's.
    split_seed: seed of the split; None: the model's.

  Returns:
    `evaluate_skip_prediction`'s results, plus the model path, the logs
    folder and the split used.

  Raises:
    UserModelLoadError: if the model cannot be loaded.
    ValueError: if no split is given and the model recorded none.
  """
  ensure_writable_dir(root_dir)
  model = load_user_model(model_path)
  recorded = training_split(model_path) or {}
  given = {"split_by": split_by, "holdout_fraction": holdout_fraction,
           "split_seed": split_seed}
  split = {k: recorded.get(k) if v is None else v for k, v in given.items()}
  missing = [k for k, v in split.items() if v is None]
  if missing:
    raise ValueError(
        f"the model {model_path!r} has no metrics.json recording its "
        f"training split, so its held-out sessions are unknown: bind "
        f"{', '.join(f'skip_prediction_benchmark.{k}' for k in missing)} "
        "(as its training used them) with --gin_bindings")
  inputs = prepare_inputs(logs_dir, split["split_by"],
                          split["holdout_fraction"], split_seed=split[
                              "split_seed"],
                          user_embedding=bool(
                              keras_models.user_vocab_size(model)))
  result = evaluate_skip_prediction(model, inputs, inputs.data.held_out)
  result.update(model_path=os.path.abspath(model_path),
                model_type=keras_models.model_kind(model),
                logs_dir=os.path.abspath(logs_dir), split=split)
  return result
