"""Tests for playlist_sim.data.logs and playlist_sim.data.log_stats: schema, I/O, stats."""

import datetime
import gzip
import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from playlist_sim.data import log_stats
from playlist_sim.data import logs
from user_models import PUBLIC_RESPONSE_LEVELS
from user_models import SyntheticWorld
from user_models import TRACK_FEATURE_COLUMNS

# The public dataset's session-log columns and types (GUIDE §3), written out
# here rather than imported so that a change to the schema fails a test.
PUBLIC_SCHEMA = (
    ("session_id", pa.string()), ("session_position", pa.int64()),
    ("session_length", pa.int64()), ("track_id_clean", pa.string()),
    ("skip_1", pa.bool_()), ("skip_2", pa.bool_()), ("skip_3", pa.bool_()),
    ("not_skipped", pa.bool_()), ("context_switch", pa.int64()),
    ("no_pause_before_play", pa.int64()),
    ("short_pause_before_play", pa.int64()),
    ("long_pause_before_play", pa.int64()),
    ("hist_user_behavior_n_seekfwd", pa.int64()),
    ("hist_user_behavior_n_seekback", pa.int64()),
    ("hist_user_behavior_is_shuffle", pa.bool_()),
    ("hour_of_day", pa.int64()), ("date", pa.date32()),
    ("premium", pa.bool_()), ("context_type", pa.string()),
    ("hist_user_behavior_reason_start", pa.string()),
    ("hist_user_behavior_reason_end", pa.string()),
)
EXTRA_SCHEMA = (("user_id", pa.int64()), ("play_mode_id", pa.int64()),
                ("propensity", pa.float64()))

# Response levels per session: 0 skip_1, 1 skip_2, 2 skip_3, 3 ended
# otherwise (no flag set), 4 listened.
LEVELS = {"s1": [4, 0, 1], "s2": [2, 4, 3, 0, 0], "s3": [1, 1]}

# Verbatim in the public files' style: unquoted, true/false, YYYY-MM-DD.
PUBLIC_CSV = """\
session_id,session_position,session_length,track_id_clean,skip_1,skip_2,skip_3,not_skipped,context_switch,no_pause_before_play,short_pause_before_play,long_pause_before_play,hist_user_behavior_n_seekfwd,hist_user_behavior_n_seekback,hist_user_behavior_is_shuffle,hour_of_day,date,premium,context_type,hist_user_behavior_reason_start,hist_user_behavior_reason_end
0_00006f66-33e5-4de7-a324-2d18e439fc1e,1,2,t_0000001,false,false,false,true,0,0,0,0,0,0,true,16,2018-07-15,true,editorial_playlist,trackdone,trackdone
0_00006f66-33e5-4de7-a324-2d18e439fc1e,2,2,t_0000002,true,true,true,false,0,1,0,0,0,0,true,16,2018-07-15,true,editorial_playlist,trackdone,fwdbtn
0_00079a23-1600-486a-91bd-5208be0c745a,1,1,t_0000003,false,true,true,false,1,0,0,1,2,0,false,23,2018-07-14,false,user_collection,clickrow,endplay
"""


@pytest.fixture(scope="module")
def catalog():
  return SyntheticWorld(num_tracks=50, num_users=10, seed=3).catalog


def session_columns(levels=None, extras=True) -> dict:
  """Plain Python columns of a small valid log (rows in file order)."""
  levels = LEVELS if levels is None else levels
  cols = {name: [] for name, _ in PUBLIC_SCHEMA + EXTRA_SCHEMA}
  row = 0
  for s, (sid, session) in enumerate(levels.items()):
    for p, level in enumerate(session):
      values = {
          "session_id": sid, "session_position": p + 1,
          "session_length": len(session), "track_id_clean": f"t_{row:07d}",
          **{k: bool(v) for k, v in
             log_stats.flags_from_levels(level).items()},
          "context_switch": int(p == 0),
          "no_pause_before_play": row % 2, "short_pause_before_play": 0,
          "long_pause_before_play": 1 - row % 2,
          "hist_user_behavior_n_seekfwd": row % 3,
          "hist_user_behavior_n_seekback": 0,
          "hist_user_behavior_is_shuffle": s % 2 == 1,
          "hour_of_day": (7 * row) % 24,
          "date": datetime.date(2018, 7, 15 + s % 3), "premium": s != 1,
          "context_type": ("editorial_playlist", "radio", "catalog")[s % 3],
          "hist_user_behavior_reason_start": "trackdone" if p else "clickrow",
          "hist_user_behavior_reason_end": (
              "trackdone" if level == 4 else
              "endplay" if level == 3 else "fwdbtn"),
          "user_id": 10 + s, "play_mode_id": s % 2,
          "propensity": 1.0 / (row + 2)}
      for name, value in values.items():
        cols[name].append(value)
      row += 1
  if not extras:
    for name, _ in EXTRA_SCHEMA:
      del cols[name]
  return cols


def session_table(extras=True, levels=None) -> pa.Table:
  cols = session_columns(levels, extras)
  types = dict(PUBLIC_SCHEMA + EXTRA_SCHEMA)
  return pa.table({c: pa.array(v, types[c]) for c, v in cols.items()})


def csv_text(cols: dict) -> str:
  """Public-style CSV of plain columns; None becomes an empty cell."""
  def cell(v):
    if v is None:
      return ""
    if isinstance(v, bool):
      return "true" if v else "false"
    return str(v)
  rows = zip(*cols.values())
  return "\n".join([",".join(cols)] +
                   [",".join(cell(v) for v in r) for r in rows]) + "\n"


def write_csv_cols(path, cols: dict) -> str:
  path.write_text(csv_text(cols))
  return str(path)


def sha256(path) -> str:
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


# ------------------------------------------------------------- schema.
def test_schema_matches_public_dataset():
  assert logs.SESSION_COLUMNS == tuple(n for n, _ in PUBLIC_SCHEMA)
  assert dict(logs.SESSION_DTYPES) == dict(PUBLIC_SCHEMA)
  assert dict(logs.EXTRA_SESSION_DTYPES) == dict(EXTRA_SCHEMA)
  assert tuple(logs.TRACK_DTYPES) == TRACK_FEATURE_COLUMNS
  assert logs.TRACK_DTYPES["mode"] == pa.string()
  assert logs.TRACK_DTYPES["key"] == pa.int64()
  assert logs.TRACK_DTYPES["energy"] == pa.float64()


def test_read_schema_names_and_types(tmp_path):
  path = tmp_path / "s.parquet"
  logs.write_sessions(session_table(), path)
  table = logs.read_sessions(path)
  assert [(f.name, f.type) for f in table.schema] == list(
      PUBLIC_SCHEMA + EXTRA_SCHEMA)


def test_fifth_state_and_capitalised_booleans_load(tmp_path):
  # Real rows: no flag set (ended by endplay/backbtn), True/False spelling.
  text = PUBLIC_CSV.replace("false,false,false,true,0,0,0,0,0,0,true,16",
                            "False,False,False,False,0,0,0,0,0,0,True,16")
  path = tmp_path / "public.csv"
  path.write_text(text)
  table = logs.read_sessions(path)
  assert table.num_rows == 3
  np.testing.assert_array_equal(logs.response_levels(table), [3, 0, 1])
  assert PUBLIC_RESPONSE_LEVELS[3] == "ended_otherwise"
  assert table.column("skip_2").to_pylist() == [False, True, True]


def test_public_csv_loads(tmp_path):
  path = tmp_path / "public.csv"
  path.write_text(PUBLIC_CSV)
  table = logs.read_sessions(path)
  assert table.column_names == list(logs.SESSION_COLUMNS)
  assert table.num_rows == 3
  assert table.column("date").to_pylist()[0] == datetime.date(2018, 7, 15)
  assert table.column("skip_1").to_pylist() == [False, True, False]
  np.testing.assert_array_equal(logs.response_levels(table), [4, 0, 1])


@pytest.mark.parametrize("name", ["s.parquet", "s.pq", "s.csv", "s.csv.gz"])
@pytest.mark.parametrize("extras", [True, False], ids=["extras", "public"])
def test_round_trip(tmp_path, name, extras):
  table = session_table(extras)
  logs.write_sessions(table, tmp_path / name)
  back = logs.read_sessions(tmp_path / name)
  assert back.equals(table), (back, table)  # Already sorted and in order.
  logs.write_sessions(back, tmp_path / ("again_" + name))
  assert sha256(tmp_path / name) == sha256(tmp_path / ("again_" + name))


def test_csv_written_in_public_style(tmp_path):
  logs.write_sessions(session_table(extras=True), tmp_path / "s.csv")
  lines = (tmp_path / "s.csv").read_text().splitlines()
  assert lines[0] == ",".join(logs.SESSION_COLUMNS +
                              logs.EXTRA_SESSION_COLUMNS)
  assert '"' not in "".join(lines)
  assert lines[1].startswith("s1,1,3,t_0000000,false,false,false,true,1,")
  assert ",2018-07-15,true,editorial_playlist,clickrow,trackdone,10,0,0.5" \
      in lines[1]
  with gzip.open(tmp_path / "s.csv.gz", "wt") as f:  # Gzip is read too.
    f.write(PUBLIC_CSV)
  assert logs.read_sessions(tmp_path / "s.csv.gz").num_rows == 3


def test_csv_quotes_only_when_needed(tmp_path):
  table = session_table()
  tricky = ['say "hi", then leave'] + ["radio"] * 9
  table = table.set_column(table.column_names.index("context_type"),
                           "context_type", pa.array(tricky))
  logs.write_sessions(table, tmp_path / "s.csv")
  assert logs.read_sessions(tmp_path / "s.csv").equals(table)


def test_read_sorts_rows_and_orders_columns(tmp_path):
  table = session_table()
  order = [5, 0, 9, 2, 7, 1, 8, 3, 6, 4]
  names = ["propensity", "note"] + list(reversed(table.column_names[:-1]))
  shuffled = table.take(order).append_column(
      "note", pa.array([f"n{i}" for i in order])).select(names)
  pq.write_table(shuffled, tmp_path / "s.parquet")
  back = logs.read_sessions(tmp_path / "s.parquet")
  assert back.column_names == (list(logs.SESSION_COLUMNS) +
                               list(logs.EXTRA_SESSION_COLUMNS) + ["note"])
  assert back.drop_columns(["note"]).equals(table)
  assert back.column("note").to_pylist() == [f"n{i}" for i in range(10)]


def test_parquet_with_loose_types_is_normalised(tmp_path):
  table = session_table()
  loose = {c: table.column(c) for c in table.column_names}
  loose["session_position"] = loose["session_position"].cast(pa.int32())
  loose["skip_1"] = loose["skip_1"].cast(pa.int8())  # 0/1 for a bool.
  loose["premium"] = loose["premium"].cast(pa.float64())
  loose["context_type"] = loose["context_type"].dictionary_encode()
  loose["date"] = pa.array([d.isoformat() for d in
                            table.column("date").to_pylist()])
  loose["hour_of_day"] = loose["hour_of_day"].cast(pa.float32())
  pq.write_table(pa.table(loose), tmp_path / "s.parquet")
  assert logs.read_sessions(tmp_path / "s.parquet").equals(table)


def test_catalog_check_passes_for_known_tracks(tmp_path, catalog):
  logs.write_sessions(session_table(), tmp_path / "s.parquet")
  assert logs.read_sessions(tmp_path / "s.parquet", catalog).num_rows == 10


# ------------------------------------------------------- malformed logs.
def _csv_with(column, row, value):
  """A builder for a CSV whose cell (column, row) is replaced."""
  def build(tmp_path):
    cols = session_columns()
    cols[column][row] = value
    return write_csv_cols(tmp_path / "bad.csv", cols)
  return build


def _csv_edit(edit):
  def build(tmp_path):
    cols = session_columns()
    edit(cols)
    return write_csv_cols(tmp_path / "bad.csv", cols)
  return build


def _parquet_with(column, array):
  def build(tmp_path):
    table = session_table()
    i = table.column_names.index(column)
    pq.write_table(table.set_column(i, column, array), tmp_path / "bad.pq")
    return str(tmp_path / "bad.pq")
  return build


def _raw_file(name, content: bytes):
  def build(tmp_path):
    (tmp_path / name).write_bytes(content)
    return str(tmp_path / name)
  return build


def _set_levels(cols, row, s1, s2, s3, listened):
  for c, v in zip(logs.SKIP_COLUMNS, (s1, s2, s3, listened)):
    cols[c][row] = v


MALFORMED = [
    ("missing_file", lambda p: str(p / "nope.parquet"), ["not found"]),
    ("zero_bytes", _raw_file("e.csv", b""), ["empty"]),
    ("header_only", _raw_file("h.csv", PUBLIC_CSV.splitlines()[0].encode()),
     ["empty"]),
    ("corrupt_parquet", _raw_file("c.parquet", b"PAR1 not really" * 9),
     ["c.parquet", "cannot be read as parquet"]),
    ("parquet_named_csv", lambda p: (
        pq.write_table(session_table(), p / "x.csv") or str(p / "x.csv")),
     ["x.csv"]),
    ("bad_extension", _raw_file("s.txt", PUBLIC_CSV.encode()),
     ["unsupported file extension"]),
    ("missing_column", _csv_edit(lambda c: c.pop("skip_2")),
     ["missing required column", "skip_2"]),
    ("text_in_int", _csv_with("hour_of_day", 4, "noon"),
     ["'hour_of_day'", "'noon' is not an integer", "line 6",
      "session_id='s2'", "session_position=2"]),
    ("float_in_int", _csv_with("session_length", 0, "3.5"),
     ["'session_length'", "not an integer"]),
    ("maybe_bool", _csv_with("premium", 1, "maybe"),
     ["'premium'", "'maybe' is not a boolean"]),
    ("null_track", _csv_with("track_id_clean", 2, None),
     ["'track_id_clean'", "null", "session_position=3"]),
    ("nan_propensity", _csv_with("propensity", 3, "NaN"),
     ["'propensity'", "NaN"]),
    ("bad_date", _csv_with("date", 0, "2018-02-30"),
     ["'date'", "'2018-02-30' is not a date"]),
    ("position_gap", _csv_with("session_position", 4, 6),
     ["'session_position'", "not exactly 1..session_length",
      "session_id='s2'"]),
    ("length_inconsistent", _csv_with("session_length", 4, 4),
     ["'session_length'", "inconsistent", "session_id='s2'"]),
    ("length_too_long", _csv_edit(
        lambda c: c["session_length"].__setitem__(
            slice(8, 10), [3, 3])),
     ["'session_length'", "2 rows but session_length 3", "session_id='s3'"]),
    ("duplicate_position", _csv_with("session_position", 1, 1),
     ["duplicate (session_id, session_position)", "session_id='s1'"]),
    ("skip_not_nested", _csv_edit(
        lambda c: _set_levels(c, 1, True, False, True, False)),
     ["'skip_2'", "skip flags", "session_position=2"]),
    ("listen_and_skip", _csv_edit(
        lambda c: _set_levels(c, 0, False, False, True, True)),
     ["'not_skipped'", "skip flags", "session_id='s1'"]),
    ("skip_1_alone", _csv_edit(
        lambda c: _set_levels(c, 1, True, False, False, False)),
     ["'skip_2'", "impossible skip flags", "session_position=2"]),
    ("hour_24", _csv_with("hour_of_day", 0, 24),
     ["'hour_of_day'", "24", "0..23"]),
    ("pause_flag_2", _csv_with("no_pause_before_play", 0, 2),
     ["'no_pause_before_play'", "0 or 1"]),
    ("propensity_zero", _csv_with("propensity", 0, 0.0),
     ["'propensity'", "(0, 1]"]),
    ("propensity_above_one", _csv_with("propensity", 0, 1.5),
     ["'propensity'", "1.5", "(0, 1]"]),
    ("parquet_float_text", _parquet_with(
        "context_type", pa.array([1.5] * 10)),
     ["'context_type'", "double", "expected string"]),
    ("parquet_fraction_position", _parquet_with(
        "session_position", pa.array([1.0, 2.5] + [1.0] * 8)),
     ["'session_position'", "2.5 is not an integer", "row 1"]),
    ("parquet_bool_two", _parquet_with("skip_3", pa.array([2] + [1] * 9)),
     ["'skip_3'", "not a boolean"]),
    ("parquet_null_bool", _parquet_with(
        "premium", pa.array([None] + [True] * 9, pa.bool_())),
     ["'premium'", "null"]),
]


@pytest.mark.parametrize("build, expected",
                         [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_malformed_session_log_raises(tmp_path, build, expected):
  path = build(tmp_path)
  with pytest.raises(logs.LogFormatError) as info:
    logs.read_sessions(path)
  for text in expected:
    assert text in str(info.value), str(info.value)


def test_unknown_track_named(tmp_path, catalog):
  cols = session_columns()
  cols["track_id_clean"][3] = "t_missing_a"
  cols["track_id_clean"][6] = "t_missing_b"
  path = write_csv_cols(tmp_path / "s.csv", cols)
  with pytest.raises(logs.LogFormatError) as info:
    logs.read_sessions(path, catalog)
  message = str(info.value)
  for text in ("'track_id_clean'", "2 unknown track id(s)", "t_missing_a",
               "t_missing_b", "session_id='s2'"):
    assert text in message, message
  assert logs.read_sessions(path).num_rows == 10  # Fine without a catalog.


def test_invalid_table_is_not_written(tmp_path):
  table = session_table()
  bad = table.set_column(table.column_names.index("hour_of_day"),
                         "hour_of_day", pa.array([30] * 10))
  with pytest.raises(logs.LogFormatError, match="hour_of_day"):
    logs.write_sessions(bad, tmp_path / "s.parquet")
  assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["s.parquet", "s.csv", "s.csv.gz"])
def test_writes_are_deterministic(tmp_path, name):
  logs.write_sessions(session_table(), tmp_path / ("a_" + name))
  logs.write_sessions(session_table(), tmp_path / ("b_" + name))
  assert sha256(tmp_path / ("a_" + name)) == sha256(tmp_path / ("b_" + name))
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      "a_" + name, "b_" + name]  # No temporary files left behind.


# --------------------------------------------------------------- tracks.
@pytest.mark.parametrize("name", ["t.parquet", "t.csv", "t.csv.gz"])
def test_tracks_round_trip(tmp_path, catalog, name):
  logs.write_tracks(catalog, tmp_path / name)
  back = logs.read_tracks(tmp_path / name)
  for column in TRACK_FEATURE_COLUMNS:
    np.testing.assert_array_equal(back.columns[column],
                                  catalog.columns[column], err_msg=column)
  np.testing.assert_array_equal(back.features, catalog.features)
  logs.write_tracks(back, tmp_path / ("again_" + name))
  assert sha256(tmp_path / name) == sha256(tmp_path / ("again_" + name))


def _tracks_csv(edit):
  def build(tmp_path, catalog):
    cols = {c: [str(v) for v in catalog.columns[c][:6]]
            for c in TRACK_FEATURE_COLUMNS}
    edit(cols)
    return write_csv_cols(tmp_path / "tracks.csv", cols)
  return build


MALFORMED_TRACKS = [
    ("missing_column", _tracks_csv(lambda c: c.pop("tempo")),
     ["missing required column", "tempo"]),
    ("text_in_key", _tracks_csv(lambda c: c["key"].__setitem__(2, "C#")),
     ["'key'", "'C#' is not an integer", "track_id='t_0000002'"]),
    ("text_in_float", _tracks_csv(
        lambda c: c["energy"].__setitem__(1, "loud")),
     ["'energy'", "'loud' is not a number"]),
    ("nan_feature", _tracks_csv(
        lambda c: c["valence"].__setitem__(0, "nan")),
     ["'valence'", "NaN"]),
    ("null_feature", _tracks_csv(
        lambda c: c["acoustic_vector_3"].__setitem__(0, None)),
     ["'acoustic_vector_3'", "null"]),
    ("bad_mode", _tracks_csv(lambda c: c["mode"].__setitem__(4, "sideways")),
     ["'mode'", "'sideways' is not major/minor"]),
    ("duplicate_id", _tracks_csv(
        lambda c: c["track_id"].__setitem__(5, c["track_id"][0])),
     ["'track_id'", "duplicate track_id", "line 7"]),
    ("header_only", lambda p, cat: _raw_file(
        "t.csv", ",".join(TRACK_FEATURE_COLUMNS).encode())(p),
     ["empty"]),
    ("corrupt_parquet", lambda p, cat: _raw_file("t.pq", b"garbage")(p),
     ["t.pq", "cannot be read as parquet"]),
]


@pytest.mark.parametrize("build, expected",
                         [m[1:] for m in MALFORMED_TRACKS],
                         ids=[m[0] for m in MALFORMED_TRACKS])
def test_malformed_tracks_raise(tmp_path, catalog, build, expected):
  path = build(tmp_path, catalog)
  with pytest.raises(logs.LogFormatError) as info:
    logs.read_tracks(path)
  for text in expected:
    assert text in str(info.value), str(info.value)


# ------------------------------------------------------------ log_stats.
def test_response_levels_and_boundaries():
  table = session_table()
  levels = logs.response_levels(table)
  assert levels.dtype == np.int32
  np.testing.assert_array_equal(levels, sum(LEVELS.values(), []))
  bounds = logs.session_boundaries(table)
  np.testing.assert_array_equal(bounds.offsets, [0, 3, 8, 10])
  np.testing.assert_array_equal(bounds.session_index,
                                [0, 0, 0, 1, 1, 1, 1, 1, 2, 2])
  np.testing.assert_array_equal(bounds.lengths, [3, 5, 2])
  assert list(bounds.session_ids) == ["s1", "s2", "s3"]
  with pytest.raises(ValueError, match="not contiguous"):
    log_stats.session_boundaries(table.take([0, 3, 1, 2, 4, 5, 6, 7, 8, 9]))


# Trailing skip runs: a 1, b 2, c 3 (all skips), d 0, e 1, f 5, g 2, h 1.
# Level 3 (ended otherwise) is not a listen, so it extends a run.
SKIP_RUNS = {"a": [4, 0], "b": [4, 4, 1, 3], "c": [0, 1, 2], "d": [0, 4],
             "e": [0, 4, 2], "f": [0, 0, 0, 0, 0, 4, 1, 1, 2, 0, 1],
             "g": [1, 0], "h": [2]}


def test_final_skip_runs():
  table = session_table(levels=SKIP_RUNS)
  np.testing.assert_array_equal(log_stats.final_skip_runs(table),
                                [1, 2, 3, 0, 1, 5, 2, 1])


@pytest.mark.parametrize("fraction, expected", [
    (1.0, 5), (0.92, 5), (6 / 7, 3), (0.8, 3), (5 / 7, 2), (0.5, 2),
    (3 / 7, 1), (0.1, 1)])
def test_consecutive_skip_limit(fraction, expected):
  # Runs of the 7 skip-ending sessions, sorted: 1 1 1 2 2 3 5.
  table = session_table(levels=SKIP_RUNS)
  assert log_stats.consecutive_skip_limit(table, fraction) == expected


def test_consecutive_skip_limit_errors():
  table = session_table(levels=SKIP_RUNS)
  for fraction in (0.0, 1.5, -0.2):
    with pytest.raises(ValueError, match="fraction"):
      log_stats.consecutive_skip_limit(table, fraction)
  with pytest.raises(ValueError, match="no session .* ends on a skip"):
    log_stats.consecutive_skip_limit(
        session_table(levels={"a": [0, 4], "b": [4]}))


def test_summarize_logs():
  summary = log_stats.summarize_logs(session_table())
  json.dumps(summary)  # Plain Python types, ready for metrics.json.
  assert summary == {
      "num_sessions": 3, "num_rows": 10,
      "mean_session_length": pytest.approx(10 / 3), "skip_rate": 0.8,
      "level_rates": dict(zip(PUBLIC_RESPONSE_LEVELS,
                              (0.3, 0.3, 0.1, 0.1, 0.2))),
      "consecutive_skip_limit": 3, "num_users": 3}
  no_users = log_stats.summarize_logs(session_table(extras=False))
  assert "num_users" not in no_users
  listens = log_stats.summarize_logs(session_table(levels={"a": [4, 4]}))
  assert listens["consecutive_skip_limit"] is None
  assert listens["skip_rate"] == 0.0
