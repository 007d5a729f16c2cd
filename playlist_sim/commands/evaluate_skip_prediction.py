r"""Scores a trained user model on the Skip Prediction Challenge's task.

    playlist-sim evaluate-skip-prediction --logs_dir LOGS \
        --model DIR/user_model.keras --root_dir EVAL

Predicts skip_2 of every second-half track of the model's held-out sessions
from the first half (floor(length / 2) tracks), as the Sequential Skip
Prediction Challenge did. Writes EVAL/skip_prediction.json
(mean_average_accuracy and first_prediction_accuracy of the model and of the
"repeat the last first-half skip" and "majority class" baselines; see
`user_models.skip_prediction`), the gin config of the run and EVAL/run.json.
The sessions scored are the model's held-out ones (its training's
metrics.json); bind skip_prediction_benchmark.split_by / holdout_fraction /
split_seed to choose others.
"""

from absl import flags

from playlist_sim.common import runs
from user_models.skip_prediction import skip_prediction_benchmark

__all__ = ["DEFAULT_GIN_FILES", "INPUTS", "KIND", "RESULTS_FILE", "run"]

KIND = "evaluate_skip_prediction"
DEFAULT_GIN_FILES: list[str] = []
INPUTS = ("logs_dir",)
RESULTS_FILE = "skip_prediction.json"

runs.define_common_flags(DEFAULT_GIN_FILES)
flags.DEFINE_string("logs_dir", None,
                    "Folder of the session log and track features.")
flags.DEFINE_string("model", None, "The trained .keras user model.")
flags.mark_flags_as_required(["logs_dir", "model"])


def run(values: flags.FlagValues, run_folder: runs.RunFolder) -> None:
  """Scores the model and prints it beside the baselines."""
  result = skip_prediction_benchmark(run_folder.root_dir, values.logs_dir,
                                     values.model)
  result["seed"] = values.seed  # Nothing is drawn; recorded for the run.
  path = runs.write_run_files(run_folder.root_dir, result, RESULTS_FILE)
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
