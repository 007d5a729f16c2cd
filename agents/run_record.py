"""A run's bookkeeping: learning curve, losses, wall time and where it went.

`RunRecord` belongs to the run loop (`agents.run_loop`): it carries the
learning curve, the loss history and the wall time over from earlier
processes of the same run (they are saved with every checkpoint) and adds
this process's. It also splits the loop's wall time by phase (collection,
train steps, summaries, evaluation, checkpoints; `loop_seconds` in
metrics.json) and appends the per-episode returns of every periodic
evaluation to `eval/episode_returns.jsonl`, so a learning curve can be
compared episode by episode with baselines run on the same episodes
(`benchmarks/time_to_quality.py` does).
"""

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

__all__ = ["EPISODE_RETURNS_FILE", "LOOP_PHASES", "RunRecord",
           "read_episode_returns"]

#: Below the run folder: one JSON line per periodic evaluation.
EPISODE_RETURNS_FILE = os.path.join("eval", "episode_returns.jsonl")
#: The phases of the loop's wall time (`loop_seconds` in metrics.json).
LOOP_PHASES = ("collect", "train", "summaries", "evaluation", "checkpoint")


class RunRecord:
  """The run's bookkeeping: carried over from earlier processes, extended
  by this one, and saved with every checkpoint.

  Attributes:
    curve: [progress, seconds, mean return] rows of the periodic evaluations.
    loss_history: [progress, loss] rows.
    phase_seconds: loop phase -> seconds, over the whole run.
    setup_seconds: this process's time before the training clock started
      (environments, agent, restore, the first replay fill); the run loop
      sets it.
  """

  def __init__(self, saved: Mapping[str, Any], root_dir: str | None = None):
    """Starts this process's clock.

    Args:
      saved: the run state of the checkpoint resumed from ({} when fresh).
      root_dir: the run folder, which receives the evaluations' episode
        returns (None: not written).
    """
    self.curve = [list(row) for row in saved.get("eval_curve", [])]
    self.loss_history = [list(row) for row in saved.get("loss_history", [])]
    saved_phases = saved.get("loop_seconds", {})
    self.phase_seconds = {phase: float(saved_phases.get(phase, 0.0))
                          for phase in LOOP_PHASES}
    self.earlier_seconds = float(saved.get("wall_time_s", 0.0))
    self.setup_seconds = 0.0
    self.start = time.perf_counter()
    self._stopped_at = None
    self._returns_path = (None if root_dir is None else
                          os.path.join(root_dir, EPISODE_RETURNS_FILE))

  @contextlib.contextmanager
  def timed(self, phase: str) -> Iterator[None]:
    """Adds the wall time of the block to `phase` (one of `LOOP_PHASES`)."""
    start = time.perf_counter()
    try:
      yield
    finally:
      self.phase_seconds[phase] += time.perf_counter() - start

  def stop(self) -> None:
    """Ends the training time: export and baselines are not training."""
    self._stopped_at = time.perf_counter()

  def seconds(self) -> float:
    """Wall time of the training loop over the whole run."""
    now = self._stopped_at or time.perf_counter()
    return self.earlier_seconds + now - self.start

  def add_evaluation(self, progress: int, returns: np.ndarray,
                     seconds_before: float) -> float:
    """Records one periodic evaluation in the curve and the returns file.

    Args:
      progress: the run's progress (train steps) the policy was taken at.
      returns: the returns of its episodes, in episode order.
      seconds_before: `seconds()` when the evaluation started: the training
        time it took to reach this policy.

    Returns:
      The mean return.
    """
    mean = float(np.mean(returns))
    seconds = self.seconds()
    self.curve.append([progress, round(seconds, 1), mean])
    if self._returns_path is not None:
      # A resume may evaluate a progress again: readers keep the last line.
      os.makedirs(os.path.dirname(self._returns_path), exist_ok=True)
      with open(self._returns_path, "a", encoding="utf-8") as f:
        f.write(json.dumps({
            "progress": int(progress), "seconds": round(seconds_before, 3),
            "eval_seconds": round(seconds - seconds_before, 3),
            "returns": [round(float(r), 6) for r in returns]}) + "\n")
    return mean

  def state(self) -> dict:
    """What the checkpoints carry for the next process of the run."""
    return {"eval_curve": self.curve, "loss_history": self.loss_history,
            "wall_time_s": self.seconds(),
            "loop_seconds": dict(self.phase_seconds)}


def read_episode_returns(root_dir: str) -> list[dict]:
  """The periodic evaluations' episode returns of a run, by progress.

  Args:
    root_dir: the run folder.

  Returns:
    One dict per evaluated progress (the last line written for it), in
    order of progress: {progress, seconds, eval_seconds, returns (array)}.

  Raises:
    FileNotFoundError: the run wrote no evaluation (none ran yet, or
      `eval_interval` is larger than the run).
  """
  path = os.path.join(root_dir, EPISODE_RETURNS_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path} does not exist: the run in {root_dir} has not evaluated "
        "yet (train it with an eval_interval below num_iterations)")
  rows = {}
  with open(path, encoding="utf-8") as f:
    for line in f:
      if line.strip():
        row = json.loads(line)
        row["returns"] = np.asarray(row["returns"], np.float64)
        rows[row["progress"]] = row
  return [rows[progress] for progress in sorted(rows)]
