"""Evaluates policies offline (learned simulator, logged data) and online.

    python scripts/evaluate.py --root_dir runs/eval --logs_dir runs/logs \
        --user_model runs/quantized/user_model.int8.tflite \
        --policy ahdqn=runs/ahdqn/policy --policy dqn=runs/dqn/policy

Writes root_dir/evaluation.json and root_dir/report.md (with PNG plots) and
prints the summary table. Sizes and policies: configs/evaluate.gin.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from simulator import runs  # noqa: E402

runs.define_common_flags(default_gin_files=["configs/evaluate.gin"])
flags.DEFINE_string("logs_dir", "runs/logs", "Logs (sessions.parquet, "
                    "tracks.parquet) whose held-out sessions are evaluated.")
flags.DEFINE_string("user_model", "runs/quantized/user_model.int8.tflite",
                    "The learned simulator (.tflite or .keras).")
flags.DEFINE_multi_string("policy", [], "Saved policies as name=folder "
                          "(a train_eval root_dir/policy).")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from simulator.evaluation import evaluate  # pylint: disable=g-import-not-at-top
  runs.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings)
  saved = evaluate.parse_policy_flags(FLAGS.policy)
  result = evaluate.evaluate_policies(FLAGS.root_dir, FLAGS.logs_dir,
                                      FLAGS.user_model, saved_policies=saved,
                                      seed=FLAGS.seed)
  runs.write_run_files(FLAGS.root_dir, {"evaluation": os.path.join(
      FLAGS.root_dir, "evaluation.json"), "wall_seconds":
      result["wall_seconds"]})
  print(evaluate.format_table(result))
  if result["report"]:  # None with evaluate_policies.report = False.
    print(f"report -> {result['report']['report']}")


if __name__ == "__main__":
  app.run(main)
