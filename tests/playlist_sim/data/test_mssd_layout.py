"""Logs in the public MSSD layout, as the dataset ships them, read whole.

The fixture (tests/fixtures/, README.md there) has all five outcome
states, every reason value of the real data, both spellings of booleans,
real-style ids and 10-20 rows per session.
"""

import csv
import os
import shutil

import numpy as np
import pytest

from playlist_sim.data import log_stats
from playlist_sim.data import logs
from playlist_sim.data.sessions import LoggedSessions
from user_models import log_inputs
from tests.conftest import REPO_ROOT
from user_models.base import PUBLIC_RESPONSE_LEVELS

DATA = os.path.join(REPO_ROOT, "tests", "fixtures")
SESSIONS = os.path.join(DATA, "mssd_layout_sessions.csv")
TRACKS = os.path.join(DATA, "mssd_layout_tracks.csv")
REAL_REASONS = {"trackdone", "fwdbtn", "backbtn", "endplay", "clickrow",
                "playbtn", "appload", "remote", "logout", "trackerror",
                "clickside", "uriopen", "popup"}


def _raw_rows(path=SESSIONS):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def _truth(text):
  return text.lower() == "true"


def _level_by_hand(row):
  """The README's rule, from the text: earliest skip flag, else listen,
  else (no flag) ended otherwise."""
  for level, name in enumerate(("skip_1", "skip_2", "skip_3")):
    if _truth(row[name]):
      return level
  return 4 if _truth(row["not_skipped"]) else 3


def test_fixture_is_in_the_public_layout():
  rows = _raw_rows()
  assert tuple(rows[0]) == logs.SESSION_COLUMNS
  with open(TRACKS, newline="") as f:
    assert tuple(next(csv.reader(f))) == tuple(logs.TRACK_DTYPES)
  lengths = {r["session_id"]: int(r["session_length"]) for r in rows}
  assert min(lengths.values()) >= 10 and max(lengths.values()) <= 20
  assert {_level_by_hand(r) for r in rows} == set(range(5))
  for column in ("hist_user_behavior_reason_start",
                 "hist_user_behavior_reason_end"):
    assert {r[column] for r in rows} == REAL_REASONS
  spellings = {r[c] for r in rows for c in ("skip_1", "premium")}
  assert spellings == {"true", "false", "True", "False"}
  assert {r["context_switch"] for r in rows} == {"0", "1"}
  assert rows[0]["session_id"].startswith("0_")
  assert rows[0]["track_id_clean"].startswith("t_")


def test_every_row_reads_with_the_stated_levels_and_skip_2():
  catalog = logs.read_tracks(TRACKS)
  table = logs.read_sessions(SESSIONS, catalog=catalog)
  rows = _raw_rows()
  assert table.num_rows == len(rows)
  assert table.column_names == list(logs.SESSION_COLUMNS)
  # The reader groups rows by session; match them back by key.
  by_key = {(r["session_id"], int(r["session_position"])): r for r in rows}
  keys = zip(table.column("session_id").to_pylist(),
             table.column("session_position").to_pylist())
  raw = [by_key[k] for k in keys]
  levels = log_stats.response_levels(table)
  np.testing.assert_array_equal(levels, [_level_by_hand(r) for r in raw])
  skip_2 = table.column("skip_2").to_numpy(zero_copy_only=False)
  np.testing.assert_array_equal(skip_2, [_truth(r["skip_2"]) for r in raw])
  np.testing.assert_array_equal(skip_2, levels <= log_stats.SKIP_2)
  assert PUBLIC_RESPONSE_LEVELS[log_stats.ENDED_OTHERWISE] == (
      "ended_otherwise")
  for column in ("hist_user_behavior_reason_start",
                 "hist_user_behavior_reason_end", "context_type",
                 "track_id_clean", "session_id"):
    assert table.column(column).to_pylist() == [r[column] for r in raw]
  assert str(table.column("date")[0].as_py()) == raw[0]["date"]
  # Mode is text in the public track file.
  assert set(np.unique(catalog.columns["mode"])) == {"major", "minor"}


@pytest.mark.parametrize("flags, column", [
    (("true", "false", "true", "false"), "skip_2"),
    (("false", "true", "false", "false"), "skip_3"),
    (("False", "False", "True", "True"), "not_skipped")])
def test_impossible_rows_still_raise_the_named_error(tmp_path, flags,
                                                     column):
  rows = _raw_rows()
  bad = rows[7]
  bad.update(zip(("skip_1", "skip_2", "skip_3", "not_skipped"), flags))
  path = tmp_path / "log_bad.csv"
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  with pytest.raises(logs.LogFormatError) as e:
    logs.read_sessions(path)
  message = str(e.value)
  assert f"column {column!r}" in message
  assert bad["session_id"] in message
  assert "impossible skip flags" in message


def test_taste_profiles_count_only_not_skipped_rows_as_listens():
  data = LoggedSessions.load(SESSIONS, TRACKS, holdout_fraction=0.2)
  profiles = data.taste_profiles(leave_session_out=False)
  vectors = np.stack([data.catalog.columns[f"acoustic_vector_{i}"]
                      for i in range(8)], axis=1)
  # A training session with a row that ended otherwise (not a listen).
  ended = np.bincount(data.bounds.session_index,
                      data.levels == log_stats.ENDED_OTHERWISE) > 0
  s = int(np.flatnonzero(~data.held_out & ended)[0])
  rows = np.arange(*data.bounds.offsets[s:s + 2])
  listens = rows[data.levels[rows] == log_stats.LISTEN_LEVEL]
  np.testing.assert_allclose(
      profiles[s], vectors[data.track_rows[listens]].mean(axis=0), atol=1e-5)


def test_a_folder_with_the_public_file_names_is_a_logs_folder(tmp_path):
  shutil.copy(SESSIONS, tmp_path / "log_mini.csv")
  shutil.copy(TRACKS, tmp_path / "tf_mini.csv")
  assert log_inputs.find_log_files(str(tmp_path)) == (
      str(tmp_path / "log_mini.csv"), str(tmp_path / "tf_mini.csv"))
  inputs = log_inputs.prepare_inputs(str(tmp_path))
  assert inputs.data.bounds.num_sessions == len(
      {r["session_id"] for r in _raw_rows()})
  shutil.copy(SESSIONS, tmp_path / "log_0_20180715_000000000000.csv")
  with pytest.raises(ValueError, match="2 files .* match 'log_\\*.csv'"):
    log_inputs.find_log_files(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="tf_\\*.csv"):
    log_inputs.find_log_files(str(tmp_path / "nowhere"))
