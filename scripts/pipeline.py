"""The main job: every stage of the product, end to end, on the defaults.

    python scripts/pipeline.py --root_dir runs/pipeline [--quick]

world -> logs -> user model -> int8 -> AH-DQN and DQN -> evaluation. Prints
the summary table (every policy, simulator and world, 95% intervals), the
offline-online agreement, and where the report and each artefact went.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from simulator import runs  # noqa: E402

runs.define_common_flags(default_gin_files=["configs/world.gin"])
flags.DEFINE_bool("quick", False, "Smaller sizes (same code path).")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from simulator import pipeline  # pylint: disable=g-import-not-at-top
  runs.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings)
  summary = pipeline.run_pipeline(FLAGS.root_dir, quick=FLAGS.quick,
                                  seed=FLAGS.seed)
  runs.write_run_files(FLAGS.root_dir, summary)
  print(pipeline.format_summary(summary))
  for stage, path in summary["stages"].items():
    print(f"{stage:<12} -> {path}")
  print(f"seconds by stage: {summary['seconds']} (total "
        f"{summary['total_seconds']})")
  print(f"summary -> {os.path.join(FLAGS.root_dir, 'pipeline.json')}")
  print(f"report  -> {summary['stages']['report']}")


if __name__ == "__main__":
  app.run(main)
