"""Per-row arrays and statistics of a session log.

These functions take a session table as `playlist_sim.data.logs.read_sessions`
returns it (grouped by session, positions in order, skip flags nested) and
give downstream code what it needs as NumPy arrays: where sessions start,
the response level of each row, and the data-driven termination rule (how many
consecutive skips end a session). `playlist_sim.data.logs` re-exports
`session_boundaries` and `response_levels`; this module imports nothing from
it, so either can be imported first.
"""

import math
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from playlist_sim.data.responses import PUBLIC_RESPONSE_LEVELS

__all__ = [
    "ENDED_OTHERWISE",
    "LISTEN_LEVEL",
    "SKIP_1",
    "SKIP_2",
    "SKIP_3",
    "SKIP_COLUMNS",
    "SKIP_FLAG_RULES",
    "SessionBoundaries",
    "SkipRunHazard",
    "consecutive_skip_limit",
    "consecutive_skip_limit_censored",
    "leave_hazard_by_skip_run",
    "final_skip_runs",
    "flags_from_levels",
    "levels_from_flags",
    "response_levels",
    "session_boundaries",
    "skip_flag_violations",
    "summarize_logs",
]

#: The public outcome flags, earliest skip first. They nest
#: (skip_1 => skip_2 => skip_3) and `skip_3` never comes with `not_skipped`;
#: a row with none of them set is the fifth public outcome, `ended_otherwise`.
SKIP_COLUMNS: tuple[str, ...] = ("skip_1", "skip_2", "skip_3", "not_skipped")
#: Level index of each outcome in `PUBLIC_RESPONSE_LEVELS`.
SKIP_1, SKIP_2, SKIP_3, ENDED_OTHERWISE, LISTEN_LEVEL = range(
    len(PUBLIC_RESPONSE_LEVELS))
#: The combinations of flags no real row has, as (name of the flag that
#: breaks the rule, rule); `skip_flag_violations` checks them.
SKIP_FLAG_RULES = ("skip_1 implies skip_2, skip_2 implies skip_3, and "
                   "skip_3 never comes with not_skipped")


def skip_flag_violations(skip_1: np.ndarray, skip_2: np.ndarray,
                         skip_3: np.ndarray, not_skipped: np.ndarray
                         ) -> list[tuple[str, np.ndarray]]:
  """Rows whose outcome flags are impossible, per offending flag.

  Args:
    skip_1: bool [R] flags of the rows.
    skip_2: bool [R] flags of the rows.
    skip_3: bool [R] flags of the rows.
    not_skipped: bool [R] flags of the rows.

  Returns:
    [(flag name, bool [R] mask of the rows where that flag breaks
    `SKIP_FLAG_RULES`)], in the order the rules are checked.
  """
  return [("skip_2", skip_1 & ~skip_2), ("skip_3", skip_2 & ~skip_3),
          ("not_skipped", skip_3 & not_skipped)]


def levels_from_flags(skip_1: np.ndarray, skip_2: np.ndarray,
                      skip_3: np.ndarray, not_skipped: np.ndarray
                      ) -> np.ndarray:
  """Level index (`PUBLIC_RESPONSE_LEVELS`) of rows with valid flags.

  The one place where public flags become levels: the earliest skip flag
  set, else `not_skipped`, else (no flag set) `ended_otherwise`.
  """
  return np.select([skip_1, skip_2, skip_3, not_skipped],
                   [SKIP_1, SKIP_2, SKIP_3, LISTEN_LEVEL],
                   ENDED_OTHERWISE).astype(np.int32)


def flags_from_levels(levels: np.ndarray) -> dict[str, np.ndarray]:
  """The public flags of each level index (inverse of `levels_from_flags`)."""
  levels = np.asarray(levels)
  return {"skip_1": levels <= SKIP_1, "skip_2": levels <= SKIP_2,
          "skip_3": levels <= SKIP_3, "not_skipped": levels == LISTEN_LEVEL}


class SessionBoundaries(NamedTuple):
  """Where each session of a table grouped by session sits.

  Attributes:
    session_ids: [S] object array of session ids, in table order.
    offsets: int64 [S + 1]; session s is rows offsets[s]:offsets[s + 1].
    session_index: int64 [R], the session of each row (0..S-1).
    lengths: int64 [S], rows per session.
  """
  session_ids: np.ndarray
  offsets: np.ndarray
  session_index: np.ndarray
  lengths: np.ndarray

  @property
  def num_sessions(self) -> int:
    return int(self.lengths.shape[0])


def _bools(table: pa.Table, name: str) -> np.ndarray:
  # Arrow packs booleans into bits, so they cannot be viewed zero-copy.
  return np.asarray(table.column(name).to_numpy(zero_copy_only=False), bool)


def session_boundaries(table: pa.Table) -> SessionBoundaries:
  """Sessions of a table whose rows are grouped by `session_id`.

  Args:
    table: a session log with a `session_id` column, each session's rows
      contiguous (as `read_sessions` returns it).

  Returns:
    The `SessionBoundaries` (offsets, per-row session index, lengths).

  Raises:
    ValueError: if the table is empty, has no `session_id` column, or a
      session's rows are not contiguous.
  """
  if "session_id" not in table.column_names:
    raise ValueError("session_boundaries: the table has no 'session_id' column")
  num_rows = table.num_rows
  if num_rows == 0:
    raise ValueError("session_boundaries: the table has no rows")
  ids = table.column("session_id").combine_chunks()
  starts = np.ones(num_rows, bool)
  if num_rows > 1:
    starts[1:] = pc.not_equal(ids.slice(1), ids.slice(0, num_rows - 1)
                              ).to_numpy(zero_copy_only=False)
  first_rows = np.flatnonzero(starts)
  session_ids = ids.take(pa.array(first_rows)).to_numpy(zero_copy_only=False)
  if len(pc.unique(ids)) != len(first_rows):
    raise ValueError("session_boundaries: the rows of a session are not "
                     "contiguous; sort by (session_id, session_position) "
                     "first, e.g. with playlist_sim.data.logs.read_sessions")
  offsets = np.append(first_rows, num_rows).astype(np.int64)
  return SessionBoundaries(session_ids=session_ids, offsets=offsets,
                           session_index=np.cumsum(starts) - 1,
                           lengths=np.diff(offsets))


def response_levels(table: pa.Table) -> np.ndarray:
  """Response level index of each row, over `PUBLIC_RESPONSE_LEVELS`.

  Args:
    table: a session log with the `SKIP_COLUMNS`.

  Returns:
    int32 [R]: 0 skip_1, 1 skip_2 (not skip_1), 2 skip_3 (not skip_2),
    3 ended_otherwise (no flag set), 4 not_skipped.

  Raises:
    ValueError: if a skip column is missing or a row's flags are impossible
      (see `SKIP_FLAG_RULES`).
  """
  missing = [c for c in SKIP_COLUMNS if c not in table.column_names]
  if missing:
    raise ValueError(f"response_levels: the table has no column(s) {missing}")
  flags = [_bools(table, c) for c in SKIP_COLUMNS]
  for name, bad in skip_flag_violations(*flags):
    if bad.any():
      raise ValueError(f"response_levels: impossible skip flags ({name}) at "
                       f"row {int(np.flatnonzero(bad)[0])}: "
                       f"{SKIP_FLAG_RULES}")
  return levels_from_flags(*flags)


def final_skip_runs(table: pa.Table) -> np.ndarray:
  """Length of the run of consecutive skips that ends each session.

  Args:
    table: a session log grouped by session (as `read_sessions` returns it).

  Returns:
    int64 [S], 0 for a session whose last track was listened to.
  """
  bounds = session_boundaries(table)
  _, run_length = _skip_runs(table, bounds)
  return run_length[bounds.offsets[1:] - 1].astype(np.int64)


def _skip_runs(table: pa.Table, bounds: SessionBoundaries
               ) -> tuple[np.ndarray, np.ndarray]:
  """Per row: skipped (not a listen), and the length of the run of skips
  that the row ends (0 on a listen)."""
  skipped = response_levels(table) != LISTEN_LEVEL
  rows = np.arange(table.num_rows)
  # The row before the current skip run began: a listen, or the row before
  # the session's first row when the session opens with skips.
  run_anchor = np.where(skipped, -1, rows)
  first_rows = bounds.offsets[:-1]
  run_anchor[first_rows] = np.where(skipped[first_rows], first_rows - 1,
                                    first_rows)
  return skipped, rows - np.maximum.accumulate(run_anchor)


def consecutive_skip_limit(table: pa.Table, fraction: float = 0.92) -> int:
  """Consecutive skips after which logged listeners typically leave.

  Among sessions whose last track is a skip (any skip level), this looks at
  the run of consecutive skips that ends the session, and returns the
  smallest N such that at least `fraction` of those sessions end with a run
  of at most N skips. A simulator that ends a session after N consecutive
  skips then reproduces how sessions end in the data.

  Args:
    table: a session log grouped by session (as `read_sessions` returns it).
    fraction: the share of skip-ending sessions to cover, in (0, 1].

  Returns:
    N >= 1.

  Raises:
    ValueError: if `fraction` is not in (0, 1] or no session ends on a skip.
  """
  if not 0.0 < fraction <= 1.0:
    raise ValueError(f"consecutive_skip_limit: fraction must be in (0, 1], "
                     f"got {fraction}")
  runs = final_skip_runs(table)
  runs = np.sort(runs[runs > 0])
  if runs.size == 0:
    raise ValueError("consecutive_skip_limit: no session in the log ends on "
                     "a skip, so the log says nothing about when listeners "
                     "leave after skipping")
  # The tolerance keeps e.g. 0.92 * 25 = 23.000000000000004 from rounding up.
  needed = max(1, math.ceil(fraction * runs.size - 1e-9))
  return int(runs[needed - 1])


class SkipRunHazard(NamedTuple):
  """How often listeners leave right after r skips in a row.

  Attributes:
    run_lengths: int64 [K], r = 1..K.
    at_risk: int64 [K], rows where a run of skips reached r and the session
      was observed past that row or ended there by the listener (rows at
      the log's length cut are censored: the session may have gone on).
    left: int64 [K], of those, the rows that end their session.
  """
  run_lengths: np.ndarray
  at_risk: np.ndarray
  left: np.ndarray

  @property
  def hazard(self) -> np.ndarray:
    """float64 [K] left / at_risk (NaN where nobody was at risk)."""
    with np.errstate(invalid="ignore", divide="ignore"):
      return self.left / self.at_risk


def leave_hazard_by_skip_run(table: pa.Table,
                             max_session_length: int | None = None
                             ) -> SkipRunHazard:
  """The empirical leaving hazard by length of the current run of skips.

  Logs are cut: the public dataset keeps at most 20 tracks of a session, and
  a simulator caps its episodes. A session that reaches the cut did not end
  there; its last row is censored, not a leave.

  Args:
    table: a session log grouped by session (as `read_sessions` returns it).
    max_session_length: the log's cut; sessions of this length are censored
      at their last row. None: the longest session in the log.

  Returns:
    The `SkipRunHazard` (empty arrays if no row is a skip).
  """
  bounds = session_boundaries(table)
  skipped, run = _skip_runs(table, bounds)
  cut = int(bounds.lengths.max() if max_session_length is None
            else max_session_length)
  last = np.zeros(table.num_rows, bool)
  last[bounds.offsets[1:] - 1] = True
  censored = last & (bounds.lengths[bounds.session_index] >= cut)
  observed = skipped & ~censored
  size = int(run[observed].max()) if observed.any() else 0
  at_risk = np.bincount(run[observed], minlength=size + 1)[1:]
  left = np.bincount(run[observed & last], minlength=size + 1)[1:]
  return SkipRunHazard(np.arange(1, size + 1), at_risk.astype(np.int64),
                       left.astype(np.int64))


def consecutive_skip_limit_censored(table: pa.Table,
                                    hazard_threshold: float = 0.5,
                                    max_session_length: int | None = None,
                                    min_at_risk: int = 5) -> int:
  """N: the run of skips after which listeners leave more often than not.

  The smallest run length r whose leaving hazard (`leave_hazard_by_skip_run`,
  cut sessions censored) is at least `hazard_threshold`, among runs seen at
  least `min_at_risk` times. A world that ends every session at its N-th
  skip in a row has hazard 1 at N and its softer leaving below the threshold
  before, so this recovers N. If no run reaches the threshold (listeners
  who only ever leave softly), it returns one more than the longest run
  observed: a limit that would have cut no logged session.

  Args:
    table: a session log grouped by session.
    hazard_threshold: hazard that counts as "leaves", in (0, 1].
    max_session_length: the log's cut (None: its longest session).
    min_at_risk: runs seen fewer times are too rare to judge.

  Returns:
    N >= 1.

  Raises:
    ValueError: on a threshold outside (0, 1] or a log with no skip.
  """
  if not 0.0 < hazard_threshold <= 1.0:
    raise ValueError(f"consecutive_skip_limit_censored: hazard_threshold "
                     f"must be in (0, 1], got {hazard_threshold}")
  hazard = leave_hazard_by_skip_run(table, max_session_length)
  if hazard.run_lengths.size == 0:
    raise ValueError("consecutive_skip_limit_censored: the log has no "
                     "uncensored skip, so it says nothing about leaving")
  judged = hazard.at_risk >= min_at_risk
  hits = np.flatnonzero(judged & (hazard.left >= hazard_threshold *
                                  hazard.at_risk))
  if hits.size:
    return int(hazard.run_lengths[hits[0]])
  return int(hazard.run_lengths[-1]) + 1


def summarize_logs(table: pa.Table) -> dict[str, Any]:
  """A JSON-ready summary of a session log.

  Args:
    table: a session log as `read_sessions` returns it.

  Returns:
    A dict with num_sessions, num_rows, mean_session_length, skip_rate (share
    of rows not listened to), level_rates (share of rows at each level of
    `PUBLIC_RESPONSE_LEVELS`, so skip_2 counts rows skipped at level 2 but
    not at level 1), consecutive_skip_limit (at 0.92; None if no session
    ends on a skip) and, if the log has a user_id column, num_users.
  """
  bounds = session_boundaries(table)
  levels = response_levels(table)
  counts = np.bincount(levels, minlength=len(PUBLIC_RESPONSE_LEVELS))
  try:
    skip_limit = consecutive_skip_limit(table, 0.92)
  except ValueError:
    skip_limit = None
  summary = {
      "num_sessions": bounds.num_sessions,
      "num_rows": int(table.num_rows),
      "mean_session_length": float(bounds.lengths.mean()),
      "skip_rate": float(np.mean(levels != LISTEN_LEVEL)),
      "level_rates": {name: float(n / table.num_rows) for name, n in
                      zip(PUBLIC_RESPONSE_LEVELS, counts)},
      "consecutive_skip_limit": skip_limit,
  }
  if "user_id" in table.column_names:
    summary["num_users"] = len(pc.unique(table.column("user_id")))
  return summary
