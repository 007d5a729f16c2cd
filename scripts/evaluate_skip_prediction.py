"""Scores a trained user model on the Sequential Skip Prediction Challenge's
task: predict skip_2 of every second-half track of its held-out sessions
from the first half (floor(length / 2) tracks).

    python scripts/evaluate_skip_prediction.py --logs_dir LOGS \
        --model DIR/user_model.keras --root_dir EVAL

Writes EVAL/skip_prediction.json (mean_average_accuracy and
first_prediction_accuracy of the model and of the "repeat the last
first-half skip" and "majority class" baselines; see
user_models/skip_prediction.py) and the gin config of the run. The sessions
scored are the model's held-out ones (its training's metrics.json); bind
skip_prediction_benchmark.split_by / holdout_fraction / split_seed to
choose others.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from simulator import runs  # noqa: E402

runs.define_common_flags(default_gin_files=[])
flags.DEFINE_string("logs_dir", None,
                    "Folder of the session log and track features.")
flags.DEFINE_string("model", None, "The trained .keras user model.")
flags.mark_flags_as_required(["logs_dir", "model"])
FLAGS = flags.FLAGS
RESULTS_FILE = "skip_prediction.json"


def main(argv):
  del argv
  from user_models.skip_prediction import skip_prediction_benchmark  # pylint: disable=g-import-not-at-top
  runs.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings)
  result = skip_prediction_benchmark(FLAGS.root_dir, FLAGS.logs_dir,
                                     FLAGS.model)
  result["seed"] = FLAGS.seed  # Nothing is drawn; recorded for the run.
  path = runs.write_run_files(FLAGS.root_dir, result, RESULTS_FILE)
  print(f"{result['num_sessions']} held-out sessions, "
        f"{result['num_predictions']} second-half tracks "
        f"(skip_2 rate {result['skip_2_rate']:.3f})")
  print(f"{'':<18} {'mean AA':>8} {'first acc':>9}")
  for name, scores in (
      (result["model_type"].upper(), result),
      ("repeat last skip", result["repeat_last_skip"]),
      ("majority class", result["majority_class"])):
    print(f"{name:<18} {scores['mean_average_accuracy']:>8.4f} "
          f"{scores['first_prediction_accuracy']:>9.4f}")
  print(f"wrote {path}")


if __name__ == "__main__":
  app.run(main)
