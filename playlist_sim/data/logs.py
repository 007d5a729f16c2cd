"""Session logs and track features on disk: schema, read, validate, write.

The schema is the public Spotify Music Streaming Sessions Dataset's (the
Sequential Skip Prediction Challenge), so a user who has that dataset can load
it directly, and logs we generate can be read by tools written for it. Our own
columns (`EXTRA_SESSION_COLUMNS`) are optional additions after the public ones.

Files are Parquet (`.parquet`, `.pq`) or CSV (`.csv`, `.csv.gz`), chosen by the
extension. Readers validate everything and raise one error type,
`LogFormatError`, naming the file, the column and the row; they return either a
whole valid table or nothing. Writers validate too, and write atomically and
deterministically (the same table gives byte-identical files).

`session_boundaries` and `response_levels` (per-row NumPy arrays for the
episode sampler and user-model training) live in `playlist_sim.data.log_stats`
with the log statistics and are re-exported here.
"""

import os
import re
import types
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from playlist_sim.common.io_utils import atomic_path
from playlist_sim.data.log_stats import SKIP_COLUMNS
from playlist_sim.data.log_stats import SKIP_FLAG_RULES
from playlist_sim.data.log_stats import SessionBoundaries  # noqa: F401 (re-export)
from playlist_sim.data.log_stats import response_levels  # noqa: F401 (re-export)
from playlist_sim.data.log_stats import session_boundaries
from playlist_sim.data.log_stats import skip_flag_violations
from playlist_sim.data.catalog import TRACK_FEATURE_COLUMNS
from playlist_sim.data.catalog import TrackCatalog
from playlist_sim.data.catalog import bad_feature_value

__all__ = [
    "EXTRA_SESSION_COLUMNS",
    "EXTRA_SESSION_DTYPES",
    "LogFormatError",
    "SESSION_COLUMNS",
    "SESSION_DTYPES",
    "SKIP_COLUMNS",
    "SessionBoundaries",
    "TRACK_DTYPES",
    "read_sessions",
    "read_tracks",
    "response_levels",
    "session_boundaries",
    "write_sessions",
    "write_tracks",
]

_STR, _INT, _BOOL, _FLOAT = pa.string(), pa.int64(), pa.bool_(), pa.float64()

#: Public session-log columns, in the public files' order, and their types.
SESSION_DTYPES = types.MappingProxyType({
    "session_id": _STR, "session_position": _INT, "session_length": _INT,
    "track_id_clean": _STR, "skip_1": _BOOL, "skip_2": _BOOL,
    "skip_3": _BOOL, "not_skipped": _BOOL, "context_switch": _INT,
    "no_pause_before_play": _INT, "short_pause_before_play": _INT,
    "long_pause_before_play": _INT, "hist_user_behavior_n_seekfwd": _INT,
    "hist_user_behavior_n_seekback": _INT,
    "hist_user_behavior_is_shuffle": _BOOL, "hour_of_day": _INT,
    "date": pa.date32(), "premium": _BOOL, "context_type": _STR,
    "hist_user_behavior_reason_start": _STR,
    "hist_user_behavior_reason_end": _STR,
})
SESSION_COLUMNS: tuple[str, ...] = tuple(SESSION_DTYPES)

#: Our optional columns: the listener, the candidate pool (play mode) and the
#: logging policy's probability of the logged track.
EXTRA_SESSION_DTYPES = types.MappingProxyType(
    {"user_id": _INT, "play_mode_id": _INT, "propensity": _FLOAT})
EXTRA_SESSION_COLUMNS: tuple[str, ...] = tuple(EXTRA_SESSION_DTYPES)

#: Track-feature file types, in `TRACK_FEATURE_COLUMNS` order.
TRACK_DTYPES = types.MappingProxyType({
    c: (_STR if c in ("track_id", "mode") else
        _INT if c in ("key", "time_signature", "release_year") else _FLOAT)
    for c in TRACK_FEATURE_COLUMNS})

_ALL_SESSION_DTYPES = {**SESSION_DTYPES, **EXTRA_SESSION_DTYPES}
# Value checks beyond the type: (predicate on the NumPy values, what is wanted).
_RANGES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "session_position": (lambda v: v >= 1, ">= 1"),
    "session_length": (lambda v: v >= 1, ">= 1"),
    "hour_of_day": (lambda v: (v >= 0) & (v <= 23), "in 0..23"),
    "hist_user_behavior_n_seekfwd": (lambda v: v >= 0, ">= 0"),
    "hist_user_behavior_n_seekback": (lambda v: v >= 0, ">= 0"),
    "propensity": (lambda v: (v > 0) & (v <= 1), "in (0, 1]"),
    **{c: (lambda v: (v == 0) | (v == 1), "0 or 1") for c in (
        "context_switch", "no_pause_before_play", "short_pause_before_play",
        "long_pause_before_play")},
}
_TRUE, _FALSE = ("true", "1"), ("false", "0")
_SPECIAL = r'[,"\r\n]'  # Characters that force CSV quoting.


class LogFormatError(ValueError):
  """A session-log or track-feature file (or table) does not fit the schema."""


class _Source:
  """Names a file (or table) and its rows in error messages."""

  def __init__(self, name: str, is_csv: bool = False):
    self.name = name
    # CSV users look for a line number (line 1 is the header).
    self.position: Callable[[int], str] | None = (
        (lambda i: f"line {i + 2}") if is_csv else (lambda i: f"row {i}"))
    self.keys: Callable[[int], str] | None = None  # "session_id=...".

  def row(self, i: int) -> str:
    if self.position and self.keys:
      return f"{self.position(i)} ({self.keys(i)})"
    return (self.position or self.keys)(i)

  def error(self, column: str | None, what: str,
            row: int | None = None) -> LogFormatError:
    col = f": column {column!r}" if column else ""
    at = f" at {self.row(row)}" if row is not None else ""
    return LogFormatError(f"{self.name}{col}: {what}{at}")


# ---------------------------------------------------------------- reading.
def _file_format(path: str) -> str:
  lower = path.lower()
  if lower.endswith((".parquet", ".pq")):
    return "parquet"
  if lower.endswith((".csv", ".csv.gz")):
    return "csv"
  raise LogFormatError(f"{path}: unsupported file extension (expected "
                       ".parquet, .pq, .csv or .csv.gz)")


def _read_file(path: str, dtypes: dict[str, pa.DataType]) -> tuple:
  fmt = _file_format(path)
  if not os.path.isfile(path):
    raise LogFormatError(f"{path}: file not found" if not os.path.exists(path)
                         else f"{path}: not a regular file")
  if os.path.getsize(path) == 0:
    raise LogFormatError(f"{path}: file is empty")
  try:
    if fmt == "parquet":
      table = pq.read_table(path)
    else:
      table = _read_csv(path, dtypes)
  except (pa.ArrowException, OSError) as e:
    if "Empty CSV file" in str(e):  # A header without a line end.
      raise LogFormatError(f"{path}: file is empty (no data rows)") from e
    raise LogFormatError(f"{path}: cannot be read as {fmt} (corrupt or not "
                         f"a {fmt} file): {e}") from e
  source = _Source(path, is_csv=fmt == "csv")
  if table.num_rows == 0:
    raise source.error(None, "file is empty (no data rows)")
  return table, source


def _read_csv(path: str, dtypes: dict[str, pa.DataType]) -> pa.Table:
  """A CSV file's table: typed if every cell parses, else as text.

  The typed read holds each value once, in its type (a daily file of 3
  million rows as text would take about twice the memory). Any cell it
  cannot parse sends the file through the text path, where the known
  columns come in as text so that we, not the CSV reader, decide what is
  valid and can name the offending cell; both accept the same cells.
  """
  typed = pacsv.ConvertOptions(
      column_types=dict(dtypes), null_values=[""], strings_can_be_null=True,
      true_values=[v for t in _TRUE for v in (t, t.capitalize(), t.upper())],
      false_values=[v for f in _FALSE for v in (f, f.capitalize(),
                                                 f.upper())])
  try:
    return pacsv.read_csv(path, convert_options=typed)
  except pa.ArrowInvalid:
    pass
  return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
      column_types={c: _STR for c in dtypes}, null_values=[""],
      strings_can_be_null=True))


def _first(mask: np.ndarray | pa.Array) -> int:
  if isinstance(mask, (pa.Array, pa.ChunkedArray)):
    mask = mask.to_numpy(zero_copy_only=False)
  return int(np.flatnonzero(mask)[0])


def _parses(text: str, target: pa.DataType) -> bool:
  try:
    pa.array([text]).cast(target)
  except pa.ArrowInvalid:
    return False
  return True


_DATE = pa.date32()
# What a cell should look like, and which non-text types convert without
# loss (after the value checks in `_convert`), per target type.
_WANTED = {_INT: "an integer", _FLOAT: "a number", _DATE: "a date "
           "(expected YYYY-MM-DD)", _BOOL: "a boolean (expected true/false)"}
_NUMBER = (pa.types.is_integer, pa.types.is_floating)
_CASTABLE = {_STR: (pa.types.is_integer,), _FLOAT: _NUMBER,
             _INT: _NUMBER + (pa.types.is_boolean,),
             _BOOL: _NUMBER + (pa.types.is_boolean,),
             _DATE: (pa.types.is_date, pa.types.is_timestamp)}


def _convert(values: pa.Array, name: str, target: pa.DataType,
             source: _Source) -> pa.Array:
  """Casts one column to its schema type, or names the first bad cell."""
  if values.null_count:
    raise source.error(name, "missing (null) value", _first(values.is_null()))
  if pa.types.is_dictionary(values.type):
    values = values.dictionary_decode()
  kind = values.type
  try:
    if kind == target:  # Read typed already (no copy of a large column).
      out = values
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
      out = _from_text(values.cast(_STR), name, target, source)
    elif not any(is_kind(kind) for is_kind in _CASTABLE[target]):
      raise source.error(name, f"has type {kind}, expected {target}")
    else:
      if target in (_INT, _BOOL) and not pa.types.is_boolean(kind):
        num = values.to_numpy(zero_copy_only=False)
        good = np.isfinite(num) & (num == np.round(num))
        if target == _BOOL:  # Arrow would read any non-zero number as true.
          good &= (num == 0) | (num == 1)
        if not good.all():
          i = _first(~good)
          raise source.error(name, f"{num[i].item()} is not "
                             f"{_WANTED[target]}", i)
      out = values.cast(target, safe=target != _DATE)  # Drops a time of day.
  except pa.ArrowException as e:  # E.g. an int64 overflow.
    raise source.error(name, f"cannot be converted to {target}: {e}") from e
  if target == _FLOAT:
    finite = np.isfinite(out.to_numpy(zero_copy_only=False))
    if not finite.all():
      i = _first(~finite)
      raise source.error(name, f"NaN or infinite value {out[i].as_py()}", i)
  return out


def _from_text(values: pa.Array, name: str, target: pa.DataType,
               source: _Source) -> pa.Array:
  if target == _STR:
    return values
  if target == _BOOL:
    lower = pc.utf8_lower(values)
    bad = pc.invert(pc.is_in(lower, pa.array(_TRUE + _FALSE)))
    if pc.any(bad).as_py():
      i = _first(bad)
      raise source.error(name, f"{values[i].as_py()!r} is not "
                         f"{_WANTED[target]}", i)
    return pc.is_in(lower, pa.array(_TRUE))
  try:  # Arrow's parser is strict (no "+3", " 2", "2018-02-30").
    return values.cast(target)
  except pa.ArrowInvalid:
    bad = [v for v in pc.unique(values).to_pylist() if not _parses(v, target)]
    if not bad:
      raise
    i = _first(pc.is_in(values, pa.array(bad)))
    raise source.error(name, f"{values[i].as_py()!r} is not "
                       f"{_WANTED[target]}", i) from None


def _session_columns(table: pa.Table,
                     source: _Source) -> dict[str, pa.ChunkedArray]:
  """A session table's columns by name, once its column names are valid."""
  _check_columns(table.column_names, SESSION_COLUMNS, source)
  return {name: table.column(i) for i, name in enumerate(table.column_names)}


def _check_columns(names: list[str], required, source: _Source) -> None:
  missing = [c for c in required if c not in names]
  if missing:
    raise source.error(None, f"missing required column(s) {missing}")
  duplicated = sorted({c for c in names if names.count(c) > 1})
  if duplicated:
    raise source.error(None, f"duplicated column name(s) {duplicated}")


def _sort_columns(columns: dict[str, pa.Array]) -> None:
  """Sorts the columns by (session_id, session_position), one at a time.

  Taking column by column (and not at all when the rows are in order, as
  the public files' are within a session) keeps the peak memory near one
  table instead of two.
  """
  order = pc.sort_indices(pa.table({k: columns[k] for k in (
      "session_id", "session_position")}), sort_keys=[
          ("session_id", "ascending"), ("session_position", "ascending")])
  if pc.all(pc.equal(order, pa.array(np.arange(len(order))))).as_py():
    return
  for name in list(columns):
    columns[name] = pc.take(columns[name], order)


def _normalise_sessions(raw: dict[str, pa.ChunkedArray], source: _Source,
                        catalog: TrackCatalog | None) -> pa.Table:
  """Converts, validates and sorts a session table (see `read_sessions`).

  `raw` holds the table's columns by name and is emptied as each column is
  converted: with the caller's table dropped, the text columns of a CSV are
  released one by one, so a large file never sits in memory twice.
  """
  names = list(raw)
  _check_columns(names, SESSION_COLUMNS, source)
  if not len(raw[names[0]]):
    raise source.error(None, "no rows (empty)")
  present = [c for c in _ALL_SESSION_DTYPES if c in names]
  other = [c for c in names if c not in _ALL_SESSION_DTYPES]
  out = {}
  for name in present:  # session_id, session_position first: rows get keys.
    out[name] = _convert(raw.pop(name).combine_chunks(), name,
                         _ALL_SESSION_DTYPES[name], source)
    if name == "session_position":
      ids, pos = out["session_id"], out["session_position"]
      source.keys = lambda i: (f"session_id={ids[i].as_py()!r}, "
                               f"session_position={pos[i].as_py()}")
    if name in _RANGES:
      check, wanted = _RANGES[name]
      bad = ~check(out[name].to_numpy(zero_copy_only=False))
      if bad.any():
        i = _first(bad)
        raise source.error(name, f"value {out[name][i].as_py()} is not "
                           f"{wanted}", i)
  for name in other:
    out[name] = raw.pop(name).combine_chunks()
  _sort_columns(out)
  result = pa.table(out)
  del out
  ids = result.column("session_id").combine_chunks()
  pos = result.column("session_position").to_numpy()
  source.position = None  # Rows are now sorted; name them by key only.
  source.keys = lambda i: (f"session_id={ids[i].as_py()!r}, "
                           f"session_position={pos[i]}")
  _check_sessions(result, source)
  if catalog is not None:
    _check_tracks_known(result, catalog, source)
  return result


def _check_sessions(table: pa.Table, source: _Source) -> None:
  """Positions 1..session_length once each, one length, nested skip flags."""
  bounds = session_boundaries(table)
  pos = table.column("session_position").to_numpy()
  length = table.column("session_length").to_numpy()
  first = bounds.offsets[:-1][bounds.session_index]
  dup = np.zeros(len(pos), bool)
  dup[1:] = (first[1:] == first[:-1]) & (pos[1:] == pos[:-1])
  if dup.any():
    raise source.error("session_position", "duplicate (session_id, "
                       "session_position)", _first(dup))
  gap = pos != np.arange(len(pos)) - first + 1
  if gap.any():
    i = _first(gap)
    raise source.error("session_position", "session positions are not "
                       f"exactly 1..session_length: expected position "
                       f"{i - first[i] + 1}, found {pos[i]}", i)
  varies = length != length[first]
  if varies.any():
    i = _first(varies)
    raise source.error("session_length", "session_length inconsistent within "
                       f"the session: {length[first[i]]} and {length[i]}", i)
  short = bounds.lengths != length[bounds.offsets[:-1]]
  if short.any():
    s = _first(short)
    raise source.error("session_length", f"session has {bounds.lengths[s]} "
                       f"rows but session_length {length[bounds.offsets[s]]} "
                       "(positions must be exactly 1..session_length)",
                       int(bounds.offsets[s + 1]) - 1)
  _skip_flag_errors(table, source)


def _skip_flag_errors(table: pa.Table, source: _Source) -> None:
  flags = [table.column(c).to_numpy(zero_copy_only=False)
           for c in SKIP_COLUMNS]
  for name, bad in skip_flag_violations(*flags):
    if bad.any():
      raise source.error(name, f"impossible skip flags ({SKIP_FLAG_RULES})",
                         _first(bad))


def _check_tracks_known(table: pa.Table, catalog: TrackCatalog,
                        source: _Source) -> None:
  tracks = table.column("track_id_clean")
  known = pc.is_in(tracks, pa.array(catalog.track_ids.astype(str)))
  unknown = ~known.to_numpy(zero_copy_only=False)
  if unknown.any():
    names = pc.unique(tracks.filter(pa.array(unknown))).to_pylist()
    raise source.error("track_id_clean", f"{len(names)} unknown track id(s) "
                       f"not in the catalog, e.g. {names[:5]}; first",
                       _first(unknown))


def read_sessions(path: str | os.PathLike,
                  catalog: TrackCatalog | None = None) -> pa.Table:
  """Reads and validates a session log.

  Args:
    path: a `.parquet`/`.pq`, `.csv` or `.csv.gz` file in the public schema.
    catalog: if given, every `track_id_clean` must be one of its tracks.

  Returns:
    The log with normalised types (`SESSION_DTYPES`, `EXTRA_SESSION_DTYPES`),
    sorted by (session_id, session_position); public columns first in public
    order, then our extra columns, then any other columns as read.

  Raises:
    LogFormatError: if the file is missing, unreadable, empty or does not
      fit the schema; the message names the file, column and row.
  """
  path = os.fspath(path)
  table, source = _read_file(path, _ALL_SESSION_DTYPES)
  raw = _session_columns(table, source)
  del table  # `raw` is the only reference: columns are freed as converted.
  return _normalise_sessions(raw, source, catalog)


def read_tracks(path: str | os.PathLike) -> TrackCatalog:
  """Reads and validates a track-feature file.

  Args:
    path: a `.parquet`/`.pq`, `.csv` or `.csv.gz` file with the columns
      `TRACK_FEATURE_COLUMNS` (others are ignored).

  Returns:
    The `TrackCatalog`, tracks in file order.

  Raises:
    LogFormatError: if the file is missing, unreadable, empty or does not
      fit the schema (types, NaN, mode not major/minor, duplicate track_id).
  """
  path = os.fspath(path)
  table, source = _read_file(path, dict(TRACK_DTYPES))
  return TrackCatalog(_track_columns(table, source))


def _track_columns(table: pa.Table, source: _Source) -> dict[str, np.ndarray]:
  _check_columns(table.column_names, TRACK_FEATURE_COLUMNS, source)
  ids = _convert(table.column("track_id").combine_chunks(), "track_id", _STR,
                 source)
  source.keys = lambda i: f"track_id={ids[i].as_py()!r}"
  columns = {}
  for name in TRACK_FEATURE_COLUMNS:
    values = _convert(table.column(name).combine_chunks(), name,
                      TRACK_DTYPES[name], source)
    columns[name] = values.to_numpy(zero_copy_only=False)
    if TRACK_DTYPES[name] == _STR:
      columns[name] = columns[name].astype(str)
  bad_mode = ~np.isin(columns["mode"], ("major", "minor"))
  if bad_mode.any():
    i = _first(bad_mode)
    mode = str(columns["mode"][i])
    raise source.error("mode", f"{mode!r} is not major/minor", i)
  _, first_seen = np.unique(columns["track_id"], return_index=True)
  if len(first_seen) != len(columns["track_id"]):
    dup = np.ones(len(columns["track_id"]), bool)
    dup[first_seen] = False
    raise source.error("track_id", "duplicate track_id", _first(dup))
  bad = bad_feature_value(columns)
  if bad is not None:
    name, row, what = bad
    raise source.error(name, what, row)
  return columns


# ---------------------------------------------------------------- writing.
def write_sessions(table: pa.Table, path: str | os.PathLike) -> None:
  """Validates a session log and writes it, atomically and deterministically.

  Args:
    table: a session log in the public schema (extra columns allowed); types
      are normalised and rows sorted as by `read_sessions`.
    path: a `.parquet`/`.pq`, `.csv` or `.csv.gz` file. CSV is in the public
      files' style: `true`/`false`, `YYYY-MM-DD`, unquoted text.

  Raises:
    LogFormatError: if the table does not fit the schema or the extension is
      not supported.
  """
  path = os.fspath(path)
  fmt = _file_format(path)
  source = _Source(f"table for {path}")
  _write(_normalise_sessions(_session_columns(table, source), source, None),
         path, fmt)


def write_tracks(catalog: TrackCatalog, path: str | os.PathLike) -> None:
  """Writes a catalog's public track-feature columns (see `write_sessions`).

  Args:
    catalog: the tracks to write, in catalog row order.
    path: a `.parquet`/`.pq`, `.csv` or `.csv.gz` file.

  Raises:
    LogFormatError: if a column does not fit `TRACK_DTYPES` or the extension
      is not supported.
  """
  path = os.fspath(path)
  fmt = _file_format(path)
  raw = pa.table({c: np.asarray(catalog.columns[c])
                  for c in TRACK_FEATURE_COLUMNS})
  columns = _track_columns(raw, _Source(f"catalog for {path}"))
  _write(pa.table({c: pa.array(columns[c], TRACK_DTYPES[c])
                   for c in TRACK_FEATURE_COLUMNS}), path, fmt)


def _write(table: pa.Table, path: str, fmt: str) -> None:
  try:
    with atomic_path(path) as tmp:
      if fmt == "parquet":
        # The default writer embeds no timestamp: same table, same bytes.
        pq.write_table(table, tmp)
      else:
        _write_csv(table, tmp, gzip=path.lower().endswith(".gz"))
  except pa.ArrowException as e:
    raise LogFormatError(f"{path}: cannot write {fmt}: {e}") from e


def _write_csv(table: pa.Table, tmp: str, gzip: bool) -> None:
  # The public files quote nothing; quote (every text cell) only when a value
  # would otherwise break the CSV structure.
  text = [c for c, t in zip(table.column_names, table.schema.types)
          if pa.types.is_string(t) or pa.types.is_large_string(t)]
  quote = any(pc.any(pc.match_substring_regex(table.column(c), _SPECIAL)
                     ).as_py() for c in text)
  # Arrow always quotes the header; the public files do not.
  header = ",".join('"' + c.replace('"', '""') + '"'
                    if re.search(_SPECIAL, c) else c
                    for c in table.column_names) + "\n"
  with pa.output_stream(tmp, compression="gzip" if gzip else None) as sink:
    sink.write(header.encode())
    pacsv.write_csv(table, sink, pacsv.WriteOptions(
        include_header=False, quoting_style="needed" if quote else "none"))
