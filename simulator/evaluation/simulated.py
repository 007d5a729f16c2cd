"""Simulator-based evaluation of a policy on held-out logged sessions."""

import os

from simulator.rollout import EpisodeStats

__all__ = ["run_on_logged_sessions"]


def run_on_logged_sessions(user_model, logs_dir: str, policy_name: str,
                           num_episodes: int, seed: int = 0, scorer=None,
                           batch_size: int = 64) -> EpisodeStats:
  """Runs a baseline on held-out logged sessions with `user_model`.

  Episodes come from `LogEpisodeSampler(split="test")` with common random
  numbers, so two user models (a simulator and the world, or fp32 and int8)
  given the same seed see the same play modes and outcome draws.

  Args:
    user_model: the environment's user model.
    logs_dir: folder of sessions.parquet and tracks.parquet.
    policy_name: a name from `agents.BASELINES` or "greedy" (greedy by
      `scorer`'s predicted listen probability).
    num_episodes: episodes to run.
    seed: seed of the environment and the policy.
    scorer: the user model greedy ranks with (default: `user_model`).
    batch_size: listeners simulated at once.

  Returns:
    The `EpisodeStats` of the run.
  """
  # pylint: disable=g-import-not-at-top  (agents sit above the simulator)
  from agents.baselines import GreedyUserModelPolicy, make_baseline_policy
  from simulator.builder import EnvironmentBuilder
  from simulator.log_episodes import LogEpisodeSampler
  from simulator.rollout import run_policy
  from simulator.track_sampler import DiscreteTrackSampler
  # pylint: enable=g-import-not-at-top
  sampler = LogEpisodeSampler(
      sessions_path=os.path.join(logs_dir, "sessions.parquet"),
      tracks_path=os.path.join(logs_dir, "tracks.parquet"), split="test")
  env = EnvironmentBuilder(user_model=user_model,
                           track_sampler=DiscreteTrackSampler(),
                           episode_sampler=sampler).get_py_env(
                               batch_size=batch_size, seed=seed,
                               common_random_numbers=True)
  if policy_name == "greedy":
    policy = GreedyUserModelPolicy(
        env.time_step_spec(), env.action_spec(),
        user_model if scorer is None else scorer,
        user_ids_fn=lambda: env.environment.session_context().user_ids)
  else:
    policy = make_baseline_policy(policy_name, env.time_step_spec(),
                                  env.action_spec(), sampler.catalog, seed)
  return run_policy(env, policy, num_episodes, progress=False)
