"""Correcting for the logs' selection: inverse probability weights per row.

Logs kept like the public dataset's hold only the sessions that reached
`min_session_length` (m = 10) tracks. A session ends before m when the
listener leaves (the leaving model's hazard h(run, position),
`playlist_sim.data.leaving`) or when the run of skips reaches the
consecutive-skip limit N. Heavy skippers end early more often, so the kept
sessions were skipped less at positions 1..m-1 than sessions in general,
and a user model fitted on them learns the survivors' skip rate.

A user model learns P(y_t | h_t), the response at row t given the session
so far. Write S for "the session reaches m". At a row t < m, the kept logs
show P(y_t | h_t, S) = P(y_t | h_t) P(S | h_t, y_t) / P(S | h_t), so each
such row is weighted by 1 / P(S | h_t, y_t): the weighted kept rows then
stand for the rows of every session that reached t. Rows at t >= m need no
weight (every session that reached them is kept).

P(S | h_t, y_t) depends on the state after row t, its skip run r and its
position t, and on how the rest of the first m - 1 tracks go.
`survival_probabilities` computes it by a small dynamic programme: after a
track at position k with run r, the session ends if r = N, else the
listener leaves with h(r, k); the next track is skipped with probability
q_skip after a skip, q_listen after a listen (`session_skip_rates`: the
session's own transition rates, shrunk towards the log's). Every row a kept
log can hold has P(S | h_t, y_t) > 0, so the same weights also correct for
the skip limit, except at one kind of row: at t < m with a run of N - 1
before it, a skip would have ended the session, so the log shows only the
listens there. No weight can restore the missing skips; those rows get
weight 0 and the model learns them from positions >= m.

Assumptions: the leaving model is right at positions 1..m-1 (it is
extrapolated there, see docs/leaving.md); the next responses follow the
session's two skip rates (the world's are not constant, which makes the
weights approximate); nothing the log does not show drives both leaving and
the responses. Stabilisation: weights are scaled to mean 1 over the
training rows, capped at a quantile and scaled again. The rules were chosen
on a development world seed, see docs/selection.md.

The selection's minimum and `SelectionError` live in
`playlist_sim.data.log_selection` and are re-exported here.

The module needs NumPy and pyarrow only (no TensorFlow).
"""

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa

from playlist_sim.data import log_stats
from playlist_sim.data.leaving import LeavingModel
from playlist_sim.data.log_selection import (
  DETECTED_MIN_SESSION_LENGTH,
  SelectionError,
  log_selection_minimum,
)

__all__ = ["DEFAULT_CAP_QUANTILE", "DEFAULT_PRIOR_STRENGTH",
           "DETECTED_MIN_SESSION_LENGTH", "SelectionError",
           "SelectionWeights", "capped_mean_one", "log_selection_minimum",
           "row_counters",
           "selection_weights", "session_skip_rates",
           "survival_probabilities", "training_selection_weights",
           "weighted_skip_rate"]

#: Row weights are capped at this quantile (chosen on world seed 101).
DEFAULT_CAP_QUANTILE = 0.999
#: Pseudo-rows of the log's rates in each session's skip rates (0: the
#: session's own rates; chosen on world seed 101).
DEFAULT_PRIOR_STRENGTH = 0.0


@dataclasses.dataclass(frozen=True)
class SelectionWeights:
  """Per-row inverse probability of selection weights.

  Attributes:
    row_weights: float64 [R], stabilised; 0 on the rows no weight can
      correct (a skip there would have hit the limit before m).
    survival: float64 [R], P(S | the row and its response); 1 at positions
      >= m.
    min_session_length: the selection's minimum m.
    consecutive_skip_limit: the limit N the survival used.
    cap_quantile: the quantile the weights were capped at (None: no cap).
    cap: the cap on the final mean-1 scale (None: no cap).
    num_unobservable: rows given weight 0.
  """
  row_weights: np.ndarray
  survival: np.ndarray
  min_session_length: int
  consecutive_skip_limit: int
  cap_quantile: float | None
  cap: float | None
  num_unobservable: int

  def summary(self, rows: np.ndarray | None = None) -> dict[str, Any]:
    """JSON-ready statistics over `rows` (bool [R]; all rows by default)."""
    on = np.ones(self.row_weights.size, bool) if rows is None else rows
    w = self.row_weights[on]
    early = self.survival[on] < 1.0
    p = self.survival[on][early] if early.any() else np.ones(1)
    used = w[w > 0]
    return {"min_session_length": self.min_session_length,
            "consecutive_skip_limit": self.consecutive_skip_limit,
            "cap_quantile": self.cap_quantile, "cap": self.cap,
            "survival_min": float(p.min()), "survival_mean": float(p.mean()),
            "weight_min": float(used.min()), "weight_max": float(used.max()),
            "weight_mean": float(w.mean()),
            "unobservable_rows": int((w == 0).sum()),
            "effective_sample_share": float(w.sum() ** 2 /
                                            (w.size * np.sum(w ** 2)))}


def row_counters(table: pa.Table) -> dict[str, np.ndarray]:
  """Per row: `skipped`, `position` (from 1), `run` (skips in a row after
  the row) and `run_before` (before it), and per row its `session` index."""
  bounds = log_stats.session_boundaries(table)
  skipped, run = log_stats._skip_runs(table, bounds)  # pylint: disable=protected-access
  position = np.arange(table.num_rows) - bounds.offsets[bounds.session_index]
  run_before = np.zeros(table.num_rows, np.int64)
  run_before[1:] = run[:-1]
  run_before[position == 0] = 0
  return {"skipped": np.asarray(skipped, bool), "position": position + 1,
          "run": np.asarray(run, np.int64), "run_before": run_before,
          "session": bounds.session_index}


def session_skip_rates(table: pa.Table,
                       prior_strength: float = DEFAULT_PRIOR_STRENGTH
                       ) -> np.ndarray:
  """Each session's skip rates after a listen and after a skip.

  Args:
    table: the session log, grouped by session.
    prior_strength: pseudo-rows of the whole log's rate added to each
      session's counts (0: the session's own rates alone).

  Returns:
    float64 [S, 2]: P(skip | last track listened), P(skip | last skipped).
  """
  if not np.isfinite(prior_strength) or prior_strength < 0:
    raise SelectionError(f"prior_strength must be >= 0, got "
                         f"{prior_strength!r}")
  c = row_counters(table)
  num = int(c["session"].max()) + 1
  rates = np.empty((num, 2))
  # The first row has no previous track; it counts as after a listen.
  after_skip = c["run_before"] > 0
  for k, rows in enumerate((~after_skip, after_skip)):
    trials = np.bincount(c["session"][rows], minlength=num).astype(float)
    hits = np.bincount(c["session"][rows], c["skipped"][rows], num)
    overall = hits.sum() / max(trials.sum(), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
      own = (hits + prior_strength * overall) / (trials + prior_strength)
    rates[:, k] = np.where(trials + prior_strength > 0, own, overall)
  return rates


def survival_probabilities(run: np.ndarray, position: np.ndarray,
                           skip_rates: np.ndarray,
                           leaving_model: LeavingModel,
                           min_session_length: int,
                           consecutive_skip_limit: int) -> np.ndarray:
  """P(the session reaches m | the state after a row), per row.

  Args:
    run: int [R] skip run after the row.
    position: int [R] the row's position (from 1).
    skip_rates: float [R, 2] the next tracks' skip probability after a
      listen and after a skip.
    leaving_model: the hazard h(run, position).
    min_session_length: m.
    consecutive_skip_limit: N, the run that ends a session.

  Returns:
    float64 [R]: 1 at positions >= m, 0 where the run has reached N.
  """
  run, position = np.asarray(run, np.int64), np.asarray(position, np.int64)
  rates = np.asarray(skip_rates, np.float64)
  limit, m = int(consecutive_skip_limit), int(min_session_length)
  if limit < 1 or m < 1:
    raise SelectionError(f"consecutive_skip_limit and min_session_length "
                         f"must be >= 1, got {limit} and {m}")
  if rates.shape != (run.size, 2) or not (
      np.all(rates >= 0) and np.all(rates <= 1)):
    raise SelectionError(f"skip_rates must be probabilities of shape "
                         f"({run.size}, 2), got shape {rates.shape}")
  out = np.ones(run.size)
  runs = np.arange(limit + 1)
  stay_ok = runs < limit
  # value[i, r]: P(S | run r after the track at position k), for row i's
  # rates; filled from k = m - 1 down to 1.
  value = np.zeros((run.size, limit + 1))
  for k in range(m - 1, 0, -1):
    stay = stay_ok * (1.0 - leaving_model.hazard(runs, k))
    if k == m - 1:
      go_on = np.ones((run.size, limit + 1))
    else:
      q = np.where(runs > 0, rates[:, 1:2], rates[:, 0:1])
      nxt = np.append(value[:, 1:], np.zeros((run.size, 1)), 1)
      go_on = q * nxt + (1.0 - q) * value[:, :1]
    value = stay * go_on
    here = np.flatnonzero(position == k)
    out[here] = value[here, np.minimum(run[here], limit)]
  return out


def selection_weights(table: pa.Table, leaving_model: LeavingModel,
                      min_session_length: int,
                      consecutive_skip_limit: int | None = None,
                      cap_quantile: float | None = DEFAULT_CAP_QUANTILE,
                      prior_strength: float = DEFAULT_PRIOR_STRENGTH,
                      normalise_on: np.ndarray | None = None
                      ) -> SelectionWeights:
  """Stabilised inverse probability of selection weights per row.

  Args:
    table: the session log, grouped by session.
    leaving_model: the hazard (fitted on the same log's training sessions).
    min_session_length: the selection's minimum m.
    consecutive_skip_limit: N (None: the leaving model's, which is
      `consecutive_skip_limit_from_logs`'s estimate on the same log).
    cap_quantile: cap the mean-1 weights at this quantile of the weighted
      rows (None: no cap).
    prior_strength: see `session_skip_rates`.
    normalise_on: bool [R], the rows that set the mean and the quantile
      (the training rows); None: all.

  Returns:
    The `SelectionWeights` (mean 1 over the rows of `normalise_on`).

  Raises:
    SelectionError: for a cap quantile outside (0, 1], an empty
      `normalise_on`, or a session shorter than `min_session_length`.
  """
  if cap_quantile is not None and not 0.0 < cap_quantile <= 1.0:
    raise SelectionError(f"cap_quantile must be in (0, 1] or None, got "
                         f"{cap_quantile!r}")
  if min_session_length < 1:
    raise SelectionError(f"min_session_length must be >= 1, got "
                         f"{min_session_length}")
  c = row_counters(table)
  shortest = int(np.bincount(c["session"]).min())
  if shortest < min_session_length:
    raise SelectionError(
        f"the log has a session of {shortest} tracks, shorter than "
        f"min_session_length {min_session_length}; pass the minimum the log "
        "was selected on")
  limit = int(leaving_model.consecutive_skip_limit
              if consecutive_skip_limit is None else consecutive_skip_limit)
  on = (np.ones(table.num_rows, bool) if normalise_on is None
        else np.asarray(normalise_on, bool))
  if on.shape != (table.num_rows,) or not on.any():
    raise SelectionError(
        f"normalise_on must be a non-empty bool mask over the "
        f"{table.num_rows} rows, got shape {on.shape} with {int(on.sum())} "
        "set")
  rates = session_skip_rates(table, prior_strength)[c["session"]]
  survival = survival_probabilities(c["run"], c["position"], rates,
                                    leaving_model, min_session_length, limit)
  # A skip here would have ended the session before m: only listens show.
  unobservable = ((c["position"] < min_session_length) &
                  (c["run_before"] >= limit - 1))
  weights = np.where(unobservable | (survival <= 0), 0.0,
                     1.0 / np.maximum(survival, 1e-300))
  weights, cap = capped_mean_one(weights, on, cap_quantile)
  return SelectionWeights(weights, survival, int(min_session_length), limit,
                          cap_quantile, cap, int((weights == 0).sum()))


def capped_mean_one(weights: np.ndarray, on: np.ndarray,
                    cap_quantile: float | None
                    ) -> tuple[np.ndarray, float | None]:
  """Row weights scaled to mean 1 over `on`, capped, and scaled again.

  Args:
    weights: float [R], >= 0.
    on: bool [R], the rows that set the mean and the quantile.
    cap_quantile: cap at this quantile of the positive weights on `on`
      (None: no cap).

  Returns:
    (weights, cap): the cap on the final (mean-1) scale, or None.
  """
  weights = weights / weights[on].mean()
  cap = None
  if cap_quantile is not None:
    cap = float(np.quantile(weights[on & (weights > 0)], cap_quantile))
    weights = np.minimum(weights, cap)
    mean = weights[on].mean()
    weights /= mean
    cap /= mean  # On the final (mean-1) scale, as the weights.
  return weights, cap


def weighted_skip_rate(table: pa.Table, row_weights: np.ndarray | None = None,
                       max_position: int = 20,
                       by_run: bool = False) -> np.ndarray:
  """Skip rate (any level but a listen) by position, optionally by run.

  Args:
    table: the session log, grouped by session.
    row_weights: float [R] (None: every row 1).
    max_position: the last position reported.
    by_run: also split by the skip run before the row (up to 9).

  Returns:
    float64 [max_position] (by_run: [max_position, 10]); NaN where no
    weighted row sits.
  """
  c = row_counters(table)
  w = (np.ones(table.num_rows) if row_weights is None
       else np.asarray(row_weights, np.float64))
  runs = 10 if by_run else 1
  cell = (c["position"] - 1) * runs + (np.minimum(c["run_before"], runs - 1)
                                       if by_run else 0)
  shown = c["position"] <= max_position
  size = max_position * runs
  total = np.bincount(cell[shown], w[shown], size)
  hits = np.bincount(cell[shown], (w * c["skipped"])[shown], size)
  with np.errstate(invalid="ignore", divide="ignore"):
    rate = np.where(total > 0, hits / np.where(total > 0, total, 1), np.nan)
  return rate.reshape(max_position, runs) if by_run else rate


def training_selection_weights(
    table: pa.Table, sessions_path: str | None,
    leaving_model: LeavingModel | None, enabled: bool | None,
    cap_quantile: float | None, normalise_on: np.ndarray,
    leaving_skipped: str | None = None,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH
    ) -> tuple[SelectionWeights | None, dict[str, Any]]:
  """The weights a user model trains with, and their metrics.json summary.

  Args:
    table: the session log, grouped by session.
    sessions_path: its file (for the logs' metadata), or None.
    leaving_model: the leaving model fitted on the training sessions, or
      None if it could not be fitted.
    enabled: True, False, or None: on iff the log is selected (its
      metadata's `min_session_length` > 1, or detected).
    cap_quantile: see `selection_weights`.
    normalise_on: bool [R], the rows trained on.
    leaving_skipped: why the leaving model is None (for the message).
    prior_strength: see `session_skip_rates`.

  Returns:
    (weights or None, summary); the summary says whether the weights are
    used, the selection's minimum and its source, and why not when not.

  Raises:
    SelectionError: if `enabled` is True but the log is unselected or the
      leaving model is missing.
  """
  minimum, source = log_selection_minimum(table, sessions_path)
  summary: dict[str, Any] = {"enabled": False, "requested": enabled,
                             "min_session_length": minimum,
                             "selection_source": source,
                             "method": "row weights 1 / P(reach minimum | "
                                       "row), see docs/selection.md"}
  if enabled is False:
    summary["reason"] = "turned off (train_user_model.selection_weighting)"
    return None, summary
  if minimum <= 1:
    if enabled:
      raise SelectionError(
          "train_user_model.selection_weighting is True, but the logs are "
          "not selected on length (no min_session_length > 1 in their "
          "metrics.json, and sessions shorter than "
          f"{DETECTED_MIN_SESSION_LENGTH}); leave it unset or False")
    summary["reason"] = "the logs are not selected on session length"
    return None, summary
  if leaving_model is None:
    if enabled:
      raise SelectionError(
          "train_user_model.selection_weighting needs the leaving model, "
          f"which could not be fitted: {leaving_skipped}")
    summary["reason"] = f"no leaving model: {leaving_skipped}"
    return None, summary
  weights = selection_weights(table, leaving_model, minimum,
                              cap_quantile=cap_quantile,
                              prior_strength=prior_strength,
                              normalise_on=normalise_on)
  summary.update(enabled=True, prior_strength=prior_strength,
                 **weights.summary(normalise_on))
  return weights, summary
