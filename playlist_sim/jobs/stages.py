"""Stages of a long job: one line per stage, reuse of finished ones.

`StageRunner` runs named stages in order. Each stage owns a folder (a
`RunFolder`: manifest and lock). A stage whose folder holds a finished run of
the same configuration is reused (its result is read back from the folder's
`stage.json`); an unfinished one (killed, interrupted) is run again, and the
work it checkpointed (agent training) resumes. With `overwrite` (the job's
--overwrite), every stage folder is emptied and its stage run again. Before
each stage one line says which it is, n of N, the elapsed time and a rough
ETA (the mean time of the stages run so far times the stages left); inside,
`run_policy`'s progress bars are shown.
"""

import json
import logging
import os
import shutil
import time
from typing import Any, Callable, Mapping, Sequence

from playlist_sim.common.io_utils import write_json
from simulator.rollout import progress_bars
from playlist_sim.common.run_folder import RunFolder, RunFolderError
from playlist_sim.common.run_folder import config_hash, read_manifest

__all__ = ["STAGE_RESULT", "StageRunner"]

STAGE_RESULT = "stage.json"
_log = logging.getLogger(__name__)


def _clock(seconds: float) -> str:
  seconds = int(round(seconds))
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class StageRunner:
  """Runs the stages of one job and reports them (see the module docstring).

  Attributes:
    names: the stages, in order.
    seconds: stage name -> seconds it took in this process (0 if reused).
  """

  def __init__(self, job: str, names: Sequence[str], root_dir: str,
               overwrite: bool = False):
    """Announces the job.

    Args:
      job: the job's name, shown in the lines.
      names: every stage's name, in running order.
      root_dir: the job's folder (shown).
      overwrite: run every stage again from an empty folder, whatever its
        folder holds (finished, unfinished, or of another configuration).
    """
    self.job = job
    self._root = os.path.abspath(root_dir)
    self._overwrite = overwrite
    self.names = list(names)
    self.seconds: dict[str, float] = {}
    self._start = time.monotonic()
    self._ran: list[float] = []
    _log.info("%s: %d stages (%s) into %s; Ctrl-C stops it, and the same "
              "command resumes", job, len(self.names), ", ".join(self.names),
              root_dir)

  def _line(self, name: str, what: str) -> None:
    index = self.names.index(name) + 1
    elapsed = time.monotonic() - self._start
    left = len(self.names) - index + 1
    eta = (f"ETA ~{_clock(left * sum(self._ran) / len(self._ran))}"
           if self._ran else "ETA after the first stage")
    _log.info("[%d/%d] %s: %s (elapsed %s, %s)", index, len(self.names), name,
              what, _clock(elapsed), eta)

  def run(self, name: str, folder: str, kind: str,
          config: Mapping[str, Any], work: Callable[[], dict],
          describe: str) -> dict:
    """Runs one stage in its folder, or reuses its finished result.

    Args:
      name: the stage's name (one of `names`).
      folder: the stage's run folder.
      kind: the kind of run recorded in the folder's run.json.
      config: what decides the stage's result (hashed).
      work: computes the stage's JSON-serialisable result.
      describe: what the stage does, for its line.

    Returns:
      The stage's result.

    Raises:
      RunFolderError: if the folder holds another run (another kind, or a
        run of another configuration, finished or not), without overwrite.
    """
    if self._overwrite and os.path.isdir(folder):
      # Emptied, not written over: an agent stage would otherwise resume
      # from the checkpoints it holds. Only ever a folder below the job's.
      inside = os.path.abspath(folder)
      if os.path.commonpath([inside, self._root]) != self._root or (
          inside == self._root):
        raise RunFolderError(f"stage {name!r}: {folder!r} is not below the "
                             f"job's folder {self._root!r}; not emptied")
      _log.info("--overwrite: emptying %s to run stage %r again", folder,
                name)
      shutil.rmtree(folder)
    previous = read_manifest(folder)
    if (previous and previous.get("kind") == kind and
        previous.get("config_hash") != config_hash(config)):
      # Neither reused nor resumed: an unfinished agent stage would go on
      # from checkpoints of the other configuration. The message is the
      # stage's own: RunFolder's would not name the stage.
      state = ("a finished" if previous.get("status") == "finished" else
               "an unfinished")
      raise RunFolderError(
          f"stage {name!r}: {folder!r} holds {state} {kind!r} run made "
          "with another configuration (sizes, seed, split, gin files or "
          "bindings, or an edited agent config); choose another --root_dir, "
          "delete that folder to run the stage again, or pass --overwrite "
          "to run every stage again")
    with RunFolder(folder, kind, config) as run:
      result_path = os.path.join(run.root_dir, STAGE_RESULT)
      if run.already_finished and os.path.exists(result_path):
        self._line(name, f"reusing the finished stage in {folder}")
        self.seconds[name] = 0.0
        with open(result_path) as f:
          return json.load(f)
      self._line(name, describe + (" (resuming an unfinished run)" if
                                   run.resumed else ""))
      start = time.monotonic()
      with progress_bars():
        result = work()
      write_json(result_path, result)
      run.finish()
    self.seconds[name] = round(time.monotonic() - start, 1)
    self._ran.append(self.seconds[name])
    return result

  def run_here(self, name: str, work: Callable[[], dict],
               describe: str) -> dict:
    """Runs a stage that writes into the job's own folder (never reused)."""
    self._line(name, describe)
    start = time.monotonic()
    with progress_bars():
      result = work()
    self.seconds[name] = round(time.monotonic() - start, 1)
    self._ran.append(self.seconds[name])
    return result
