"""Trains and evaluates a playlist agent (AH-DQN or DQN).

    python scripts/train_agent.py --gin_file configs/ahdqn.gin --root_dir DIR
    python scripts/train_agent.py --gin_file configs/dqn.gin --root_dir DIR \
        --gin_bindings 'train_eval.num_iterations = 2000'

Writes TensorBoard summaries (DIR/train, DIR/eval), checkpoints
(DIR/checkpoint; rerunning with the same DIR resumes), the greedy policy as a
SavedModel (DIR/policy), DIR/metrics.json and the gin config of the run. See
`agents.train_eval.train_eval` for every hyperparameter.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from simulator import runs  # noqa: E402

runs.define_common_flags(default_gin_files=["configs/ahdqn.gin"])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from agents.train_eval import train_eval  # pylint: disable=g-import-not-at-top
  runs.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings)
  metrics = train_eval(FLAGS.root_dir, seed=FLAGS.seed)
  print(f"{metrics['agent']}: final eval return "
        f"{metrics['final_eval_return']:.3f} (best "
        f"{metrics['best_eval_return']:.3f}) after {metrics['global_step']} "
        f"train steps in {metrics['wall_time_s']:.0f} s; wrote "
        f"{FLAGS.root_dir}")
  for name, result in metrics["policies"].items():
    print(f"  {name:<17} {result['mean_return']:7.3f}  95% CI "
          f"[{result['ci_low']:.3f}, {result['ci_high']:.3f}]")
  for name, diff in metrics.get("differences", {}).items():
    low, high = diff["ci95"]
    print(f"  {metrics['agent']} - {name:<17} {diff['difference']:+7.3f}  "
          f"95% CI [{low:+.3f}, {high:+.3f}]  ({diff['gain']:+.1%})")


if __name__ == "__main__":
  app.run(main)
