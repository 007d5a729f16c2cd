r"""Writes historical session logs from a logging policy in the listener world.

    playlist-sim generate-logs --root_dir LOGS [--format csv] \
        [--gin_file world] [--gin_bindings 'generate_logs.num_sessions = 50000']

Writes LOGS/sessions.parquet and LOGS/tracks.parquet (public schema plus
user_id, play_mode_id and propensity), LOGS/metrics.json (a log summary,
including the data-driven consecutive-skip limit), the gin config and
LOGS/run.json.

Selection: like the public dataset, the calibrated world (configs/world.gin,
the default) keeps only sessions of at least 10 tracks and cuts longer ones at
20 (`generate_logs.min_session_length = 10`, `max_session_length = 20`);
--num_sessions counts kept sessions. --min_session_length 1
--max_session_length 0 turns the selection off; configs/world_simple.gin has
it off.

Every file appears whole or not at all. A run killed part way is simply run
again: it starts over and writes the same bytes (generation is deterministic
in the seed). Run again on its finished LOGS, it says so and changes nothing;
--overwrite generates the logs again.
"""

from absl import flags

from playlist_sim.jobs import log_generation
from playlist_sim.common import runs

__all__ = ["DEFAULT_GIN_FILES", "KIND", "run"]

KIND = "generate_logs"
DEFAULT_GIN_FILES = ["configs/world.gin"]

runs.define_common_flags(DEFAULT_GIN_FILES)
flags.DEFINE_enum("format", "parquet", ["parquet", "csv"], "File format.")
flags.DEFINE_integer(
    "min_session_length", None,
    "Drop sessions shorter than this (default: the gin config's; the "
    "calibrated world keeps sessions of >= 10 tracks, as the public data).")
flags.DEFINE_integer(
    "max_session_length", None,
    "Cut kept sessions after this many tracks, 0 for no cut (default: the "
    "gin config's; the calibrated world cuts at 20, as the public data).")


def run(values: flags.FlagValues, run_folder: runs.RunFolder) -> None:
  """Generates the logs and prints their summary."""
  if log_generation.prepare_log_dir(run_folder.root_dir, values.format,
                                    values.overwrite):
    print(f"{values.root_dir} holds an unfinished run: starting over")
  selection = {}
  if values.min_session_length is not None:
    selection["min_session_length"] = values.min_session_length
  if values.max_session_length is not None:
    selection["max_session_length"] = values.max_session_length or None
  summary = log_generation.generate_logs(run_folder.root_dir,
                                         seed=values.seed,
                                         file_format=values.format,
                                         **selection)
  runs.write_run_files(run_folder.root_dir, summary)
  cut = summary["max_session_length"]
  print(f"selection: sessions of >= {summary['min_session_length']} tracks"
        f"{f', cut at {cut}' if cut else ''} ({summary['sessions_simulated']} "
        "simulated)")
  print(f"{summary['num_sessions']} sessions, {summary['num_rows']} tracks, "
        f"skip rate {summary['skip_rate']:.3f}, consecutive-skip limit "
        f"(92%) {summary['consecutive_skip_limit']}; wrote "
        f"{summary['sessions_path']} and {summary['tracks_path']}")
