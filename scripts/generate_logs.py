"""Writes historical session logs from a logging policy in the listener world.

    python scripts/generate_logs.py --root_dir LOGS [--format csv] \
        [--gin_file configs/world.gin] [--gin_bindings 'generate_logs.num_sessions = 50000']

Writes LOGS/sessions.parquet and LOGS/tracks.parquet (public schema plus
user_id, play_mode_id and propensity), LOGS/metrics.json (a log summary,
including the data-driven consecutive-skip limit) and the gin config.

Selection: like the public dataset, the calibrated world (configs/world.gin,
the default) keeps only sessions of at least 10 tracks and cuts longer ones at
20 (`generate_logs.min_session_length = 10`, `max_session_length = 20`);
--num_sessions counts kept sessions. --min_session_length 1
--max_session_length 0 turns the selection off; configs/world_simple.gin has
it off.

Every file appears whole or not at all. A run killed part way is simply run
again: it starts over and writes the same bytes (generation is deterministic
in the seed). A second run on a finished LOGS refuses unless --overwrite.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from simulator import runs  # noqa: E402

runs.define_common_flags(default_gin_files=["configs/world.gin"])
flags.DEFINE_enum("format", "parquet", ["parquet", "csv"], "File format.")
flags.DEFINE_integer(
    "min_session_length", None,
    "Drop sessions shorter than this (default: the gin config's; the "
    "calibrated world keeps sessions of >= 10 tracks, as the public data).")
flags.DEFINE_integer(
    "max_session_length", None,
    "Cut kept sessions after this many tracks, 0 for no cut (default: the "
    "gin config's; the calibrated world cuts at 20, as the public data).")
flags.DEFINE_bool("overwrite", False,
                  "Regenerate the logs if root_dir holds a finished run.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from simulator import log_generation  # pylint: disable=g-import-not-at-top
  runs.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings)
  if log_generation.prepare_log_dir(FLAGS.root_dir, FLAGS.format,
                                    FLAGS.overwrite):
    print(f"{FLAGS.root_dir} holds an unfinished run: starting over")
  selection = {}
  if FLAGS.min_session_length is not None:
    selection["min_session_length"] = FLAGS.min_session_length
  if FLAGS.max_session_length is not None:
    selection["max_session_length"] = FLAGS.max_session_length or None
  summary = log_generation.generate_logs(FLAGS.root_dir, seed=FLAGS.seed,
                                         file_format=FLAGS.format,
                                         **selection)
  runs.write_run_files(FLAGS.root_dir, summary)
  cut = summary["max_session_length"]
  print(f"selection: sessions of >= {summary['min_session_length']} tracks"
        f"{f', cut at {cut}' if cut else ''} ({summary['sessions_simulated']} "
        "simulated)")
  print(f"{summary['num_sessions']} sessions, {summary['num_rows']} tracks, "
        f"skip rate {summary['skip_rate']:.3f}, consecutive-skip limit "
        f"(92%) {summary['consecutive_skip_limit']}; wrote "
        f"{summary['sessions_path']} and {summary['tracks_path']}")


if __name__ == "__main__":
  app.run(main)
