"""The track catalog: public track-feature columns and the feature table.

Columns follow the public Spotify Music Streaming Sessions Dataset (track
features file). A catalog keeps the raw columns (to write them back out) and a
standardised float32 feature matrix, one row per track, that models and agents
look features up in by *catalog row* (an int32 id, 0..num_tracks-1). The
public string id (`track_id`) maps to the row through `rows_of`.
"""

import dataclasses
from typing import Mapping, Sequence

import numpy as np

__all__ = [
    "TrackCatalog",
    "acoustic_vectors",
    "TRACK_FEATURE_COLUMNS",
    "NUMERIC_TRACK_COLUMNS",
    "UnknownColumnError",
    "UnknownTrackError",
    "MAX_ABS_FEATURE",
    "bad_feature_value",
]

#: Largest magnitude a raw track feature may have. Every public column is
#: far inside it (durations in seconds up to ~1,800, years ~2,000, loudness
#: in dB, acoustic vectors ~1); a larger value is corrupt data, and one
#: huge value would make a column's standard deviation overflow and zero
#: the standardised feature for every track.
MAX_ABS_FEATURE = 1e6

#: Public track-feature columns, in the dataset's order. `mode` is a string
#: ("major"/"minor") in the public files; every other feature is numeric.
TRACK_FEATURE_COLUMNS: tuple[str, ...] = (
    "track_id", "duration", "release_year", "us_popularity_estimate",
    "acousticness", "beat_strength", "bounciness", "danceability",
    "dyn_range_mean", "energy", "flatness", "instrumentalness", "key",
    "liveness", "loudness", "mechanism", "mode", "organism", "speechiness",
    "tempo", "time_signature", "valence",
) + tuple(f"acoustic_vector_{i}" for i in range(8))

#: Columns that enter the feature matrix (mode is encoded as 1.0 for major).
NUMERIC_TRACK_COLUMNS: tuple[str, ...] = tuple(
    c for c in TRACK_FEATURE_COLUMNS if c != "track_id")


class UnknownTrackError(KeyError, ValueError):
  """A track id is not in the catalog."""

  def __str__(self) -> str:  # KeyError would repr() the message.
    return str(self.args[0])


def bad_feature_value(columns: Mapping[str, np.ndarray]
                      ) -> tuple[str, int, str] | None:
  """The first numeric track feature that is not finite or too large.

  Args:
    columns: track-feature columns (name -> [N] array).

  Returns:
    (column, row, what is wrong), or None if every value is sane.
  """
  for name in NUMERIC_TRACK_COLUMNS:
    if name not in columns:
      continue
    values = _encode_column(name, np.asarray(columns[name]))
    bad = ~np.isfinite(values) | (np.abs(values) > MAX_ABS_FEATURE)
    if bad.any():
      row = int(np.flatnonzero(bad)[0])
      return name, row, (f"value {values[row]!r} is not finite or its "
                         f"magnitude exceeds {MAX_ABS_FEATURE:g}")
  return None


class UnknownColumnError(KeyError, ValueError):
  """A column or feature name is not in the catalog."""

  def __str__(self) -> str:
    return str(self.args[0])


def _encode_column(name: str, values: np.ndarray) -> np.ndarray:
  if name == "mode" and values.dtype.kind in "OUS":
    return (values.astype(str) == "major").astype(np.float64)
  return np.asarray(values, dtype=np.float64)


@dataclasses.dataclass
class TrackCatalog:
  """Tracks and their features.

  Look a column up by name with `column(name)` (raw values, as in the
  files) or `feature(name)` (standardised).

  Attributes:
    columns: the public track-feature columns (name -> [N] array), in
      `TRACK_FEATURE_COLUMNS` order.
    features: float32 [N, F] standardised numeric features (z-scores), F =
      len(NUMERIC_TRACK_COLUMNS).
    feature_names: the F column names of `features`.
    popularity: float32 [N] in [0, 1], the rank of `us_popularity_estimate`.
  """
  columns: Mapping[str, np.ndarray]
  features: np.ndarray = dataclasses.field(init=False)
  feature_names: tuple[str, ...] = dataclasses.field(init=False)
  popularity: np.ndarray = dataclasses.field(init=False)

  def __post_init__(self):
    missing = [c for c in TRACK_FEATURE_COLUMNS if c not in self.columns]
    if missing:
      raise ValueError(f"track catalog is missing columns {missing}")
    self.columns = {c: np.asarray(self.columns[c]) for c in TRACK_FEATURE_COLUMNS}
    ids = self.columns["track_id"].astype(str)
    if len(ids) == 0:
      raise ValueError("track catalog is empty")
    self._row_of = {tid: i for i, tid in enumerate(ids)}
    if len(self._row_of) != len(ids):
      raise ValueError("track catalog has duplicate track_id values")
    bad = bad_feature_value(self.columns)
    if bad is not None:
      name, row, what = bad
      raise ValueError(f"track {ids[row]!r}, column {name!r}: {what}; fix "
                       "or drop that track")
    raw = np.stack([_encode_column(c, self.columns[c])
                    for c in NUMERIC_TRACK_COLUMNS], axis=1)
    std = raw.std(axis=0)
    self.features = ((raw - raw.mean(axis=0)) /
                     np.where(std > 0, std, 1.0)).astype(np.float32)
    self.feature_names = NUMERIC_TRACK_COLUMNS
    self._bounds = (self.features.min(axis=0), self.features.max(axis=0))
    pop = self.columns["us_popularity_estimate"].astype(np.float64)
    ranks = np.argsort(np.argsort(pop, kind="stable"), kind="stable")
    self.popularity = (ranks / max(len(pop) - 1, 1)).astype(np.float32)

  @property
  def num_tracks(self) -> int:
    return int(self.features.shape[0])

  @property
  def feature_dim(self) -> int:
    return int(self.features.shape[1])

  @property
  def track_ids(self) -> np.ndarray:
    """Public string ids, indexed by catalog row."""
    return self.columns["track_id"]

  def rows_of(self, track_ids: Sequence[str]) -> np.ndarray:
    """Catalog rows of public track ids.

    Args:
      track_ids: public ids.

    Returns:
      int32 array of catalog rows.

    Raises:
      UnknownTrackError: if an id is not in the catalog (the first few
        unknown ids are named).
    """
    rows = np.fromiter((self._row_of.get(str(t), -1) for t in track_ids),
                       dtype=np.int64, count=len(track_ids))
    if (rows < 0).any():
      unknown = [str(t) for t, r in zip(track_ids, rows) if r < 0][:5]
      raise UnknownTrackError(
          f"{int((rows < 0).sum())} track id(s) not in the catalog, e.g. "
          f"{unknown}")
    return rows.astype(np.int32)

  def column(self, name: str) -> np.ndarray:
    """The raw public column `name` ([N], by catalog row), as in the files.

    Args:
      name: a column of `TRACK_FEATURE_COLUMNS`, e.g. "energy".

    Returns:
      The column's [N] array (`mode` as the strings "major"/"minor" if the
      catalog was read from public files).

    Raises:
      KeyError: naming the unknown column and listing the known ones.
    """
    if name not in self.columns:
      raise UnknownColumnError(
          f"track catalog has no column {name!r}; columns: "
          f"{', '.join(self.columns)}")
    return self.columns[name]

  def feature(self, name: str) -> np.ndarray:
    """The standardised (z-scored) float32 [N] feature `name`.

    Args:
      name: one of `feature_names` (the numeric columns).

    Returns:
      The column of `features` for `name`.

    Raises:
      KeyError: naming the unknown feature and listing the known ones.
    """
    if name not in self.feature_names:
      raise UnknownColumnError(
          f"track catalog has no numeric feature {name!r}; features: "
          f"{', '.join(self.feature_names)}")
    return self.features[:, self.feature_names.index(name)]

  def feature_bounds(self) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature minimum and maximum of `features` (float32 [F] each)."""
    return self._bounds


def acoustic_vectors(catalog: TrackCatalog) -> np.ndarray:
  """The raw `acoustic_vector_*` columns, float32 [N, 8]."""
  return np.stack([catalog.columns[f"acoustic_vector_{i}"] for i in range(8)],
                  axis=1).astype(np.float32)
