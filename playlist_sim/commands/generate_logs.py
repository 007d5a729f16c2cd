r"""Writes historical session logs from a logging policy in the listener world.

    playlist-sim generate-logs --root_dir LOGS [--format csv] \
        [--gin_file world] [--gin_bindings 'generate_logs.num_sessions = 50000']

Writes LOGS/sessions.parquet and LOGS/tracks.parquet (public schema plus
user_id, play_mode_id and propensity), LOGS/metrics.json (a log summary,
including the data-driven consecutive-skip limit), the gin config and
LOGS/run.json.

Every file appears whole or not at all. A run killed part way is simply run
again: it starts over and writes the same bytes (generation is deterministic
in the seed). Run again on its finished LOGS, it says so and changes nothing;
--overwrite generates the logs again.
"""

from absl import flags

from simulator import log_generation
from simulator import runs

__all__ = ["DEFAULT_GIN_FILES", "KIND", "run"]

KIND = "generate_logs"
DEFAULT_GIN_FILES = ["configs/world.gin"]

runs.define_common_flags(DEFAULT_GIN_FILES)
flags.DEFINE_enum("format", "parquet", ["parquet", "csv"], "File format.")


def run(values: flags.FlagValues, run_folder: runs.RunFolder) -> None:
  """Generates the logs and prints their summary."""
  if log_generation.prepare_log_dir(run_folder.root_dir, values.format,
                                    values.overwrite):
    print(f"{values.root_dir} holds an unfinished run: starting over")
  summary = log_generation.generate_logs(run_folder.root_dir,
                                         seed=values.seed,
                                         file_format=values.format)
  runs.write_run_files(run_folder.root_dir, summary)
  print(f"{summary['num_sessions']} sessions, {summary['num_rows']} tracks, "
        f"skip rate {summary['skip_rate']:.3f}, consecutive-skip limit "
        f"(92%) {summary['consecutive_skip_limit']}; wrote "
        f"{summary['sessions_path']} and {summary['tracks_path']}")
