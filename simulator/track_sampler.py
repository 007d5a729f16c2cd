"""Track samplers: turn an agent's action into tracks from the pool.

A track sampler owns the action space. It receives the action for a batch of
rows and the `available` mask (candidates in the pool not yet played) and
returns the pool slots to play, never one that is unavailable:

* `DiscreteTrackSampler`: the action is a pool slot (or k slots for a slate).
  A slot that is played or padding *falls through* to the next available slot
  in pool order, wrapping around to the start of the pool.
* `ContinuousTrackSampler`: the action is a vector in track-feature space;
  the tracks placed are the k available candidates nearest to it (Euclidean).

Actions outside the action spec (shape, dtype, and the bounds: pool slots,
or the catalog's feature range for continuous actions) raise `ActionError`;
nothing is clipped silently (`ContinuousTrackSampler(clip_actions=True)`
clips finite continuous actions, for PPO).
"""

import abc

import gin
import numpy as np
from tf_agents.specs import array_spec

from playlist_sim.data.catalog import TrackCatalog
from playlist_sim.data.checks import check_count

__all__ = [
    "AbstractTrackSampler",
    "ActionError",
    "ContinuousTrackSampler",
    "DiscreteTrackSampler",
]


class ActionError(ValueError):
  """An action does not fit the action spec."""


class AbstractTrackSampler(abc.ABC):
  """Maps actions to pool slots; subclasses define the action spec."""

  def __init__(self, slate_size: int = 1):
    """Builds the sampler.

    Args:
      slate_size: tracks placed per step (k).

    Raises:
      ValueError: if slate_size < 1.
    """
    self.slate_size = check_count("slate_size", slate_size, maximum=10**4,
                                  owner=type(self).__name__)
    self._specs = {}

  def _spec(self, max_pool_size: int, catalog: TrackCatalog):
    # Built once per pool width: the hot path must not rebuild specs.
    key = (max_pool_size, id(catalog))
    if key not in self._specs:
      self._specs[key] = self.action_spec(max_pool_size, catalog)
    return self._specs[key]

  @abc.abstractmethod
  def action_spec(self, max_pool_size: int,
                  catalog: TrackCatalog) -> array_spec.BoundedArraySpec:
    """The spec of one row's action."""

  @abc.abstractmethod
  def select(self, action: np.ndarray, available: np.ndarray,
             candidate_ids: np.ndarray, catalog: TrackCatalog) -> np.ndarray:
    """Chooses the slots to play.

    Args:
      action: the actions of R rows (leading dimension R).
      available: bool [R, K], candidates that may still be played. Not
        modified.
      candidate_ids: int32 [R, K] catalog rows of the pools.
      catalog: the track catalog.

    Returns:
      int64 [R, k] pool slots, distinct within a row, or -1 where fewer than
      k candidates were available.

    Raises:
      ActionError: if the action has the wrong shape, dtype or range.
    """

  def _check(self, action: np.ndarray, spec: array_spec.BoundedArraySpec,
             rows: int, clip: bool = False) -> np.ndarray:
    action = np.asarray(action)
    expected = (rows,) + tuple(spec.shape)
    if action.shape != expected:
      raise ActionError(
          f"action has shape {action.shape}, expected {expected} "
          f"(batch of {rows}, action spec shape {tuple(spec.shape)})")
    if spec.dtype.kind in "iu" and action.dtype.kind not in "iu":
      raise ActionError(f"action dtype {action.dtype} is not an integer type")
    if spec.dtype.kind == "f":
      if action.dtype.kind not in "fiu":
        raise ActionError(f"action dtype {action.dtype} is not numeric; a "
                          "continuous action is a float vector")
      if not np.isfinite(action).all():
        raise ActionError("action contains NaN or infinity")
      if clip:
        return np.clip(action, spec.minimum, spec.maximum)
      # Compared in the spec's dtype, where the bounds were computed, with
      # room for float rounding (a policy's tanh squash lands on a bound).
      cast = action.astype(spec.dtype)
      slack = 1e-5 * (spec.maximum - spec.minimum) + 1e-6
      bad = (cast < spec.minimum - slack) | (cast > spec.maximum + slack)
      if bad.any():
        column = int(np.flatnonzero(bad.any(axis=0))[0]) if (
            bad.ndim == 2) else 0
        raise ActionError(
            f"action {action[bad].ravel()[:3].tolist()} outside the action "
            f"spec's bounds (feature {column}: "
            f"{float(np.ravel(spec.minimum)[column]):.4g}.."
            f"{float(np.ravel(spec.maximum)[column]):.4g}); clip actions to "
            "the spec (e.g. TF-Agents' ActionClipWrapper)")
    if spec.dtype.kind in "iu":
      low, high = spec.minimum, spec.maximum
      bad = (action < low) | (action > high)
      if bad.any():
        raise ActionError(
            f"action {action[bad].ravel()[:5].tolist()} outside the pool: "
            f"valid slots are {int(np.min(low))}..{int(np.max(high))}")
    return action


@gin.configurable
class DiscreteTrackSampler(AbstractTrackSampler):
  """The action is a pool slot; played or padding slots fall through."""

  def action_spec(self, max_pool_size, catalog):
    del catalog
    shape = () if self.slate_size == 1 else (self.slate_size,)
    return array_spec.BoundedArraySpec(shape, np.int32, minimum=0,
                                       maximum=max_pool_size - 1,
                                       name="action")

  def select(self, action, available, candidate_ids, catalog):
    rows, k = available.shape
    spec = self._spec(k, catalog)
    action = self._check(action, spec, rows).reshape(rows, -1).astype(np.int64)
    available = available.copy()
    row_index = np.arange(rows)
    chosen = np.full((rows, self.slate_size), -1, dtype=np.int64)
    for j in range(self.slate_size):
      wanted = action[:, j].copy()
      bad = np.flatnonzero(~available[row_index, wanted])
      if bad.size:
        # Next available slot at or after `wanted`, wrapping to the start:
        # rotate each bad row so that `wanted` comes first, take the first
        # available slot.
        rotated = (wanted[bad, None] + np.arange(k)) % k
        mask = available[bad[:, None], rotated]
        first = mask.argmax(axis=1)
        wanted[bad] = np.where(mask.any(axis=1),
                               rotated[np.arange(bad.size), first], k)
      has = wanted < k
      chosen[has, j] = wanted[has]
      available[row_index[has], wanted[has]] = False
    return chosen


@gin.configurable
class ContinuousTrackSampler(AbstractTrackSampler):
  """The action is a point in track-feature space; nearest candidates win."""

  def __init__(self, slate_size: int = 1, clip_actions: bool = False):
    """Builds the sampler.

    Args:
      slate_size: tracks placed per step (k).
      clip_actions: clip finite actions outside the spec's bounds to the
        bounds instead of raising `ActionError`. For policies that sample
        around their mean without clipping (TF-Agents' PPO policies); the
        nearest candidates to a clipped point are then placed. NaN and
        infinity always raise.

    Raises:
      ValueError: if slate_size is not a positive integer.
    """
    super().__init__(slate_size)
    self.clip_actions = bool(clip_actions)

  def action_spec(self, max_pool_size, catalog):
    del max_pool_size
    low, high = catalog.feature_bounds()
    return array_spec.BoundedArraySpec((catalog.feature_dim,), np.float32,
                                       minimum=low, maximum=high,
                                       name="action")

  def _workspace(self, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A C-contiguous scratch array of `shape`, reused between calls."""
    size = int(np.prod(shape))
    buffer = getattr(self, "_buffer", None)
    if buffer is None or buffer.size < size or buffer.dtype != dtype:
      buffer = self._buffer = np.empty(size, dtype)
    return buffer[:size].reshape(shape)

  def select(self, action, available, candidate_ids, catalog):
    rows, _ = available.shape
    spec = self._spec(available.shape[1], catalog)
    action = self._check(action, spec, rows,
                         clip=self.clip_actions).astype(np.float32)
    # Squared distances [R, K] through one reused [R, K, F] workspace: fresh
    # multi-megabyte temporaries each step cost more (page faults) than the
    # arithmetic. Same operations, same order: the same values.
    features = self._workspace(available.shape + (catalog.feature_dim,),
                               catalog.features.dtype)
    np.take(catalog.features, candidate_ids, axis=0, out=features)
    np.subtract(features, action[:, None, :], out=features)
    np.square(features, out=features)
    dist = features.sum(-1)                                   # [R, K]
    dist = np.where(available, dist, np.inf)
    k = min(self.slate_size, dist.shape[1])
    if k < dist.shape[1]:
      nearest = np.argpartition(dist, k - 1, axis=1)[:, :k]
    else:
      nearest = np.tile(np.arange(k), (rows, 1))
    order = np.take_along_axis(dist, nearest, 1).argsort(axis=1, kind="stable")
    nearest = np.take_along_axis(nearest, order, 1)
    reachable = np.isfinite(np.take_along_axis(dist, nearest, 1))
    chosen = np.full((rows, self.slate_size), -1, dtype=np.int64)
    chosen[:, :k] = np.where(reachable, nearest, -1)
    return chosen
