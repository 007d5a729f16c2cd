"""A seeded synthetic world: a track catalog and a population of listeners.

Tracks and listeners share a latent taste space of dimension 8 (the width of
the public `acoustic_vector_*` columns). Tracks are drawn around the centres
of `num_genres` latent genres; every public audio feature is a fixed, seeded
function of a track's latent vector plus noise, so the features carry the
genre signal the way real audio features do. Each listener likes one or two
genres: their latent taste is a mix of genre centres plus noise. What an agent
observes of a listener (`user_features`) is a noisy copy of that taste, as if
estimated from their listening history.

Track features come in two styles. "simple" (the original world) draws each
column from a hand-picked distribution. "mssd" (the calibrated world) makes
the same draws and then maps every public column, by rank, onto the
published quartiles of the real catalog (`track_features_all_tracks` in the
shipped `mssd_reference.json`), so medians and quartiles match real tracks
while each column keeps its link to the latent genre; `mode` is major for
65% of tracks. Both styles consume the seed identically, so listeners,
latent vectors and acoustic vectors do not depend on the style.

The world holds no response model: `LogisticUserModel` and
`ParametricListener` turn it into listeners' responses.
"""

import gin
import numpy as np

from playlist_sim.common.numeric import sigmoid
from playlist_sim.data.catalog import TrackCatalog
from playlist_sim.data.checks import check_count, check_number, check_seed
from playlist_sim.data.mssd_reference import load_mssd_reference
from playlist_sim.data.mssd_reference import quantile_matched

__all__ = ["SyntheticWorld", "LATENT_DIM", "TRACK_FEATURE_STYLES",
           "world_catalog"]

LATENT_DIM = 8
#: Styles of track-feature draws (see the module docstring).
TRACK_FEATURE_STYLES = ("simple", "mssd")
# Public columns left as drawn in the "mssd" style: their quartiles already
# match (time_signature 4/4/4) or they are the latent signal itself.
_UNMAPPED_COLUMNS = ("track_id", "mode", "time_signature")
_INTEGER_COLUMNS = ("release_year", "key")
_UNIT_COLUMNS = ("acousticness", "beat_strength", "bounciness", "danceability",
                 "energy", "flatness", "instrumentalness", "liveness",
                 "mechanism", "organism", "speechiness", "valence")


@gin.configurable
class SyntheticWorld:
  """Catalog, listeners and their latent tastes, all drawn from one seed.

  Attributes:
    catalog: the `TrackCatalog` (public track-feature columns).
    track_latent: float32 [N, 8] latent vector of each track.
    track_genre: int32 [N] latent genre of each track.
    track_quality: float32 [N] latent appeal shared by all listeners (drives
      `us_popularity_estimate`).
    user_taste: float32 [num_users, 8] latent taste of each listener.
    user_features: float32 [num_users, 8] observable, noisy taste.
  """

  def __init__(self,
               num_tracks: int = 5000,
               num_users: int = 2000,
               num_genres: int = 12,
               genre_spread: float = 0.6,
               user_feature_noise: float = 0.3,
               seed: int = 0,
               track_feature_style: str = "simple"):
    """Draws the world.

    Args:
      num_tracks: catalog size.
      num_users: listener population size.
      num_genres: number of latent genres.
      genre_spread: standard deviation of tracks around their genre centre.
      user_feature_noise: standard deviation of the noise between a
        listener's latent taste and their observable features.
      seed: seed of every draw.
      track_feature_style: "simple" (hand-picked distributions) or "mssd"
        (quartiles of the real catalog); see the module docstring.

    Raises:
      ValueError: on a size, spread or seed that is not a number of the
        right type and range, or an unknown feature style (the message
        names it).
    """
    if track_feature_style not in TRACK_FEATURE_STYLES:
      raise ValueError(
          f"SyntheticWorld: track_feature_style must be one of "
          f"{TRACK_FEATURE_STYLES}, got {track_feature_style!r}")
    # Sizes above these would allocate more than any machine has.
    num_tracks = check_count("num_tracks", num_tracks, maximum=10**7,
                             owner="SyntheticWorld")
    num_users = check_count("num_users", num_users, maximum=10**8,
                            owner="SyntheticWorld")
    num_genres = check_count("num_genres", num_genres, maximum=10**4,
                             owner="SyntheticWorld")
    genre_spread = check_number("genre_spread", genre_spread, 0.0,
                                owner="SyntheticWorld")
    user_feature_noise = check_number("user_feature_noise",
                                      user_feature_noise, 0.0,
                                      owner="SyntheticWorld")
    seed = check_seed("seed", seed, owner="SyntheticWorld")
    rng = np.random.default_rng(seed)
    self.num_genres = int(num_genres)
    centres = rng.normal(0.0, 1.5, size=(num_genres, LATENT_DIM))
    genre = rng.integers(0, num_genres, size=num_tracks)
    latent = centres[genre] + rng.normal(0, genre_spread,
                                         size=(num_tracks, LATENT_DIM))
    genre_appeal = rng.normal(0.0, 0.5, size=num_genres)
    quality = genre_appeal[genre] + rng.normal(0.0, 1.0, size=num_tracks)
    self.genre_centres = centres.astype(np.float32)
    self.track_latent = latent.astype(np.float32)
    self.track_genre = genre.astype(np.int32)
    self.track_quality = quality.astype(np.float32)
    columns = self._track_columns(rng, latent, quality)
    if track_feature_style == "mssd":
      columns = _matched_to_mssd(columns)
    else:
      columns["mode"] = np.where(columns["mode"] < 0.6, "major", "minor")
    self.track_feature_style = track_feature_style
    self.catalog = TrackCatalog(columns)

    favourite = rng.integers(0, num_genres, size=(num_users, 2))
    weight = rng.uniform(0.5, 1.0, size=(num_users, 1))
    taste = (weight * centres[favourite[:, 0]] +
             (1 - weight) * centres[favourite[:, 1]] +
             rng.normal(0, 0.4, size=(num_users, LATENT_DIM)))
    self.user_taste = taste.astype(np.float32)
    self.user_features = (taste + rng.normal(
        0, user_feature_noise, size=taste.shape)).astype(np.float32)

  @property
  def num_users(self) -> int:
    return int(self.user_taste.shape[0])

  @staticmethod
  def _track_columns(rng, latent, quality) -> dict:
    n = latent.shape[0]
    cols = {"track_id": np.array([f"t_{i:07d}" for i in range(n)])}
    cols["duration"] = np.clip(rng.lognormal(np.log(220), 0.25, n), 60, 900)
    cols["release_year"] = np.clip(
        2018 - np.round(rng.exponential(9.0, n)), 1950, 2018).astype(np.int64)
    # The public estimate is a percentile-like score between 90 and 100.
    cols["us_popularity_estimate"] = 90.0 + 10.0 * sigmoid(quality)
    mixing = rng.normal(0, 0.5, size=(LATENT_DIM, len(_UNIT_COLUMNS) + 3))
    mixed = latent @ mixing + rng.normal(0, 0.3, size=(n, mixing.shape[1]))
    for j, name in enumerate(_UNIT_COLUMNS):
      cols[name] = sigmoid(mixed[:, j])
    cols["dyn_range_mean"] = 5.0 + 25.0 * sigmoid(mixed[:, -3])
    cols["loudness"] = -25.0 + 20.0 * sigmoid(mixed[:, -2])
    cols["tempo"] = 60.0 + 120.0 * sigmoid(mixed[:, -1])
    cols["key"] = rng.integers(0, 12, n).astype(np.int64)
    # Kept as a uniform so the "mssd" style can re-threshold it (65% major)
    # without another draw.
    cols["mode"] = rng.random(n)
    cols["time_signature"] = rng.choice(np.array([3, 4, 5]), size=n,
                                        p=[0.1, 0.85, 0.05]).astype(np.int64)
    for i in range(LATENT_DIM):
      cols[f"acoustic_vector_{i}"] = np.tanh(latent[:, i] / 2.0)
    return cols


def _matched_to_mssd(cols: dict) -> dict:
  """The "mssd" style: public columns mapped onto the real quartiles."""
  reference = load_mssd_reference()["track_features_all_tracks"]["columns"]
  out = dict(cols)
  for name, stats in reference.items():
    if name in _UNMAPPED_COLUMNS or name not in cols:
      continue
    values = quantile_matched(cols[name], stats)
    out[name] = (np.round(values).astype(np.int64)
                 if name in _INTEGER_COLUMNS else values)
  out["mode"] = np.where(cols["mode"] < reference["mode"]["mean"], "major",
                         "minor")
  return out


@gin.configurable
def world_catalog(world: SyntheticWorld = gin.REQUIRED) -> TrackCatalog:
  """The world's track catalog, for gin.

  configs/simulate.gin makes it the singleton `catalog`, so a user model of
  your own takes it as `MyListener.catalog = @catalog/gin.singleton()`.

  Args:
    world: the world (in the shipped configs, `@world/gin.singleton()`).

  Returns:
    `world.catalog`.
  """
  return world.catalog
