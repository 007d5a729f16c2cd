"""The selection a session log was kept by: its minimum session length.

Logs kept like the public dataset's hold only sessions of at least 10
tracks. `log_selection_minimum` reads the minimum from the log summary
beside the sessions file (`generate_logs` writes `metrics.json`, the
pipeline `stage.json`), or detects it from the log itself.
`playlist_sim.data.selection` corrects a user model's training for it.

The module needs NumPy and pyarrow only (no TensorFlow).
"""

import json
import os

import pyarrow as pa

from playlist_sim.data import log_stats

__all__ = ["DETECTED_MIN_SESSION_LENGTH", "SelectionError",
           "log_selection_minimum"]

#: A log without metadata whose shortest session has at least this many
#: tracks is taken as selected (the public dataset's minimum).
DETECTED_MIN_SESSION_LENGTH = 10
# The log summary: `generate_logs` writes metrics.json, the pipeline's
# log stage stage.json (the same keys).
_LOG_METADATA = ("metrics.json", "stage.json")


class SelectionError(ValueError):
  """A log selection, or selection weights, that the inputs do not allow."""


def log_selection_minimum(table: pa.Table, sessions_path: str | None = None
                          ) -> tuple[int, str]:
  """The minimum session length the log was selected on, and how it is known.

  Args:
    table: the session log, grouped by session.
    sessions_path: its file; `generate_logs` writes `metrics.json` beside
      it (the pipeline: `stage.json`) with `min_session_length`, read first
      when present.

  Returns:
    (m, source): source "metadata", "detected" (no metadata and no session
    shorter than `DETECTED_MIN_SESSION_LENGTH`: m is the shortest session)
    or "unselected" (m = 1).

  Raises:
    SelectionError: if the metadata's `min_session_length` is not a
      positive integer or some session is shorter than it.
  """
  shortest = int(log_stats.session_boundaries(table).lengths.min())
  folder = (None if sessions_path is None else
            os.path.dirname(os.path.abspath(sessions_path)))
  found = [] if folder is None else [
      os.path.join(folder, name) for name in _LOG_METADATA
      if os.path.isfile(os.path.join(folder, name))]
  for meta_path in found[:1]:
    try:
      with open(meta_path, encoding="utf-8") as f:
        value = json.load(f).get("min_session_length")
    except (OSError, ValueError, AttributeError):
      value = None  # Not a log summary: fall back to detection.
    if value is not None:
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SelectionError(
            f"{meta_path}: min_session_length must be an integer >= 1, got "
            f"{value!r}; fix the logs' metrics.json or remove the key")
      if shortest < value:
        raise SelectionError(
            f"{meta_path} says sessions were kept only if they had >= "
            f"{value} tracks, but the log has a session of {shortest}; fix "
            "the metadata or the log")
      return value, "metadata"
  if shortest >= DETECTED_MIN_SESSION_LENGTH:
    return shortest, "detected"
  return 1, "unselected"
