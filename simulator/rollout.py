"""Runs a policy for a number of episodes and summarises what happened.

Works on any batched TF-Agents `PyEnvironment` over a `PlaylistEnvironment`
(a `TFAgtPyEnvironment`). To avoid favouring short episodes, the episodes
kept are the first `num_episodes` to *start*; the run goes on until all of
them have ended.
"""

import contextlib
import dataclasses
import time
from typing import Iterator

import numpy as np
from tf_agents.policies import py_policy
from tf_agents.trajectories import time_step as ts
from tqdm.auto import tqdm

from simulator.builder import TFAgtPyEnvironment
from simulator.tracker import TERMINATION_REASONS

__all__ = ["EpisodeStats", "progress_bars", "run_policy"]


@dataclasses.dataclass
class EpisodeStats:
  """Per-episode results, in start order.

  Attributes:
    returns: float64 [N] summed rewards.
    lengths: int64 [N] tracks heard.
    skips: int64 [N] tracks skipped.
    termination_reasons: [N] strings from TERMINATION_REASONS.
    env_steps: environment row-steps taken (including discarded episodes).
    seconds: wall time of the run.
  """
  returns: np.ndarray
  lengths: np.ndarray
  skips: np.ndarray
  termination_reasons: np.ndarray
  env_steps: int
  seconds: float

  def summary(self) -> dict:
    """Mean return, mean length, skip rate and termination counts."""
    reasons, counts = np.unique(self.termination_reasons, return_counts=True)
    return {
        "num_episodes": int(len(self.returns)),
        "mean_return": float(self.returns.mean()),
        "std_return": float(self.returns.std()),
        "mean_length": float(self.lengths.mean()),
        "skip_rate": float(self.skips.sum() / max(self.lengths.sum(), 1)),
        "termination_counts": {str(r): int(c) for r, c in zip(reasons, counts)},
        "env_steps": int(self.env_steps),
        "env_steps_per_s": float(self.env_steps / max(self.seconds, 1e-9)),
    }


_forced_progress = False


@contextlib.contextmanager
def progress_bars() -> Iterator[None]:
  """Shows `run_policy`'s progress bar inside the block, even where callers
  turned it off (the pipeline's long stages: evaluation, baseline
  comparison, quantisation returns). These bars vanish when done.

  Yields:
    None.
  """
  global _forced_progress
  before, _forced_progress = _forced_progress, True
  try:
    yield
  finally:
    _forced_progress = before


def run_policy(env: TFAgtPyEnvironment, policy: py_policy.PyPolicy,
               num_episodes: int, progress: bool = True) -> EpisodeStats:
  """Runs `policy` in `env` until the first `num_episodes` episodes end.

  Args:
    env: a batched TFAgtPyEnvironment.
    policy: a PyPolicy for batched time steps.
    num_episodes: episodes to collect, >= 1.
    progress: show a progress bar (rate and ETA); see also
      `progress_bars`.

  Returns:
    `EpisodeStats` of the first `num_episodes` episodes to start.

  Raises:
    ValueError: if num_episodes < 1 or the environment is unbatched.
  """
  if num_episodes < 1:
    raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
  if not env.batched:
    raise ValueError("run_policy needs a batched environment")
  batch = env.batch_size
  returns = np.zeros(num_episodes)
  lengths = np.zeros(num_episodes, np.int64)
  skips = np.zeros(num_episodes, np.int64)
  reasons = np.empty(num_episodes, dtype=object)
  done = np.zeros(num_episodes, bool)
  row_episode = np.arange(batch)  # Start index of each row's episode.
  next_start = batch
  env_steps = 0
  start = time.perf_counter()
  bar = tqdm(total=num_episodes, unit="episode",
             disable=not (progress or _forced_progress),
             leave=progress, desc=getattr(policy, "name", None) or "policy",
             dynamic_ncols=True)
  time_step = env.reset()
  policy_state = policy.get_initial_state(batch)
  while not done.all():
    step = policy.action(time_step, policy_state)
    policy_state = step.state
    time_step = env.step(step.action)
    env_steps += batch
    result = env.environment.last_result
    first = time_step.step_type == ts.StepType.FIRST
    if first.any():  # These rows started new episodes in this step.
      rows = np.flatnonzero(first)
      row_episode[rows] = np.arange(next_start, next_start + rows.size)
      next_start += rows.size
    running = ~first
    keep = running & (row_episode < num_episodes)
    idx = row_episode[keep]
    returns[idx] += time_step.reward[keep]
    heard = result.heard[keep]
    lengths[idx] += heard
    skips[idx] += result.skipped[keep]
    last = keep & (time_step.step_type == ts.StepType.LAST)
    if last.any():
      ended = row_episode[last]
      reasons[ended] = np.asarray(TERMINATION_REASONS)[
          result.termination_reason[last]]
      done[ended] = True
      bar.update(int(last.sum()))
  bar.close()
  return EpisodeStats(returns, lengths, skips, reasons.astype(str), env_steps,
                      time.perf_counter() - start)
