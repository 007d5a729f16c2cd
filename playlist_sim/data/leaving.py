"""A leaving model estimated from session logs: when a listener leaves.

A learned simulator that predicts only each track's response ends sessions
by a rule (`consecutive_skip_limit`, `max_playlist_length`); real listeners
also leave on their own, and a simulator that never lets them overstates
every policy's return. `LeavingModel` is the missing piece: after each
track, the probability that the listener leaves now,

    P(leave | run, position) = sigmoid(b0 + b1 * run + b2 * position)

where `run` is the current run of consecutive skips (0 after a listen; a
skip is any level but `not_skipped`) and `position` the number of tracks
heard so far, the two counters a simulator keeps (`SessionContext`).

Estimation (`fit_leaving_model`) is by maximum likelihood on the risk sets
the logs can show. Logs kept like the public dataset's are

* left-truncated: only sessions of at least `min_session_length` (10)
  tracks are kept, so nobody in the log can leave after tracks 1..9; those
  rows are left out (keeping them would say that nobody ever leaves early);
* right-censored: sessions are cut at `max_session_length` (20), so the
  last row of a session at the cut did not end it; those rows are left out
  too (they are neither a leave nor known to go on).

Every row at a position from the selection's minimum to one below the cut
is a Bernoulli trial: it ends its session (a leave) or the session goes on.
Rows whose skip run has reached the consecutive-skip limit end by that rule
(`playlist_sim.data.log_stats.consecutive_skip_limit_censored`) and are left out.

Identifying assumption. The logs show positions 10..19 only. The hazard at
positions 1..9 comes from the model's form: the log-odds are linear in the
position, with the same skip-run effect at every position, so the slope seen
in 10..19 carries down to 1. `position_effect=False` makes the stronger
assumption that the hazard does not depend on position at all. The default
world's own hazard (`ParametricListener.leave_probability`) has the linear
form, so the default estimate is consistent there (a test compares it with
the truth); on real logs the assumption is untestable from the logs alone.

The module needs NumPy and pyarrow only (no TensorFlow).
"""

import dataclasses
import json
import math
import os
from typing import Any

import gin
import numpy as np
import pyarrow as pa

from playlist_sim.data import log_stats
from playlist_sim.data import logs
from playlist_sim.common.io_utils import write_json
from playlist_sim.common.numeric import LOGIT_CLIP, sigmoid

__all__ = ["FEATURES", "LEAVING_MODEL_FILE", "LeavingModel",
           "LeavingModelError", "fit_leaving_model", "leaving_model_beside",
           "leaving_model_file",
           "leaving_model_from_logs", "leaving_risk_sets",
           "load_leaving_model"]

#: File name of a fitted model beside the user model it goes with.
LEAVING_MODEL_FILE = "leaving_model.json"
#: The model's inputs, in coefficient order.
FEATURES = ("intercept", "consecutive_skips", "position")
_FORMAT = "playlist_sim.leaving_model"
_VERSION = 1


class LeavingModelError(ValueError):
  """A leaving model that cannot be fitted, read or used."""


@dataclasses.dataclass(frozen=True)
class LeavingModel:
  """P(the listener leaves after a track), logistic in (skip run, position).

  Attributes:
    coefficients: float64 [3], over `FEATURES`.
    standard_errors: float64 [3] from the inverse Fisher information (0 for
      a coefficient held fixed).
    min_position: the first position the logs could show a leave at (the
      selection's minimum length).
    max_position: the last position fitted (one below the logs' cut).
    consecutive_skip_limit: rows whose skip run had reached it were left out
      (they end by the limit, not by leaving).
    num_risk_rows: logged rows in the fit.
    num_leaves: of those, rows that ended their session.
  """
  coefficients: tuple[float, float, float]
  standard_errors: tuple[float, float, float] = (0.0, 0.0, 0.0)
  min_position: int = 1
  max_position: int = 1
  consecutive_skip_limit: int = 1
  num_risk_rows: int = 0
  num_leaves: int = 0

  def __post_init__(self):
    for name in ("coefficients", "standard_errors"):
      values = getattr(self, name)
      if (len(values) != len(FEATURES) or
          not all(isinstance(v, (int, float)) and math.isfinite(v)
                  for v in values)):
        raise LeavingModelError(
            f"LeavingModel.{name} must be {len(FEATURES)} finite numbers "
            f"(over {FEATURES}), got {values!r}")
    for name in ("min_position", "max_position", "consecutive_skip_limit",
                 "num_risk_rows", "num_leaves"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LeavingModelError(f"LeavingModel.{name} must be an integer "
                                f">= 0, got {value!r}")

  def hazard(self, consecutive_skips: np.ndarray,
             position: np.ndarray) -> np.ndarray:
    """float64 P(leave) after a track, for arrays of the two counters.

    Args:
      consecutive_skips: the current run of skips (0 after a listen).
      position: tracks heard so far, this one included.

    Returns:
      float64 array of the broadcast shape.
    """
    b0, b1, b2 = self.coefficients
    logit = (b0 + b1 * np.asarray(consecutive_skips, np.float64) +
             b2 * np.asarray(position, np.float64))
    return sigmoid(logit, clip=LOGIT_CLIP)

  def leave_probability(self, context) -> np.ndarray:
    """P(each listener leaves now), read after a step like the listener's.

    Args:
      context: a `SessionContext` after the step (its `position` and
        `consecutive_skips` already count the step's tracks).

    Returns:
      float64 [R].
    """
    return self.hazard(context.consecutive_skips, context.position)

  def to_json(self) -> dict[str, Any]:
    """The JSON-ready form `load_leaving_model` reads back."""
    return {"format": _FORMAT, "version": _VERSION, "features": list(FEATURES),
            **{f.name: (list(getattr(self, f.name))
                        if isinstance(getattr(self, f.name), tuple)
                        else getattr(self, f.name))
               for f in dataclasses.fields(self)}}

  def save(self, path: str) -> str:
    """Writes the model as JSON (atomically); returns the path."""
    write_json(path, self.to_json())
    return path


def leaving_risk_sets(table: pa.Table, min_session_length: int | None = None,
                      max_session_length: int | None = None,
                      consecutive_skip_limit: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The logged rows at risk of leaving, with their counters and outcome.

  Args:
    table: a session log grouped by session (as `read_sessions` returns it).
    min_session_length: the selection's minimum length (None: the shortest
      session in the log); rows before it are left out (truncation).
    max_session_length: the log's cut (None: the longest session); rows at
      it are left out (censoring).
    consecutive_skip_limit: rows whose skip run reached it are left out
      (None: `log_stats.consecutive_skip_limit_censored`).

  Returns:
    (consecutive_skips, position, left): int64, int64 and bool arrays over
    the rows at risk.
  """
  bounds = log_stats.session_boundaries(table)
  _, run = log_stats._skip_runs(table, bounds)  # pylint: disable=protected-access
  position = (np.arange(table.num_rows) -
              bounds.offsets[bounds.session_index] + 1)
  low = int(bounds.lengths.min() if min_session_length is None
            else min_session_length)
  cut = int(bounds.lengths.max() if max_session_length is None
            else max_session_length)
  if consecutive_skip_limit is None:
    consecutive_skip_limit = _estimated_skip_limit(table, cut)
  last = np.zeros(table.num_rows, bool)
  last[bounds.offsets[1:] - 1] = True
  at_risk = ((position >= low) & (position < cut) &
             (run < consecutive_skip_limit))
  return (run[at_risk].astype(np.int64), position[at_risk].astype(np.int64),
          last[at_risk])


def _estimated_skip_limit(table: pa.Table, cut: int) -> int:
  """The log's consecutive-skip limit (censoring-aware), or one more than
  the cut when the log has no uncensored skip to judge it by."""
  try:
    return log_stats.consecutive_skip_limit_censored(
        table, max_session_length=cut)
  except ValueError:
    return cut + 1


def _logistic_mle(x: np.ndarray, trials: np.ndarray, events: np.ndarray,
                  max_iterations: int = 100) -> tuple[np.ndarray, np.ndarray]:
  """Binomial logistic regression by Newton's method on grouped counts."""
  beta = np.zeros(x.shape[1])
  rate = events.sum() / trials.sum()
  beta[0] = math.log(rate / (1.0 - rate))
  for _ in range(max_iterations):
    p = sigmoid(x @ beta, clip=LOGIT_CLIP)
    gradient = x.T @ (events - trials * p)
    information = (x * (trials * p * (1.0 - p))[:, None]).T @ x
    step = np.linalg.solve(information, gradient)
    beta += step
    if np.abs(step).max() < 1e-10:
      break
  p = sigmoid(x @ beta, clip=LOGIT_CLIP)
  information = (x * (trials * p * (1.0 - p))[:, None]).T @ x
  return beta, np.sqrt(np.diag(np.linalg.inv(information)))


def fit_leaving_model(table: pa.Table, min_session_length: int | None = None,
                      max_session_length: int | None = None,
                      consecutive_skip_limit: int | None = None,
                      position_effect: bool = True) -> LeavingModel:
  """The maximum-likelihood `LeavingModel` of a log (see the module doc).

  Args:
    table: a session log grouped by session (as `read_sessions` returns it).
    min_session_length: the selection's minimum length (None: the shortest
      session in the log).
    max_session_length: the log's cut (None: the longest session).
    consecutive_skip_limit: the simulator's limit; rows at it are left out
      (None: estimated from the log, censoring-aware).
    position_effect: False holds the position coefficient at 0 (the hazard
      depends on the skip run only).

  Returns:
    The fitted model.

  Raises:
    LeavingModelError: if the log has no row at risk or no row that goes
      on, or too few distinct counters to identify the model. A log with no
      leave gives a model whose hazard is 0 (logit -30).
  """
  if consecutive_skip_limit is None:
    lengths = log_stats.session_boundaries(table).lengths
    consecutive_skip_limit = _estimated_skip_limit(
        table, int(lengths.max() if max_session_length is None
                   else max_session_length))
  limit = int(consecutive_skip_limit)
  run, position, left = leaving_risk_sets(
      table, min_session_length, max_session_length, limit)
  if run.size == 0 or left.all():
    raise LeavingModelError(
        f"fit_leaving_model: the log has {run.size} rows at risk of leaving "
        f"(positions from the selection's minimum to one below the cut), "
        f"{int(left.sum())} of them leaves; it needs rows that go on. Check "
        "min_session_length / max_session_length against the log's "
        "selection, or use a log with sessions of different lengths")
  if not left.any():
    # The maximum-likelihood hazard is 0 (listeners who leave only by the
    # rules, as in configs/world_simple.gin): the clipped logit's floor.
    return LeavingModel(
        coefficients=(-LOGIT_CLIP, 0.0, 0.0),
        min_position=int(position.min()), max_position=int(position.max()),
        consecutive_skip_limit=int(limit), num_risk_rows=int(run.size))
  # Grouped by (run, position): a few dozen cells, whatever the log's size.
  cells, index = np.unique(np.stack([run, position], 1), axis=0,
                           return_inverse=True)
  index = index.reshape(-1)
  trials = np.bincount(index).astype(np.float64)
  events = np.bincount(index, weights=left.astype(np.float64))
  columns = [np.ones(len(cells)), cells[:, 0].astype(np.float64)]
  if position_effect:
    columns.append(cells[:, 1].astype(np.float64))
  x = np.stack(columns, 1)
  if np.linalg.matrix_rank(x) < x.shape[1]:
    raise LeavingModelError(
        "fit_leaving_model: the rows at risk do not vary enough in skip run"
        + (" and position" if position_effect else "") + " to fit the "
        "model; use more sessions or position_effect=False")
  beta, se = _logistic_mle(x, trials, events)
  if not position_effect:
    beta, se = np.append(beta, 0.0), np.append(se, 0.0)
  return LeavingModel(
      coefficients=tuple(float(b) for b in beta),
      standard_errors=tuple(float(s) for s in se),
      min_position=int(position.min()), max_position=int(position.max()),
      consecutive_skip_limit=int(limit), num_risk_rows=int(run.size),
      num_leaves=int(left.sum()))


def load_leaving_model(path: str) -> LeavingModel:
  """Reads a model written by `LeavingModel.save`, checking every field.

  Raises:
    LeavingModelError: for a missing or unreadable file, another format or
      version, other features, or a field of the wrong type.
  """
  if not os.path.isfile(path):
    raise LeavingModelError(
        f"leaving model {path!r} does not exist; train_user_model writes "
        f"{LEAVING_MODEL_FILE} beside the user model, or fit one with "
        "playlist_sim.data.leaving.fit_leaving_model")
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise LeavingModelError(f"leaving model {path!r} is not readable JSON: "
                            f"{e}") from e
  if not isinstance(data, dict) or data.get("format") != _FORMAT or data.get(
      "version") != _VERSION:
    raise LeavingModelError(
        f"leaving model {path!r} is not a {_FORMAT} file of version "
        f"{_VERSION}; write it with LeavingModel.save")
  if data.get("features") != list(FEATURES):
    raise LeavingModelError(f"leaving model {path!r} has features "
                            f"{data.get('features')!r}, expected "
                            f"{list(FEATURES)}")
  fields = {f.name for f in dataclasses.fields(LeavingModel)}
  unknown = sorted(set(data) - fields - {"format", "version", "features"})
  missing = sorted(fields - set(data))
  if unknown or missing:
    raise LeavingModelError(f"leaving model {path!r}: unknown fields "
                            f"{unknown}, missing fields {missing}")
  values = {k: data[k] for k in fields}
  for name in ("coefficients", "standard_errors"):
    if not isinstance(values[name], list):
      raise LeavingModelError(f"leaving model {path!r}: {name} must be a "
                              f"list, got {values[name]!r}")
    values[name] = tuple(values[name])
  try:
    return LeavingModel(**values)
  except LeavingModelError as e:
    raise LeavingModelError(f"leaving model {path!r}: {e}") from e


@gin.configurable
def leaving_model_beside(user_model_path: str = gin.REQUIRED,
                         required: bool = False) -> LeavingModel | None:
  """The leaving model saved beside a user model file, if there is one.

  `train_user_model` writes `LEAVING_MODEL_FILE` beside the `.keras` model
  and `quantize_user_model` copies it beside the `.tflite` files, so the
  learned simulator's folder holds its whole session end. In gin:
  `train/EnvironmentBuilder.leaving_model = @leaving_model_beside()`.

  Args:
    user_model_path: a `.keras` or `.tflite` user model file.
    required: raise if the file is missing (else return None: the
      simulator's listeners then leave only by its rules).

  Returns:
    The checked model, or None.

  Raises:
    LeavingModelError: for a missing file when `required`, or a file that
      is not a valid leaving model.
  """
  path = os.path.join(os.path.dirname(os.path.abspath(user_model_path)),
                      LEAVING_MODEL_FILE)
  if not required and not os.path.isfile(path):
    return None
  return load_leaving_model(path)


@gin.configurable
def leaving_model_file(path: str = gin.REQUIRED) -> LeavingModel:
  """`load_leaving_model` for gin: `PlaylistEnvironment.leaving_model =
  @leaving_model_file()` with `leaving_model_file.path = '...'`."""
  return load_leaving_model(path)


@gin.configurable
def leaving_model_from_logs(sessions_path: str = gin.REQUIRED,
                            min_session_length: int | None = None,
                            max_session_length: int | None = None,
                            position_effect: bool = True) -> LeavingModel:
  """`fit_leaving_model` on a session log file, for gin.

  In gin: `PlaylistEnvironment.leaving_model = @leaving_model_from_logs()`.

  Args:
    sessions_path: a session log.
    min_session_length: the selection's minimum (None: the log's shortest).
    max_session_length: the log's cut (None: the log's longest).
    position_effect: see `fit_leaving_model`.

  Returns:
    The fitted model.
  """
  return fit_leaving_model(logs.read_sessions(sessions_path),
                           min_session_length, max_session_length,
                           position_effect=position_effect)
