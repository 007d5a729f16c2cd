"""The published statistics of the public Spotify sessions dataset (MSSD).

`playlist_sim/data/mssd_reference.json` ships with the package: figures
computed by others from the real files (the 10,000-session `log_mini` sample
and the full training set) and published with their sources (listed in the
file's "sources"). The calibrated world draws its track features to match
the published quartiles, and `playlist_sim.data.mssd_comparison` compares any
logs with these figures.
"""

import functools
import json
import os
from typing import Any

import numpy as np

__all__ = ["MSSD_REFERENCE_PATH", "load_mssd_reference",
           "quantile_matched"]

#: Path of the shipped reference file.
MSSD_REFERENCE_PATH = os.path.join(os.path.dirname(__file__),
                                   "mssd_reference.json")


@functools.lru_cache(maxsize=1)
def _cached() -> str:
  with open(MSSD_REFERENCE_PATH, encoding="utf-8") as f:
    return f.read()


def load_mssd_reference() -> dict[str, Any]:
  """The reference figures as a fresh dict (safe to modify).

  Returns:
    The parsed `mssd_reference.json` ("about", "sources", "log_mini",
    "full_training_set", "track_features_all_tracks", ...).
  """
  return json.loads(_cached())


def quantile_matched(values: np.ndarray, stats: dict[str, float]
                     ) -> np.ndarray:
  """Maps values, by rank, onto a distribution with published quartiles.

  The inverse CDF passes through (0, min), (0.25, q25), (0.5, q50),
  (0.75, q75) and (1, max); it is linear between the quartiles and curved
  in the outer quarters, with one exponent chosen so that the mean is the
  published mean where that is reachable. The map is monotone, so whatever
  signal `values` carry (a track's genre, its popularity) survives.

  Args:
    values: [N] numbers; ties are broken by position.
    stats: a column of `track_features_all_tracks` (min, q25, q50, q75, max,
      mean).

  Returns:
    float64 [N] values with those quartiles (up to the sample's
    granularity).
  """
  values = np.asarray(values)
  n = values.shape[0]
  ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
  u = (ranks + 0.5) / max(n, 1)
  lo, q25, q50, q75, hi = (float(stats[k]) for k in
                           ("min", "q25", "q50", "q75", "max"))
  # Mean of the quartile-linear middle and the tails for a tail exponent p:
  # the outer quarters have means q25 - (q25 - lo) c and q75 + (hi - q75) c
  # with c = 1 / (p + 1); solve 4 * mean = sum of the quarter means for c.
  spread = (hi - q75) - (q25 - lo)
  middle = q25 + (q25 + q50) / 2 + (q50 + q75) / 2 + q75
  c = 0.5 if abs(spread) < 1e-12 else (4 * float(stats["mean"]) - middle
                                       ) / spread
  power = 1.0 / float(np.clip(c, 0.02, 0.5)) - 1.0
  out = np.interp(u, [0.25, 0.5, 0.75], [q25, q50, q75])
  low_tail = u < 0.25
  out[low_tail] = q25 - (q25 - lo) * ((0.25 - u[low_tail]) / 0.25) ** power
  high_tail = u > 0.75
  out[high_tail] = q75 + (hi - q75) * ((u[high_tail] - 0.75) / 0.25) ** power
  return out
