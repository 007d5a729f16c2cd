"""A seeded synthetic world: a track catalog and a population of listeners.

Tracks and listeners share a latent taste space of dimension 8 (the width of
the public `acoustic_vector_*` columns). Tracks are drawn around the centres
of `num_genres` latent genres; every public audio feature is a fixed, seeded
function of a track's latent vector plus noise, so the features carry the
genre signal the way real audio features do. Each listener likes one or two
genres: their latent taste is a mix of genre centres plus noise. What an agent
observes of a listener (`user_features`) is a noisy copy of that taste, as if
estimated from their listening history.

The world holds no response model: `LogisticUserModel` and
`ParametricListener` turn it into listeners' responses.
"""

import gin
import numpy as np

from user_models.catalog import TrackCatalog

__all__ = ["SyntheticWorld", "LATENT_DIM", "world_catalog"]

LATENT_DIM = 8
_UNIT_COLUMNS = ("acousticness", "beat_strength", "bounciness", "danceability",
                 "energy", "flatness", "instrumentalness", "liveness",
                 "mechanism", "organism", "speechiness", "valence")


def _sigmoid(x: np.ndarray) -> np.ndarray:
  return 1.0 / (1.0 + np.exp(-x))


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
               seed: int = 0):
    """Draws the world.

    Args:
      num_tracks: catalog size.
      num_users: listener population size.
      num_genres: number of latent genres.
      genre_spread: standard deviation of tracks around their genre centre.
      user_feature_noise: standard deviation of the noise between a
        listener's latent taste and their observable features.
      seed: seed of every draw.

    Raises:
      ValueError: on a non-positive size.
    """
    for name, value in (("num_tracks", num_tracks), ("num_users", num_users),
                        ("num_genres", num_genres)):
      if int(value) < 1:
        raise ValueError(f"SyntheticWorld: {name} must be >= 1, got {value}")
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
    self.catalog = TrackCatalog(self._track_columns(rng, latent, quality))

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
    cols["us_popularity_estimate"] = 90.0 + 10.0 * _sigmoid(quality)
    mixing = rng.normal(0, 0.5, size=(LATENT_DIM, len(_UNIT_COLUMNS) + 3))
    mixed = latent @ mixing + rng.normal(0, 0.3, size=(n, mixing.shape[1]))
    for j, name in enumerate(_UNIT_COLUMNS):
      cols[name] = _sigmoid(mixed[:, j])
    cols["dyn_range_mean"] = 5.0 + 25.0 * _sigmoid(mixed[:, -3])
    cols["loudness"] = -25.0 + 20.0 * _sigmoid(mixed[:, -2])
    cols["tempo"] = 60.0 + 120.0 * _sigmoid(mixed[:, -1])
    cols["key"] = rng.integers(0, 12, n).astype(np.int64)
    cols["mode"] = np.where(rng.random(n) < 0.6, "major", "minor")
    cols["time_signature"] = rng.choice(np.array([3, 4, 5]), size=n,
                                        p=[0.1, 0.85, 0.05]).astype(np.int64)
    for i in range(LATENT_DIM):
      cols[f"acoustic_vector_{i}"] = np.tanh(latent[:, i] / 2.0)
    return cols


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
