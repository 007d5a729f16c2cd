"""Statistics of a session log beside the public dataset's, with tolerances.

`log_statistics` measures, on any log in the public layout (ours or the real
files), the figures the calibrated world is held to; `compare_with_mssd`
sets each beside its published value (`playlist_sim/data/
mssd_reference.json`, shipped with the package) and marks it within its
tolerance or not; `plot_comparison` draws skip_2 by position and the
session-length shares, real beside ours. `scripts/log_stats.py` runs all
three.

Tolerances (issue #20):
* `1 - not_skipped` and the `skip_2` share: within 0.03 of log_mini's;
* the fifth outcome (no flag set, `ended_otherwise`): 2% to 8% of rows;
* `skip_2` at each session position 1..20: within 0.05;
* session-length shares: total variation distance <= 0.05 from the full
  training set's (lengths outside 10..20 count as mass the data lacks);
* reason_end shares (fwdbtn, trackdone, endplay, backbtn), context_type
  shares, premium, shuffle and context_switch row shares: within 0.03;
* track features: each public column's q25, median and q75 within 10% of
  the published value, or within 1% of the column's published range where
  that is larger: several quartiles are 0 or nearly so (instrumentalness
  q25 = 0, q50 = 0.0002; mode q25 = 0), where a relative tolerance means
  nothing.
"""

from typing import Any

import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure

from playlist_sim.data.log_stats import ENDED_OTHERWISE
from playlist_sim.data.log_stats import response_levels
from playlist_sim.data.log_stats import session_boundaries
from playlist_sim.data.catalog import TrackCatalog

__all__ = ["SHARE_TOLERANCE", "POSITION_TOLERANCE", "LENGTH_TV_TOLERANCE",
           "FEATURE_RELATIVE_TOLERANCE", "FEATURE_RANGE_TOLERANCE",
           "ENDED_OTHERWISE_RANGE", "log_statistics", "compare_with_mssd",
           "plot_comparison"]

SHARE_TOLERANCE = 0.03
POSITION_TOLERANCE = 0.05
LENGTH_TV_TOLERANCE = 0.05
FEATURE_RELATIVE_TOLERANCE = 0.10
FEATURE_RANGE_TOLERANCE = 0.01
ENDED_OTHERWISE_RANGE = (0.02, 0.08)
_REASONS = ("fwdbtn", "trackdone", "endplay", "backbtn")
_QUARTILES = (("q25", 0.25), ("q50", 0.5), ("q75", 0.75))


def _column(table: pa.Table, name: str) -> np.ndarray | None:
  if name not in table.column_names:
    return None
  return table.column(name).to_numpy(zero_copy_only=False)


def _shares(values: np.ndarray) -> dict[str, float]:
  names, counts = np.unique(values.astype(str), return_counts=True)
  return {str(k): float(c / values.size) for k, c in zip(names, counts)}


def log_statistics(sessions: pa.Table,
                   catalog: TrackCatalog | None = None) -> dict[str, Any]:
  """The compared statistics of one log.

  Args:
    sessions: a session log as `playlist_sim.data.logs.read_sessions` returns
      it.
    catalog: its tracks (for the feature quartiles), or None to skip them.

  Returns:
    A JSON-ready dict: rows, sessions, not_skipped / skip_2 /
    ended_otherwise row shares, skip_2_by_session_position ("1".."20"),
    session_length_share, reason_end_share, context_type_share, premium /
    shuffle / context_switch row shares (None where the log lacks the
    column) and track_feature_quartiles (column -> q25/q50/q75).
  """
  bounds = session_boundaries(sessions)
  levels = response_levels(sessions)
  skip_2 = np.asarray(_column(sessions, "skip_2"), bool)
  position = np.asarray(_column(sessions, "session_position"), np.int64)
  by_position = {}
  for p in range(1, 21):
    at = position == p
    by_position[str(p)] = float(skip_2[at].mean()) if at.any() else None
  lengths, counts = np.unique(bounds.lengths, return_counts=True)
  stats = {
      "rows": int(sessions.num_rows),
      "sessions": bounds.num_sessions,
      "not_skipped_mean": float(np.mean(_column(sessions, "not_skipped"))),
      "skip_2_mean": float(skip_2.mean()),
      "ended_otherwise_row_share": float(np.mean(levels == ENDED_OTHERWISE)),
      "skip_2_by_session_position": by_position,
      "session_length_share": {str(int(k)): float(c / bounds.num_sessions)
                               for k, c in zip(lengths, counts)},
  }
  for key, name in (("reason_end_share", "hist_user_behavior_reason_end"),
                    ("context_type_share", "context_type")):
    values = _column(sessions, name)
    stats[key] = None if values is None else _shares(values)
  for key, name in (("premium_row_share", "premium"),
                    ("shuffle_row_share", "hist_user_behavior_is_shuffle"),
                    ("context_switch_row_share", "context_switch")):
    values = _column(sessions, name)
    stats[key] = None if values is None else float(
        np.mean(values.astype(np.float64)))
  if catalog is not None:
    quartiles = {}
    for name, values in catalog.columns.items():
      if name == "track_id":
        continue
      if name == "mode":
        values = (values.astype(str) == "major").astype(np.float64)
      q = np.quantile(values.astype(np.float64), [p for _, p in _QUARTILES])
      quartiles[name] = {k: float(v) for (k, _), v in zip(_QUARTILES, q)}
    stats["track_feature_quartiles"] = quartiles
  return stats


def _check(name: str, ours, mssd, tolerance: str, within) -> dict[str, Any]:
  return {"statistic": name, "ours": ours, "mssd": mssd,
          "tolerance": tolerance, "within": within}


def _near(name: str, ours, mssd: float, tol: float) -> dict[str, Any]:
  within = None if ours is None else bool(abs(ours - mssd) <= tol + 1e-12)
  return _check(name, ours, mssd, f"+-{tol:g}", within)


def compare_with_mssd(stats: dict[str, Any],
                      reference: dict[str, Any]) -> list[dict[str, Any]]:
  """Each statistic beside its published value, marked within tolerance.

  Args:
    stats: `log_statistics` of a log.
    reference: `playlist_sim.data.mssd_reference.load_mssd_reference()`.

  Returns:
    [{statistic, ours, mssd, tolerance, within}]: `within` is True/False,
    or None where the log lacks what the statistic needs.
  """
  mini, full = reference["log_mini"], reference["full_training_set"]
  checks = [
      _near("1 - not_skipped", 1 - stats["not_skipped_mean"],
            1 - mini["not_skipped_mean"], SHARE_TOLERANCE),
      _near("skip_2", stats["skip_2_mean"], mini["skip_2_mean"],
            SHARE_TOLERANCE)]
  low, high = ENDED_OTHERWISE_RANGE
  eo = stats["ended_otherwise_row_share"]
  checks.append(_check("ended_otherwise (no flag set)", eo,
                       mini["neither_skipped_nor_completed_row_share_approx"],
                       f"in [{low:g}, {high:g}]", bool(low <= eo <= high)))
  for p, real in mini["skip_2_by_session_position"].items():
    checks.append(_near(f"skip_2 at position {p}",
                        stats["skip_2_by_session_position"].get(p), real,
                        POSITION_TOLERANCE))
  ours = stats["session_length_share"]
  real = full["session_length_share"]
  tv = 0.5 * sum(abs(ours.get(k, 0.0) - real.get(k, 0.0))
                 for k in set(ours) | set(real))
  checks.append(_check("session length shares (TV distance)", float(tv), 0.0,
                       f"<= {LENGTH_TV_TOLERANCE:g}",
                       bool(tv <= LENGTH_TV_TOLERANCE)))
  for key, names in (("reason_end_share", _REASONS),
                     ("context_type_share", tuple(mini["context_type_share"]))):
    for name in names:
      value = None if stats[key] is None else stats[key].get(name, 0.0)
      checks.append(_near(f"{key[:-6]} {name}", value, mini[key][name],
                          SHARE_TOLERANCE))
  for key in ("premium_row_share", "shuffle_row_share",
              "context_switch_row_share"):
    checks.append(_near(key[:-10], stats[key], mini[key], SHARE_TOLERANCE))
  features = reference["track_features_all_tracks"]["columns"]
  for column, published in features.items():
    for q, _ in _QUARTILES:
      ours_q = stats.get("track_feature_quartiles", {}).get(column, {}).get(q)
      tol = max(FEATURE_RELATIVE_TOLERANCE * abs(published[q]),
                FEATURE_RANGE_TOLERANCE * (published["max"] - published["min"]))
      checks.append(_near(f"{column} {q}", ours_q, published[q], tol))
  return checks


def plot_comparison(stats: dict[str, Any], reference: dict[str, Any],
                    path: str) -> None:
  """Saves skip_2 by position and session-length shares, real beside ours.

  Args:
    stats: `log_statistics` of a log.
    reference: the MSSD reference figures.
    path: the PNG to write.
  """
  fig = Figure(figsize=(10, 4))
  left, right = fig.subplots(1, 2)
  real = reference["log_mini"]["skip_2_by_session_position"]
  positions = np.arange(1, 21)
  ours = [stats["skip_2_by_session_position"].get(str(p)) for p in positions]
  left.plot(positions, [real[str(p)] for p in positions], "o-",
            label="MSSD log_mini")
  left.plot(positions, [np.nan if v is None else v for v in ours], "s--",
            label="these logs")
  left.set_xticks(positions[::2])
  left.set(xlabel="session position", ylabel="skip_2 share",
           title="skip_2 by position", ylim=(0, 1))
  left.legend()
  lengths = sorted({int(k) for k in stats["session_length_share"]} |
                   set(range(10, 21)))
  real_len = reference["full_training_set"]["session_length_share"]
  x = np.arange(len(lengths))
  right.bar(x - 0.2, [real_len.get(str(k), 0.0) for k in lengths], 0.4,
            label="MSSD full training set")
  right.bar(x + 0.2, [stats["session_length_share"].get(str(k), 0.0)
                      for k in lengths], 0.4, label="these logs")
  right.set_xticks(x, [str(k) for k in lengths])
  right.set(xlabel="session length", ylabel="share of sessions",
            title="session lengths")
  right.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
