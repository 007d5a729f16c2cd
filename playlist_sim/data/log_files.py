"""The layout of a logs folder: which files are its session log and tracks.

A logs folder holds one session log and one track-feature file. They are
found by name (`LOG_FILE_PATTERNS`), so a folder written by
`scripts/generate_logs.py` and a folder holding the public dataset's files
as they ship (`log_mini.csv`, `tf_mini.csv`) both read without renaming.
No TensorFlow here: the evaluation and training code share it.
"""

import glob
import os

__all__ = ["LOG_FILE_PATTERNS", "find_log_files"]


#: The names a logs folder's two files may have, tried in order: the names
#: `scripts/generate_logs.py` writes, then the public dataset's (its session
#: logs are `log_*.csv`, e.g. `log_mini.csv`; its track features `tf_*.csv`,
#: e.g. `tf_mini.csv`), so a folder holding those reads as it is.
LOG_FILE_PATTERNS = {
    "sessions": ("sessions.parquet", "sessions.pq", "sessions.csv",
                 "sessions.csv.gz", "log_*.csv", "log_*.csv.gz",
                 "log_*.parquet"),
    "tracks": ("tracks.parquet", "tracks.pq", "tracks.csv", "tracks.csv.gz",
               "tf_*.csv", "tf_*.csv.gz", "tf_*.parquet"),
}


def find_log_files(logs_dir: str) -> tuple[str, str]:
  """The session log and track features of a logs folder.

  Each file is the first name of `LOG_FILE_PATTERNS` that the folder holds:
  `sessions.*`/`tracks.*` (Parquet first) as generated, else the public
  dataset's `log_*.csv`/`tf_*.csv`.

  Args:
    logs_dir: a folder written by `scripts/generate_logs.py`, or holding
      the public dataset's files (e.g. `log_mini.csv` and `tf_mini.csv`).

  Returns:
    (sessions_path, tracks_path).

  Raises:
    FileNotFoundError: if either file is missing (the message lists the
      names looked for).
    ValueError: if a public-style name matches several files (e.g. two
      daily `log_*.csv` files): one logs folder holds one session log.
  """
  found = []
  for kind, patterns in LOG_FILE_PATTERNS.items():
    for pattern in patterns:
      matches = sorted(glob.glob(os.path.join(glob.escape(logs_dir),
                                              pattern)))
      matches = [m for m in matches if os.path.isfile(m)]
      if len(matches) > 1:
        raise ValueError(
            f"{len(matches)} files in {logs_dir!r} match {pattern!r} "
            f"({[os.path.basename(m) for m in matches]}): a logs folder "
            f"holds one {kind} file; move the others out or name the one "
            f"to use {kind}.csv")
      if matches:
        found.append(matches[0])
        break
    else:
      raise FileNotFoundError(
          f"no {kind} file in {logs_dir!r} (looked for "
          f"{', '.join(patterns)}); generate logs with "
          "scripts/generate_logs.py --root_dir LOGS, or put the public "
          "dataset's log_*.csv and tf_*.csv files there")
  return found[0], found[1]
