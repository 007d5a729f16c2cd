"""Episode samplers: draw a listener and a candidate pool (a "play mode").

Every episode of the simulator starts from a play mode: who listens, what
they are known to like (the observable user context), and which tracks the
agent may choose from. Samplers draw play modes for a batch of environment
rows at once, from a `np.random.Generator` the environment passes in.
"""

import abc
import dataclasses

import gin
import numpy as np

from playlist_sim.data.catalog import TrackCatalog
from playlist_sim.data.checks import check_count
from playlist_sim.data.world import SyntheticWorld

__all__ = ["AbstractEpisodeSampler", "PlayModes", "RandomEpisodeSampler"]


@dataclasses.dataclass(frozen=True)
class PlayModes:
  """A batch of n play modes.

  Attributes:
    user_ids: int64 [n].
    user_features: float32 [n, U] observable user context.
    candidate_ids: int32 [n, K] catalog rows of each pool, padded with 0.
    pool_sizes: int32 [n], the number of real candidates in each row
      (candidates occupy slots 0..pool_size-1).
    play_mode_ids: int64 [n], an id of each pool (e.g. the logged session).
  """
  user_ids: np.ndarray
  user_features: np.ndarray
  candidate_ids: np.ndarray
  pool_sizes: np.ndarray
  play_mode_ids: np.ndarray


class AbstractEpisodeSampler(abc.ABC):
  """Draws play modes. Subclasses set `catalog`, sizes and `_sample`."""

  catalog: TrackCatalog
  #: Width U of `PlayModes.user_features`.
  user_feature_dim: int
  #: Largest pool the sampler draws (the padded width K).
  max_pool_size: int

  def sample(self, rng: np.random.Generator, n: int) -> PlayModes:
    """Draws n play modes and checks them.

    Args:
      rng: the environment's generator.
      n: how many.

    Returns:
      `PlayModes` with leading dimension n.

    Raises:
      ValueError: if the sampler produced an empty pool, malformed arrays,
        a candidate id outside the catalog or twice in one pool, or
        non-finite user features.
    """
    modes = self._sample(rng, int(n))
    k = self.max_pool_size
    if modes.candidate_ids.shape != (n, k):
      raise ValueError(
          f"{type(self).__name__} returned candidate_ids of shape "
          f"{modes.candidate_ids.shape}, expected {(n, k)}")
    if modes.user_features.shape != (n, self.user_feature_dim):
      raise ValueError(
          f"{type(self).__name__} returned user_features of shape "
          f"{modes.user_features.shape}, expected {(n, self.user_feature_dim)}")
    if n and (modes.pool_sizes.min() < 1 or modes.pool_sizes.max() > k):
      raise ValueError(
          f"{type(self).__name__} drew a pool size outside 1..{k} "
          f"(min {modes.pool_sizes.min()}): an episode needs a non-empty pool")
    self._check_candidates(modes, n, k)
    if not np.isfinite(modes.user_features).all():
      raise ValueError(f"{type(self).__name__} returned NaN or infinite "
                       "user_features")
    return modes

  def _check_candidates(self, modes: PlayModes, n: int, k: int) -> None:
    """Candidate ids are catalog rows, distinct within a pool.

    Padding slots (at and after a row's pool size) hold 0 by convention and
    are never played; they must still be valid rows.
    """
    ids = np.asarray(modes.candidate_ids)
    name = type(self).__name__
    if ids.dtype.kind not in "iu":
      raise ValueError(f"{name} returned candidate_ids of dtype {ids.dtype}; "
                       "they must be integer catalog rows")
    num_tracks = self.catalog.num_tracks
    outside = (ids < 0) | (ids >= num_tracks)
    if outside.any():
      row, slot = np.argwhere(outside)[0]
      raise ValueError(
          f"{name} returned candidate id {int(ids[row, slot])} (play mode "
          f"{row}, slot {slot}) outside the catalog's rows 0..{num_tracks - 1}")
    if not n:
      return
    # Real slots keep their id, padding gets a distinct negative stand-in.
    real = np.arange(k)[None, :] < modes.pool_sizes[:, None]
    keyed = np.sort(np.where(real, ids, -1 - np.arange(k)[None, :]), axis=1)
    repeated = (np.diff(keyed, axis=1) == 0)
    if repeated.any():
      row, slot = np.argwhere(repeated)[0]
      raise ValueError(
          f"{name} returned candidate id {int(keyed[row, slot])} twice in play "
          f"mode {row}'s pool; a pool holds distinct tracks (a listener never "
          "hears a repeat)")

  @abc.abstractmethod
  def _sample(self, rng: np.random.Generator, n: int) -> PlayModes:
    """Draws n play modes (unchecked)."""


@gin.configurable
class RandomEpisodeSampler(AbstractEpisodeSampler):
  """Uniform listener, uniform pool of catalog tracks without replacement.

  The pool size is drawn uniformly from [min_pool_size, max_pool_size] per
  episode, so agents meet pools of varying size.
  """

  def __init__(self, world: SyntheticWorld, max_pool_size: int = 100,
               min_pool_size: int | None = None):
    """Builds the sampler.

    Args:
      world: the listeners and catalog to draw from.
      max_pool_size: largest pool, the padded width K of observations.
      min_pool_size: smallest pool; defaults to `max_pool_size` (fixed).

    Raises:
      ValueError: if the sizes are not 1 <= min <= max <= catalog size.
    """
    max_pool_size = check_count("max_pool_size", max_pool_size,
                                owner="RandomEpisodeSampler")
    min_pool_size = max_pool_size if min_pool_size is None else check_count(
        "min_pool_size", min_pool_size, owner="RandomEpisodeSampler")
    if not 1 <= min_pool_size <= max_pool_size <= world.catalog.num_tracks:
      raise ValueError(
          "RandomEpisodeSampler needs 1 <= min_pool_size <= max_pool_size <= "
          f"catalog size ({world.catalog.num_tracks}); got min_pool_size="
          f"{min_pool_size}, max_pool_size={max_pool_size}")
    self.world = world
    self.catalog = world.catalog
    self.user_feature_dim = int(world.user_features.shape[1])
    self.max_pool_size = int(max_pool_size)
    self.min_pool_size = int(min_pool_size)
    self._next_play_mode_id = 0

  def _sample(self, rng: np.random.Generator, n: int) -> PlayModes:
    users = rng.integers(0, self.world.num_users, size=n)
    sizes = rng.integers(self.min_pool_size, self.max_pool_size + 1, size=n)
    ids = np.zeros((n, self.max_pool_size), dtype=np.int32)
    for i in range(n):
      ids[i, :sizes[i]] = rng.choice(self.catalog.num_tracks, size=sizes[i],
                                     replace=False)
    play_mode_ids = np.arange(self._next_play_mode_id,
                              self._next_play_mode_id + n, dtype=np.int64)
    self._next_play_mode_id += n
    return PlayModes(user_ids=users.astype(np.int64),
                     user_features=self.world.user_features[users],
                     candidate_ids=ids, pool_sizes=sizes.astype(np.int32),
                     play_mode_ids=play_mode_ids)
