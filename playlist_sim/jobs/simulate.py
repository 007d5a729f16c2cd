"""`simulate`: run a named policy in the gin-configured environment."""

import os

import gin

from playlist_sim.policies.baselines import make_baseline_policy
from simulator.builder import EnvironmentBuilder
from playlist_sim.common.io_utils import ensure_writable_dir
from simulator.rollout import run_policy
from playlist_sim.common.runs import write_run_files
from simulator.tracker import EpisodeTracker

__all__ = ["simulate"]


@gin.configurable(denylist=["root_dir"])
def simulate(root_dir: str, policy: str = "random", num_episodes: int = 200,
             batch_size: int = 32, seed: int = 0,
             track_episodes: bool = True) -> dict:
  """Runs a baseline policy and writes episodes.parquet and metrics.json.

  Args:
    root_dir: output folder.
    policy: a name from `agents.BASELINES`.
    num_episodes: episodes to simulate.
    batch_size: listeners simulated at once.
    seed: seed of the environment and the policy.
    track_episodes: write root_dir/episodes.parquet.

  Returns:
    The metrics written to root_dir/metrics.json.
  """
  root_dir = ensure_writable_dir(root_dir)
  tracker = EpisodeTracker(root_dir=root_dir, enabled=track_episodes)
  builder = EnvironmentBuilder(episode_tracker=tracker)
  env = builder.get_py_env(batch_size=batch_size, seed=seed)
  pyenv = env.environment
  py_policy = make_baseline_policy(policy, env.time_step_spec(),
                                   env.action_spec(), pyenv.catalog, seed=seed)
  stats = run_policy(env, py_policy, num_episodes)
  env.close()
  metrics = stats.summary()
  metrics.update(policy=policy, seed=seed, batch_size=batch_size,
                 consecutive_skip_limit=pyenv.consecutive_skip_limit,
                 max_playlist_length=pyenv.max_playlist_length,
                 user_model=type(pyenv.user_model).__name__)
  if track_episodes:
    metrics["episodes_path"] = os.path.join(root_dir, "episodes.parquet")
  write_run_files(root_dir, metrics)
  return metrics
