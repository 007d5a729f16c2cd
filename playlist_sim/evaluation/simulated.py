"""Simulator-based evaluation of a policy on held-out logged sessions.

A policy runs on the held-out play modes of the logs (`LogEpisodeSampler(
split="test")`) with common random numbers, so two user models given the
same seed (the learned simulator and the listener world, or fp32 and int8)
see the same listeners, pools and outcome draws: paired episodes. Besides
the per-episode figures (`simulator.rollout.EpisodeStats`) a run counts, by
playlist position, the tracks heard, skipped and the reward, from which
`summarize_run` gives every metric with a bootstrap 95% interval.
"""

import dataclasses
from typing import Callable

import numpy as np

from playlist_sim.data.log_files import find_log_files
from playlist_sim.data.sessions import LogSplit
from playlist_sim.evaluation.stats import bootstrap_mean, bootstrap_ratio
from playlist_sim.policies import registry
from simulator.builder import EnvironmentBuilder
from simulator.log_episodes import LogEpisodeSampler
from simulator.rollout import EpisodeStats
from simulator.rollout import run_policy
from simulator.track_sampler import DiscreteTrackSampler
from simulator.tracker import TERMINATION_REASONS

__all__ = ["PolicyRun", "held_out_env", "run_logged_episodes",
           "run_on_logged_sessions", "summarize_run"]


@dataclasses.dataclass
class PolicyRun:
  """One policy's run: per-episode stats and per-position counts.

  Attributes:
    stats: per-episode returns, lengths, skips and termination reasons.
    heard: int64 [P] tracks heard at playlist position p (0-based).
    skipped: int64 [P] of them skipped.
    reward: float64 [P] reward collected at position p.
  """
  stats: EpisodeStats
  heard: np.ndarray
  skipped: np.ndarray
  reward: np.ndarray

  def return_to_go(self) -> np.ndarray:
    """float64 [P + 1]: mean reward from position p on, given p is reached.

    The last entry (past the longest playlist) is 0.
    """
    tail = np.concatenate([np.cumsum(self.reward[::-1])[::-1], [0.0]])
    reached = np.concatenate([self.heard, [1]]).astype(np.float64)
    return np.where(reached > 0, tail / np.maximum(reached, 1), 0.0)


class _PositionRecorder:
  """Wraps a batched environment; counts outcomes by playlist position."""

  def __init__(self, env, max_positions: int):
    self._env = env
    self.heard = np.zeros(max_positions, np.int64)
    self.skipped = np.zeros(max_positions, np.int64)
    self.reward = np.zeros(max_positions, np.float64)
    self._position = None

  def __getattr__(self, name):
    return getattr(self._env, name)

  def reset(self):
    time_step = self._env.reset()
    self._position = np.asarray(time_step.observation["position"])
    return time_step

  def step(self, action):
    before = self._position
    time_step = self._env.step(action)
    result = self._env.environment.last_result
    rows = np.flatnonzero(result.heard > 0)  # Reset rows heard nothing.
    np.add.at(self.heard, before[rows], result.heard[rows])
    np.add.at(self.skipped, before[rows], result.skipped[rows])
    np.add.at(self.reward, before[rows], result.reward[rows])
    self._position = np.asarray(time_step.observation["position"])
    return time_step


def held_out_env(user_model, logs_dir: str, seed: int, batch_size: int = 64,
                 split: str = "test", leaving_model=None,
                 log_split: LogSplit | None = None,
                 consecutive_skip_limit: int | None = None):
  """A batched, common-random-numbers environment on the logs' sessions.

  Args:
    user_model: the environment's user model.
    logs_dir: a logs folder (`playlist_sim.data.log_files.find_log_files`).
    seed: seed of the play modes and outcome draws.
    batch_size: listeners simulated at once.
    split: the logs' split the play modes come from.
    leaving_model: P(leave) for a learned user model
      (`playlist_sim.data.leaving.LeavingModel`); None: listeners leave only as the
      user model says (the world) or by the environment's rules. Passed
      explicitly, so a gin binding never gives it to the world.
    log_split: how the logs are split (the learned model's training split);
      None: `LogEpisodeSampler`'s own settings (gin or its defaults).
    consecutive_skip_limit: skips in a row that end a session; None:
      `PlaylistEnvironment`'s own (gin or its default).

  Returns:
    A `TFAgtPyEnvironment` (other environment settings from gin).
  """
  sessions_path, tracks_path = find_log_files(logs_dir)
  chosen = {} if log_split is None else log_split.as_kwargs()
  sampler = LogEpisodeSampler(sessions_path=sessions_path,
                              tracks_path=tracks_path, split=split, **chosen)
  limit = ({} if consecutive_skip_limit is None else
           {"consecutive_skip_limit": consecutive_skip_limit})
  return EnvironmentBuilder(user_model=user_model,
                            track_sampler=DiscreteTrackSampler(),
                            episode_sampler=sampler).get_py_env(
                                batch_size=batch_size, seed=seed,
                                common_random_numbers=True,
                                leaving_model=leaving_model, **limit)


def run_logged_episodes(user_model, logs_dir: str,
                        make_policy: Callable[[object], object],
                        num_episodes: int, seed: int = 0,
                        batch_size: int = 64, leaving_model=None,
                        log_split: LogSplit | None = None,
                        consecutive_skip_limit: int | None = None,
                        split: str = "test") -> PolicyRun:
  """Runs `make_policy(env)` on held-out logged sessions with `user_model`.

  Args:
    user_model: the environment's user model.
    logs_dir: a logs folder (`playlist_sim.data.log_files.find_log_files`).
    make_policy: builds a batched PyPolicy for the environment.
    num_episodes: episodes to run.
    seed: seed of the environment.
    batch_size: listeners simulated at once.
    leaving_model: see `held_out_env`.
    log_split: see `held_out_env`.
    consecutive_skip_limit: see `held_out_env`.
    split: the logs' part whose sessions give the episodes ("test", the
      held-out part, or "train").

  Returns:
    The `PolicyRun`.
  """
  env = held_out_env(user_model, logs_dir, seed, batch_size, split=split,
                     leaving_model=leaving_model, log_split=log_split,
                     consecutive_skip_limit=consecutive_skip_limit)
  recorder = _PositionRecorder(env,
                               env.environment.max_playlist_length + 1)
  stats = run_policy(recorder, make_policy(env), num_episodes,
                     progress=False)
  env.close()
  return PolicyRun(stats, recorder.heard, recorder.skipped, recorder.reward)


def run_on_logged_sessions(user_model, logs_dir: str, policy_name: str,
                           num_episodes: int, seed: int = 0, scorer=None,
                           batch_size: int = 64,
                           log_split: LogSplit | None = None) -> EpisodeStats:
  """Runs a baseline (or "greedy" by `scorer`) on held-out logged sessions.

  Args:
    user_model: the environment's user model.
    logs_dir: a logs folder (`playlist_sim.data.log_files.find_log_files`).
    policy_name: a name from `agents.BASELINES` or "greedy" (greedy by
      `scorer`'s predicted listen probability).
    num_episodes: episodes to run.
    seed: seed of the environment and the policy.
    scorer: the user model greedy ranks with (default: `user_model`).
    batch_size: listeners simulated at once.
    log_split: see `held_out_env`.

  Returns:
    The `EpisodeStats` of the run.
  """
  return run_logged_episodes(
      user_model, logs_dir, lambda env: registry.make_policy(
          policy_name, env, scorer=user_model if scorer is None else scorer,
          seed=seed), num_episodes, seed, batch_size,
      log_split=log_split).stats


def _interval(mean_low_high: tuple[float, float, float]) -> dict:
  mean, low, high = mean_low_high
  return {"mean": mean, "ci_low": low, "ci_high": high}


def summarize_run(run: PolicyRun, seed: int = 0) -> dict:
  """Every metric of a run, each with a bootstrap 95% interval.

  Args:
    run: a `PolicyRun`.
    seed: seed of the bootstraps.

  Returns:
    {mean_return, ci_low, ci_high, listens_per_session, skip_rate,
    session_length, termination (reason -> share interval),
    skip_rate_by_position, tracks_by_position, num_episodes}; the intervals
    are {mean, ci_low, ci_high}.
  """
  stats = run.stats
  mean, low, high = bootstrap_mean(stats.returns, seed)
  listens = stats.lengths - stats.skips
  termination = {}
  for reason in TERMINATION_REASONS[1:]:  # [0] is "" (still running).
    share = (stats.termination_reasons == reason).astype(np.float64)
    termination[str(reason)] = _interval(bootstrap_mean(share, seed))
  by_position = np.where(run.heard > 0, run.skipped / np.maximum(run.heard, 1),
                         np.nan)
  last = int(np.flatnonzero(run.heard > 0).max()) + 1 if run.heard.any() else 0
  return {
      "mean_return": mean, "ci_low": low, "ci_high": high,
      "return": _interval((mean, low, high)),
      "listens_per_session": _interval(bootstrap_mean(listens, seed)),
      "skip_rate": _interval(bootstrap_ratio(stats.skips, stats.lengths,
                                             seed)),
      "session_length": _interval(bootstrap_mean(stats.lengths, seed)),
      "termination": termination,
      "skip_rate_by_position": [None if np.isnan(x) else float(x)
                                for x in by_position[:last]],
      "tracks_by_position": run.heard[:last].tolist(),
      "num_episodes": int(len(stats.returns)),
  }
