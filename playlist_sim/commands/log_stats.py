"""A session log's statistics beside the public dataset's, within tolerance?

    playlist-sim log-stats --logs_dir runs/logs [--root_dir OUT]
    playlist-sim log-stats --sessions_path log_mini.csv \
        --tracks_path tf_mini.csv --root_dir OUT

Prints every statistic the calibrated world is held to (skip shares, skip_2
by position, session lengths, reason_end, context, premium, shuffle, context
switches, track-feature quartiles) beside the published MSSD figure shipped
with the package, each marked within tolerance or not (tolerances:
`playlist_sim/data/mssd_comparison.py`). Writes OUT/log_stats.json and
OUT/log_stats.png (skip_2 by position and session lengths, real beside
ours); OUT (--root_dir) defaults to the logs folder. Works on the real files as well:
name them with --sessions_path/--tracks_path when they are not
sessions.*/tracks.* in one folder. Without a tracks file the feature rows are
reported as not measured. Exit status 0 whatever the marks: it measures.
"""

import os

from absl import app
from absl import flags

from playlist_sim.data import logs
from playlist_sim.data import mssd_comparison
from playlist_sim.common import runs
from playlist_sim.common.io_utils import ensure_writable_dir
from playlist_sim.common.io_utils import write_json
from user_models.log_inputs import find_log_files
from playlist_sim.data.mssd_reference import load_mssd_reference

__all__ = ["main"]

# --root_dir: where log_stats.json and log_stats.png go (default: the logs
# folder, or the sessions file's folder). Nothing is drawn or configured, so
# --seed and the gin flags have no effect here.
runs.define_common_flags([])
flags.DEFINE_string("logs_dir", None, "Folder with sessions.* and tracks.*.")
flags.DEFINE_string("sessions_path", None,
                    "Session log file (overrides --logs_dir's sessions.*).")
flags.DEFINE_string("tracks_path", None,
                    "Track-feature file (overrides --logs_dir's tracks.*).")
FLAGS = flags.FLAGS


def _paths() -> tuple[str, str | None]:
  if FLAGS.logs_dir is None and FLAGS.sessions_path is None:
    raise app.UsageError("give --logs_dir, or --sessions_path (and "
                         "optionally --tracks_path)")
  sessions, tracks = FLAGS.sessions_path, FLAGS.tracks_path
  if FLAGS.logs_dir is not None and (sessions is None or tracks is None):
    found_sessions, found_tracks = find_log_files(FLAGS.logs_dir)
    sessions = sessions or found_sessions
    tracks = tracks or found_tracks
  return sessions, tracks


def _format(value) -> str:
  return "-" if value is None else f"{value:.4g}"


def main(argv):
  del argv
  sessions_path, tracks_path = _paths()
  catalog = logs.read_tracks(tracks_path) if tracks_path else None
  table = logs.read_sessions(sessions_path)
  reference = load_mssd_reference()
  stats = mssd_comparison.log_statistics(table, catalog)
  checks = mssd_comparison.compare_with_mssd(stats, reference)
  out_dir = FLAGS.root_dir or FLAGS.logs_dir or os.path.dirname(
      os.path.abspath(sessions_path))
  out_dir = ensure_writable_dir(out_dir)
  marks = {True: "ok", False: "OUT", None: "n/a"}
  print(f"{sessions_path}: {stats['sessions']} sessions, {stats['rows']} rows")
  print(f"{'statistic':<42} {'ours':>9} {'MSSD':>9}  tolerance      mark")
  for check in checks:
    print(f"{check['statistic']:<42} {_format(check['ours']):>9} "
          f"{_format(check['mssd']):>9}  {check['tolerance']:<14} "
          f"{marks[check['within']]}")
  measured = [c for c in checks if c["within"] is not None]
  within = sum(c["within"] for c in measured)
  print(f"{within} of {len(measured)} measured statistics within tolerance")
  result = {"sessions_path": sessions_path, "tracks_path": tracks_path,
            "reference_sources": reference["sources"],
            "statistics": stats, "checks": checks,
            "num_within": within, "num_measured": len(measured),
            "all_within": within == len(measured)}
  json_path = os.path.join(out_dir, "log_stats.json")
  write_json(json_path, result)
  png_path = os.path.join(out_dir, "log_stats.png")
  mssd_comparison.plot_comparison(stats, reference, png_path)
  print(f"wrote {json_path} and {png_path}")

