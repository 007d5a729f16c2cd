"""Does order matter in the listener world? Greedy vs one-step lookahead.

    playlist-sim order-matters --root_dir DIR [--num_episodes 4000]

Runs the myopic greedy oracle (highest true listen probability now) and the
one-step-lookahead oracle in the listener world (configs/world.gin) over the
same episodes (common random numbers: episode e has the same listener,
candidate pool and outcome draws under every policy), and prints mean
returns, the relative gain of the lookahead and a paired bootstrap 95%
interval of the per-episode difference. Writes DIR/metrics.json and
DIR/run.json. Run it in the simple world with --gin_file world_simple.
"""

from absl import flags
import gin
import numpy as np

from playlist_sim.policies.baselines import make_baseline_policy
from playlist_sim.policies.oracle import OraclePolicy
from playlist_sim.common import runs
from simulator.builder import EnvironmentBuilder
from simulator.rollout import run_policy

__all__ = ["DEFAULT_GIN_FILES", "KIND", "run"]

KIND = "order_matters"
DEFAULT_GIN_FILES = ["configs/world.gin"]

runs.define_common_flags(DEFAULT_GIN_FILES)
flags.DEFINE_integer("num_episodes", 4000, "Episodes per policy.",
                     lower_bound=1)
flags.DEFINE_integer("batch_size", 256, "Listeners simulated at once.",
                     lower_bound=1)


def run(values: flags.FlagValues, run_folder: runs.RunFolder) -> None:
  """Runs the three policies and prints the lookahead's gain."""
  # Same episodes for every policy, so the difference is paired.
  gin.bind_parameter("PlaylistEnvironment.common_random_numbers", True)
  returns, metrics = {}, {"num_episodes": values.num_episodes,
                          "seed": values.seed, "policies": {}}
  for name in ("random", "greedy", "lookahead"):
    env = EnvironmentBuilder().get_py_env(batch_size=values.batch_size,
                                          seed=values.seed)
    if name == "random":
      policy = make_baseline_policy("random", env.time_step_spec(),
                                    env.action_spec(), env.environment.catalog,
                                    seed=values.seed)
    else:
      policy = OraclePolicy(env.environment, env.environment.user_model,
                            lookahead=name == "lookahead")
    stats = run_policy(env, policy, values.num_episodes)
    returns[name] = stats.returns
    metrics["policies"][name] = stats.summary()
  rng = np.random.default_rng(values.seed)
  g, l = returns["greedy"], returns["lookahead"]
  paired = l - g
  means = paired[rng.integers(0, len(paired), (2000, len(paired)))].mean(1)
  low, high = np.quantile(means, [0.025, 0.975])
  metrics.update(greedy_mean_return=float(g.mean()),
                 lookahead_mean_return=float(l.mean()),
                 relative_gain=float(l.mean() / g.mean() - 1.0),
                 difference_ci95=[float(low), float(high)])
  runs.write_run_files(run_folder.root_dir, metrics)
  for name, r in returns.items():
    print(f"{name:<10} mean return {r.mean():7.3f}")
  print(f"lookahead vs greedy: {100 * metrics['relative_gain']:+.1f}% "
        f"(paired difference {paired.mean():+.3f}, 95% CI [{low:+.3f}, "
        f"{high:+.3f}])")
