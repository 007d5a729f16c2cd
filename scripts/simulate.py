"""Runs a policy in the simulator and writes episodes and metrics.

    python scripts/simulate.py --gin_file configs/simulate.gin \
        --policy random --num_episodes 200 --seed 0 --root_dir DIR

Writes DIR/episodes.parquet (one row per track heard), DIR/metrics.json and
the gin config of the run.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from simulator import runs  # noqa: E402

runs.define_common_flags(default_gin_files=["configs/simulate.gin"])
flags.DEFINE_string("policy", "random", "Policy to run: random, popularity.")
flags.DEFINE_integer("num_episodes", 200, "Episodes to simulate.")
flags.DEFINE_integer("batch_size", 32, "Listeners simulated at once.")
flags.DEFINE_bool("track_episodes", True, "Write DIR/episodes.parquet.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from simulator.simulate import simulate  # pylint: disable=g-import-not-at-top
  runs.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings)
  metrics = simulate(FLAGS.root_dir, policy=FLAGS.policy,
                     num_episodes=FLAGS.num_episodes,
                     batch_size=FLAGS.batch_size, seed=FLAGS.seed,
                     track_episodes=FLAGS.track_episodes)
  print(f"mean return {metrics['mean_return']:.3f}, mean length "
        f"{metrics['mean_length']:.2f}, skip rate {metrics['skip_rate']:.3f}; "
        f"wrote {FLAGS.root_dir}")


if __name__ == "__main__":
  app.run(main)
