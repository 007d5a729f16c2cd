"""How a learned simulator's sessions end, built once for every stage.

A learned user model predicts each track's response; when the listener
leaves is decided beside it by two parts estimated from the same logs:

* the consecutive-skip limit N, the skips in a row after which logged
  listeners leave more often than not (`consecutive_skip_limit_from_logs`,
  the default of `configs/log_episodes.gin` that the agents train with);
* the leaving model saved beside the user model file (`leaving_model.json`,
  written by train_user_model and copied by quantize;
  `playlist_sim.data.leaving`).

`learned_session_end` builds that pair, so the quantisation report's
simulated returns, the offline evaluation and the agents' learned simulator
end sessions the same way: a return measured with another ending (the
environment's default N = 3, no leaving) is the return of another
simulator.

The module needs NumPy and pyarrow only (no TensorFlow).
"""

import dataclasses
import numbers
import os
from typing import Any

from playlist_sim.data.leaving import LEAVING_MODEL_FILE, LeavingModel
from playlist_sim.data.leaving import leaving_model_beside
from playlist_sim.data.log_files import find_log_files
from playlist_sim.data.sessions import consecutive_skip_limit_from_logs

__all__ = ["SessionEnd", "learned_session_end"]


@dataclasses.dataclass(frozen=True)
class SessionEnd:
  """The session end of a learned simulator.

  Attributes:
    consecutive_skip_limit: skips in a row that end a session, N >= 1.
    skip_limit_source: "logs" (estimated from the session log) or "given".
    leaving_model: P(leave) after each track, or None (listeners then leave
      only by the skip limit and the playlist length).
    leaving_model_path: the file the leaving model was read from, or None.
  """
  consecutive_skip_limit: int
  skip_limit_source: str
  leaving_model: LeavingModel | None
  leaving_model_path: str | None

  def to_json(self) -> dict[str, Any]:
    """The settings as recorded in reports (the leaving model's file and
    coefficients, or None)."""
    return {"consecutive_skip_limit": self.consecutive_skip_limit,
            "consecutive_skip_limit_source": self.skip_limit_source,
            "leaving_model": (None if self.leaving_model is None else
                              self.leaving_model.to_json()),
            "leaving_model_path": self.leaving_model_path}


def learned_session_end(logs_dir: str, user_model_path: str,
                        consecutive_skip_limit: int | None = None,
                        leaving_model: bool = True) -> SessionEnd:
  """The session end of the simulator served from `user_model_path`.

  Args:
    logs_dir: the logs the user model was trained on
      (`playlist_sim.data.log_files.find_log_files`).
    user_model_path: the `.keras` or `.tflite` user model file; its leaving
      model is the `leaving_model.json` beside it.
    consecutive_skip_limit: N if given, else estimated from the logs
      (`consecutive_skip_limit_from_logs`, its gin settings applied).
    leaving_model: use the leaving model beside the user model if there is
      one; False: none.

  Returns:
    The `SessionEnd`.

  Raises:
    ValueError: for a `consecutive_skip_limit` that is not an integer >= 1.
    FileNotFoundError: if the logs folder has no session log.
    LeavingModelError: if the leaving model file beside the user model is
      not a valid leaving model.
  """
  if consecutive_skip_limit is None:
    sessions_path = find_log_files(logs_dir)[0]
    limit, source = int(consecutive_skip_limit_from_logs(sessions_path)), "logs"
  else:
    if (isinstance(consecutive_skip_limit, bool) or
        not isinstance(consecutive_skip_limit, numbers.Integral) or
        consecutive_skip_limit < 1):
      raise ValueError(f"consecutive_skip_limit must be an integer >= 1 (or "
                       f"None: estimated from the logs), got "
                       f"{consecutive_skip_limit!r}")
    limit, source = int(consecutive_skip_limit), "given"
  leaving = leaving_model_beside(user_model_path) if leaving_model else None
  path = (os.path.join(os.path.dirname(os.path.abspath(user_model_path)),
                       LEAVING_MODEL_FILE) if leaving is not None else None)
  return SessionEnd(limit, source, leaving, path)
