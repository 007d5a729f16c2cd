"""A simple, documented user model: logistic in user-track affinity.

    P(listen | u, t) = sigmoid(affinity_weight * <taste_u, latent_t> / 8
                               + quality_weight * quality_t + bias)

`taste_u` and `latent_t` are the world's latent vectors (8-d), `quality_t` the
track's latent appeal. The model is memoryless: order does not matter, which
makes it the reference the sequential `ParametricListener` is compared with
and a fast default for tests.
"""

import gin
import numpy as np

from user_models.base import AbstractUserModel, BINARY_RESPONSE_LEVELS, SessionContext
from playlist_sim.common.numeric import sigmoid
from playlist_sim.data.world import LATENT_DIM, SyntheticWorld

__all__ = ["LogisticUserModel"]


@gin.configurable
class LogisticUserModel(AbstractUserModel):
  """Memoryless skip/listen model over a `SyntheticWorld`."""

  response_levels = BINARY_RESPONSE_LEVELS

  def __init__(self, world: SyntheticWorld, affinity_weight: float = 1.5,
               quality_weight: float = 0.5, bias: float = 0.0):
    """Builds the model.

    Args:
      world: the world whose listeners and tracks are modelled.
      affinity_weight: weight of the taste-track inner product.
      quality_weight: weight of the track's latent appeal.
      bias: logit offset; higher means more listens overall.
    """
    self.world = world
    self.affinity_weight = float(affinity_weight)
    self.quality_weight = float(quality_weight)
    self.bias = float(bias)

  def listen_logits(self, user_ids: np.ndarray,
                    track_ids: np.ndarray) -> np.ndarray:
    """Logit of a listen, float32 [R, k], for users [R] and tracks [R, k]."""
    taste = self.world.user_taste[user_ids]                  # [R, 8]
    latent = self.world.track_latent[track_ids]              # [R, k, 8]
    affinity = np.einsum("rd,rkd->rk", taste, latent) / LATENT_DIM
    return (self.affinity_weight * affinity +
            self.quality_weight * self.world.track_quality[track_ids] +
            self.bias)

  def predict(self, context: SessionContext,
              track_ids: np.ndarray) -> np.ndarray:
    p_listen = sigmoid(self.listen_logits(context.user_ids, track_ids))
    return np.stack([1.0 - p_listen, p_listen], axis=-1)
