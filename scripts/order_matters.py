"""Does order matter in the listener world? Greedy vs one-step lookahead.

    python scripts/order_matters.py --root_dir DIR [--num_episodes 4000]

Runs the myopic greedy oracle (highest true listen probability now) and the
one-step-lookahead oracle in the listener world (configs/world.gin) over the
same episodes (common random numbers: episode e has the same listener,
candidate pool and outcome draws under every policy), and prints mean
returns, the relative gain of the lookahead and a paired bootstrap 95%
interval of the per-episode difference. Writes DIR/metrics.json. Run it in
the simple world with --gin_file configs/world_simple.gin.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import gin  # noqa: E402

from simulator import runs  # noqa: E402

runs.define_common_flags(default_gin_files=["configs/world.gin"])
flags.DEFINE_integer("num_episodes", 4000, "Episodes per policy.")
flags.DEFINE_integer("batch_size", 256, "Listeners simulated at once.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  import numpy as np  # pylint: disable=g-import-not-at-top
  from agents.baselines import make_baseline_policy  # pylint: disable=g-import-not-at-top
  from agents.oracle import OraclePolicy  # pylint: disable=g-import-not-at-top
  from simulator.builder import EnvironmentBuilder  # pylint: disable=g-import-not-at-top
  from simulator.rollout import run_policy  # pylint: disable=g-import-not-at-top
  runs.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings)
  # Same episodes for every policy, so the difference is paired.
  gin.bind_parameter("PlaylistEnvironment.common_random_numbers", True)
  returns, metrics = {}, {"num_episodes": FLAGS.num_episodes,
                          "seed": FLAGS.seed, "policies": {}}
  for name in ("random", "greedy", "lookahead"):
    env = EnvironmentBuilder().get_py_env(batch_size=FLAGS.batch_size,
                                          seed=FLAGS.seed)
    if name == "random":
      policy = make_baseline_policy("random", env.time_step_spec(),
                                    env.action_spec(), env.environment.catalog,
                                    seed=FLAGS.seed)
    else:
      policy = OraclePolicy(env.environment, env.environment.user_model,
                            lookahead=name == "lookahead")
    stats = run_policy(env, policy, FLAGS.num_episodes)
    returns[name] = stats.returns
    metrics["policies"][name] = stats.summary()
  rng = np.random.default_rng(FLAGS.seed)
  g, l = returns["greedy"], returns["lookahead"]
  paired = l - g
  means = paired[rng.integers(0, len(paired), (2000, len(paired)))].mean(1)
  low, high = np.quantile(means, [0.025, 0.975])
  metrics.update(greedy_mean_return=float(g.mean()),
                 lookahead_mean_return=float(l.mean()),
                 relative_gain=float(l.mean() / g.mean() - 1.0),
                 difference_ci95=[float(low), float(high)])
  runs.write_run_files(FLAGS.root_dir, metrics)
  for name, r in returns.items():
    print(f"{name:<10} mean return {r.mean():7.3f}")
  print(f"lookahead vs greedy: {100 * metrics['relative_gain']:+.1f}% "
        f"(paired difference {paired.mean():+.3f}, 95% CI [{low:+.3f}, "
        f"{high:+.3f}])")


if __name__ == "__main__":
  app.run(main)
