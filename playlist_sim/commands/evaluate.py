r"""Evaluates policies offline (learned simulator, logged data) and online.

    playlist-sim evaluate --root_dir runs/eval --logs_dir runs/logs \
        --user_model runs/quantized/user_model.int8.tflite \
        --policy ahdqn=runs/ahdqn/policy --policy dqn=runs/dqn/policy

Writes root_dir/evaluation.json and root_dir/report.md (with PNG plots),
root_dir/run.json, and prints the summary table. Sizes and policies:
configs/evaluate.gin.
"""

import os

from absl import flags

from playlist_sim.common import runs
from playlist_sim.evaluation import evaluate

__all__ = ["DEFAULT_GIN_FILES", "INPUTS", "KIND", "run"]

KIND = "evaluate"
DEFAULT_GIN_FILES = ["configs/evaluate.gin"]
INPUTS = ("logs_dir",)

runs.define_common_flags(DEFAULT_GIN_FILES)
flags.DEFINE_string("logs_dir", "runs/logs", "Logs (sessions.parquet, "
                    "tracks.parquet) whose held-out sessions are evaluated.")
flags.DEFINE_string("user_model", "runs/quantized/user_model.int8.tflite",
                    "The learned simulator (.tflite or .keras).")
flags.DEFINE_multi_string("policy", [], "Saved policies as name=folder "
                          "(a train-agent root_dir/policy).")


def run(values: flags.FlagValues, run_folder: runs.RunFolder) -> None:
  """Evaluates and prints the summary table and the report's path."""
  result = evaluate.evaluate_policies(
      run_folder.root_dir, values.logs_dir, values.user_model,
      saved_policies=evaluate.parse_policy_flags(values.policy), seed=values.seed)
  runs.write_run_files(run_folder.root_dir, {
      "evaluation": os.path.join(values.root_dir, "evaluation.json"),
      "wall_seconds": result["wall_seconds"]})
  print(evaluate.format_table(result))
  if result["report"]:  # None with evaluate_policies.report = False.
    print(f"report -> {result['report']['report']}")
