"""How fast, and in how much memory, logs in the public layout are read.

`write_public_layout` writes a session log and a track-feature file as the
public dataset ships them (CSV, the 21 session columns and 30 track columns
in the public order, booleans as `true`/`false`, dates as YYYY-MM-DD, every
reason value, sessions of 10 to 20 rows); the values are random, which does
not change the work of reading. `measure_read` reads them with
`playlist_sim.data.logs.read_tracks` and `read_sessions` (tracks checked against the
catalog, as training reads them) in a fresh Python process, so the peak
resident memory (`resource.getrusage`'s `ru_maxrss`) is the reading's and
not what the caller already holds (Linux's `VmHWM`, the peak of that
process alone); its peak after the imports alone (TensorFlow included,
which `simulator` imports) is reported beside it.

`scripts/benchmark.py --only read_logs` runs both at the public
`log_mini.csv` size (167,880 rows, 50,704 tracks) and at one real daily
file's size (3 million rows).
"""

import json
import os
import resource
import subprocess
import sys
import time
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from playlist_sim.data import logs

__all__ = ["REASONS", "measure_read", "write_public_layout"]

#: Every `hist_user_behavior_reason_*` value of the public data.
REASONS = ("trackdone", "fwdbtn", "backbtn", "endplay", "clickrow",
           "playbtn", "appload", "remote", "logout", "trackerror",
           "clickside", "uriopen", "popup")
_CONTEXTS = ("editorial_playlist", "user_collection", "catalog", "radio",
             "charts", "personalized_playlist")
# (skip_1, skip_2, skip_3, not_skipped) of the five outcomes.
_FLAGS = np.array([[1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0],
                   [0, 0, 0, 1]], bool)
_MODULE_DIR = os.path.dirname(os.path.abspath(__file__))


def _ids(rng: np.random.Generator, n: int, prefix: str) -> np.ndarray:
  """n ids in the public style, e.g. t_0479f24c-27d2-46d6-a00c-7ec928f2b539."""
  raw = rng.bytes(16 * n)
  return np.array(
      [f"{prefix}{uuid.UUID(bytes=raw[16 * i:16 * i + 16], version=4)}"
       for i in range(n)], dtype=object)


def _tracks_table(rng: np.random.Generator, num_tracks: int) -> pa.Table:
  columns = {}
  for name, dtype in logs.TRACK_DTYPES.items():
    if name == "track_id":
      columns[name] = _ids(rng, num_tracks, "t_")
    elif name == "mode":
      columns[name] = np.where(rng.random(num_tracks) < 0.6, "major",
                               "minor").astype(object)
    elif dtype == pa.int64():
      columns[name] = rng.integers(1, 12, num_tracks)
    else:
      columns[name] = rng.standard_normal(num_tracks)
  return pa.table(columns)


def _sessions_table(rng: np.random.Generator, num_rows: int,
                    track_ids: np.ndarray) -> pa.Table:
  lengths = rng.integers(10, 21, num_rows // 10 + 1)
  lengths = lengths[:int(np.searchsorted(np.cumsum(lengths), num_rows)) + 1]
  lengths[-1] -= max(int(lengths.sum()) - num_rows, 0)  # Exactly num_rows.
  n, s = int(lengths.sum()), len(lengths)
  session = np.repeat(np.arange(s), lengths)
  start = np.repeat(np.cumsum(lengths) - lengths, lengths)
  flags = _FLAGS[rng.choice(5, n, p=(0.4, 0.1, 0.1, 0.05, 0.35))]
  pause = rng.choice(3, n, p=(0.8, 0.1, 0.1))
  small = lambda high: rng.integers(0, high, n)  # noqa: E731
  return pa.table({
      "session_id": _ids(rng, s, "0_")[session],
      "session_position": np.arange(n) - start + 1,
      "session_length": lengths[session],
      "track_id_clean": track_ids[rng.integers(len(track_ids), size=n)],
      "skip_1": flags[:, 0], "skip_2": flags[:, 1], "skip_3": flags[:, 2],
      "not_skipped": flags[:, 3], "context_switch": small(2),
      "no_pause_before_play": (pause == 0).astype(np.int64),
      "short_pause_before_play": (pause == 1).astype(np.int64),
      "long_pause_before_play": (pause == 2).astype(np.int64),
      "hist_user_behavior_n_seekfwd": small(3),
      "hist_user_behavior_n_seekback": small(3),
      "hist_user_behavior_is_shuffle": rng.random(s)[session] < 0.3,
      "hour_of_day": rng.integers(0, 24, s)[session],
      "date": pa.array(np.datetime64("2018-07-15") + np.zeros(n, int),
                       pa.date32()),
      "premium": rng.random(s)[session] < 0.8,
      "context_type": np.array(_CONTEXTS, object)[
          rng.integers(0, len(_CONTEXTS), s)][session],
      "hist_user_behavior_reason_start": np.array(REASONS, object)[
          small(len(REASONS))],
      "hist_user_behavior_reason_end": np.array(REASONS, object)[
          small(len(REASONS))]})


def write_public_layout(root_dir: str, num_rows: int, num_tracks: int,
                        seed: int = 0, name: str = "mini") -> tuple[str, str]:
  """Writes `log_<name>.csv` and `tf_<name>.csv` in the public layout.

  Args:
    root_dir: the folder to write into (created if needed).
    num_rows: session-log rows (sessions of 10 to 20 rows; the last one
      may be shorter so the total is exact).
    num_tracks: tracks in the track file (every logged track is one).
    seed: seed of the random values.
    name: file-name part, as in the public `log_mini.csv`/`tf_mini.csv`.

  Returns:
    (sessions_path, tracks_path).

  Raises:
    ValueError: for fewer than 1 row or track.
  """
  if num_rows < 1 or num_tracks < 1:
    raise ValueError(f"num_rows and num_tracks must be >= 1, got {num_rows} "
                     f"and {num_tracks}")
  os.makedirs(root_dir, exist_ok=True)
  rng = np.random.default_rng(seed)
  tracks = _tracks_table(rng, num_tracks)
  sessions = _sessions_table(rng, num_rows,
                             tracks.column("track_id").to_numpy(
                                 zero_copy_only=False))
  paths = (os.path.join(root_dir, f"log_{name}.csv"),
           os.path.join(root_dir, f"tf_{name}.csv"))
  options = pacsv.WriteOptions(quoting_style="none")
  for table, path in zip((sessions, tracks), paths):
    pacsv.write_csv(table, path, options)
  return paths


def _peak_rss_kib() -> int:
  """This process's peak resident memory, in KiB.

  Linux's `VmHWM` is the peak of this program only; `ru_maxrss` (the
  fallback elsewhere) also keeps the peak of the process that started it,
  carried across exec.
  """
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1])
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _measure_here(sessions_path: str, tracks_path: str) -> dict:
  """Reads both files in this process: seconds and resident memory."""
  before_kib = _peak_rss_kib()
  start = time.perf_counter()
  catalog = logs.read_tracks(tracks_path)
  tracks_s = time.perf_counter() - start
  table = logs.read_sessions(sessions_path, catalog=catalog)
  total_s = time.perf_counter() - start
  peak_kib = _peak_rss_kib()
  return {"rows": table.num_rows, "columns": table.num_columns,
          "tracks": len(catalog.track_ids), "read_tracks_seconds": tracks_s,
          "read_sessions_seconds": total_s - tracks_s,
          "read_seconds": total_s,
          "sessions_file_mib": os.path.getsize(sessions_path) / 2**20,
          "rss_after_imports_mib": before_kib / 1024,
          "peak_rss_mib": peak_kib / 1024}


def measure_read(sessions_path: str, tracks_path: str) -> dict:
  """Reads the files in a fresh process and reports its time and memory.

  Args:
    sessions_path: the session log.
    tracks_path: the track features.

  Returns:
    {"rows", "columns", "tracks", "read_tracks_seconds",
    "read_sessions_seconds", "read_seconds", "sessions_file_mib",
    "rss_after_imports_mib", "peak_rss_mib"}.

  Raises:
    RuntimeError: if the reading process fails (its error is included).
  """
  code = ("import json, sys; from benchmarks import read_logs as b; "
          "print(json.dumps(b._measure_here(sys.argv[1], sys.argv[2])))")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  repo = os.path.dirname(_MODULE_DIR)
  env["PYTHONPATH"] = os.pathsep.join(
      [repo] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
  proc = subprocess.run([sys.executable, "-c", code, sessions_path,
                         tracks_path], capture_output=True, text=True,
                        env=env, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f"reading {sessions_path} failed:\n"
                       f"{proc.stderr[-3000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1])
