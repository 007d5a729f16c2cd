"""The one-command pipeline: every stage that exists, end to end.

Stages so far, in the gin-configured environment (`configs/world.gin`, the
listener world, by default): (1) generate session logs with the stochastic
logging policy, (2) simulate each baseline policy, (3) summarise with 95%
bootstrap intervals. Learned user models, agents and offline evaluation join
as they land.
Each stage writes into its own folder of `root_dir`; `root_dir/pipeline.json`
lists the results and where every artefact went.
"""

import os

import gin
import numpy as np
import pyarrow.parquet as pq

from agents.baselines import BASELINES
from simulator.io_utils import ensure_writable_dir, write_json
from simulator.log_generation import generate_logs
from simulator.simulate import simulate

__all__ = ["run_pipeline", "mean_interval"]


def mean_interval(values: np.ndarray, seed: int = 0, n_bootstrap: int = 2000,
                  alpha: float = 0.05) -> tuple[float, float, float]:
  """Mean and bootstrap (1 - alpha) percentile interval of the mean."""
  values = np.asarray(values, dtype=np.float64)
  rng = np.random.default_rng(seed)
  means = rng.choice(values, size=(n_bootstrap, len(values))).mean(axis=1)
  low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
  return float(values.mean()), float(low), float(high)


@gin.configurable(denylist=["root_dir", "quick", "seed"])
def run_pipeline(root_dir: str, quick: bool = False, seed: int = 0,
                 num_episodes: int = 2000, quick_num_episodes: int = 200,
                 num_sessions: int = 20000, quick_num_sessions: int = 2000,
                 environment_name: str = "world",
                 policies: tuple[str, ...] = BASELINES) -> dict:
  """Runs every available stage and returns the summary.

  Args:
    root_dir: output folder.
    quick: smaller sizes, same code path.
    seed: seed of every stage.
    num_episodes: episodes per policy in the simulator.
    quick_num_episodes: the same with `quick`.
    num_sessions: sessions of the generated logs.
    quick_num_sessions: the same with `quick`.
    environment_name: the name results are reported under ("world" for the
      listener world).
    policies: policies to simulate.

  Returns:
    The summary written to root_dir/pipeline.json.
  """
  root_dir = ensure_writable_dir(root_dir)
  episodes = quick_num_episodes if quick else num_episodes
  summary = {"quick": quick, "seed": seed, "stages": {}, "policies": {}}
  logs_dir = os.path.join(root_dir, "logs")
  summary["logs"] = generate_logs(
      logs_dir, num_sessions=quick_num_sessions if quick else num_sessions,
      seed=seed)
  summary["stages"]["logs"] = logs_dir
  for policy in policies:
    stage_dir = os.path.join(root_dir, "simulate", policy)
    metrics = simulate(stage_dir, policy=policy, num_episodes=episodes,
                       seed=seed, batch_size=64)
    table = pq.read_table(metrics["episodes_path"],
                          columns=["episode_id", "reward"])
    returns = _episode_returns(table, episodes)
    mean, low, high = mean_interval(returns, seed=seed)
    summary["policies"][policy] = {
        environment_name: {"mean_return": mean, "ci_low": low, "ci_high": high,
                      "mean_length": metrics["mean_length"],
                      "skip_rate": metrics["skip_rate"],
                      "num_episodes": metrics["num_episodes"]}}
    summary["stages"][f"simulate/{policy}"] = stage_dir
  write_json(os.path.join(root_dir, "pipeline.json"), summary)
  return summary


def _episode_returns(table, num_episodes: int) -> np.ndarray:
  ids = table.column("episode_id").to_numpy()
  rewards = table.column("reward").to_numpy()
  returns = np.bincount(ids, weights=rewards, minlength=num_episodes)
  return returns[:num_episodes]


def format_summary(summary: dict) -> str:
  """A plain-text table of the summary, one line per policy."""
  lines = [f"{'policy':<12} {'environment':<11} {'mean return':>11} "
           f"{'95% interval':>17} {'length':>7} {'skip rate':>9}"]
  for policy, by_env in summary["policies"].items():
    for env_name, m in by_env.items():
      lines.append(
          f"{policy:<12} {env_name:<11} {m['mean_return']:>11.3f} "
          f"[{m['ci_low']:>7.3f}, {m['ci_high']:>7.3f}] "
          f"{m['mean_length']:>7.2f} {m['skip_rate']:>9.3f}")
  return "\n".join(lines)
