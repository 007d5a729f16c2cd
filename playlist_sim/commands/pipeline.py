"""The main job: every stage of the product, end to end, on the defaults.

    playlist-sim pipeline --root_dir runs/pipeline [--quick]

world -> logs -> user model -> int8 -> AH-DQN and DQN -> evaluation. Shows
each stage (n of N, elapsed, ETA) as it runs, reuses the stages a previous
run finished (a rerun after Ctrl-C or a kill resumes; --overwrite runs every
stage again), then prints the summary
table (every policy, simulator and world, 95% intervals), the
offline-online agreement, and where the report and each artefact went.
"""

import os

from absl import flags

from playlist_sim.jobs import pipeline
from playlist_sim.common import runs

__all__ = ["DEFAULT_GIN_FILES", "KIND", "run"]

KIND = "pipeline"
DEFAULT_GIN_FILES = ["configs/world.gin"]

runs.define_common_flags(DEFAULT_GIN_FILES)
flags.DEFINE_bool("quick", False, "Smaller sizes (same code path).")


def run(values: flags.FlagValues, run_folder: runs.RunFolder) -> None:
  """Runs every stage and prints the summary and artefact paths."""
  summary = pipeline.run_pipeline(run_folder.root_dir, quick=values.quick,
                                  seed=values.seed, overwrite=values.overwrite)
  runs.write_run_files(run_folder.root_dir, summary)
  print(pipeline.format_summary(summary))
  for stage, path in summary["stages"].items():
    print(f"{stage:<12} -> {path}")
  print(f"seconds by stage: {summary['seconds']} (total "
        f"{summary['total_seconds']})")
  print(f"summary -> {os.path.join(values.root_dir, 'pipeline.json')}")
  print(f"report  -> {summary['stages']['report']}")
