"""Vanilla DQN over the fixed action set of K pool slots: the baseline.

A standard TF-Agents `QNetwork` with one output per pool slot. Its input is
the whole observation turned into one flat vector by preprocessing layers:
the catalog features of every candidate (looked up by id, in slot order,
K x F numbers), the features of the H history tracks, a one-hot of each
history response, the user features, the scaled position and the candidate
mask. Unlike the action head (`agents.networks.ActionHeadQNetwork`), the
network ties each output to a slot, so it must learn the same scoring K
times and cannot serve pools of another size; that is the point of the
comparison in the paper.

The agent is `agents.ahdqn.make_q_agent`: the same (double) DQN, target
network, masked exploration and n-step options as AH-DQN.
"""

from typing import Sequence

import numpy as np
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.networks import q_network
from tf_agents.trajectories import time_step as ts
from tf_agents.typing import types

from agents.ahdqn import make_q_agent
from agents.networks import OBSERVATION_KEYS, OPTIONAL_CANDIDATE_KEYS

__all__ = ["TrackFeatureLookup", "create_dqn_agent", "create_dqn_network"]


class TrackFeatureLookup(tf.keras.layers.Layer):
  """Catalog features of each id, flattened: int [B, n] -> float [B, n * F]."""

  def __init__(self, track_features: np.ndarray, **kwargs):
    super().__init__(**kwargs)
    self._track_features = np.asarray(track_features, np.float32)
    self._table = tf.constant(self._track_features)

  def call(self, ids):
    features = tf.gather(self._table, ids)
    return tf.reshape(features, [-1, features.shape[-2] * features.shape[-1]])

  def get_config(self):
    # TF-Agents copies preprocessing layers through their config.
    return dict(super().get_config(), track_features=self._track_features)


class _ScaledFloat(tf.keras.layers.Layer):
  """Casts to float32, scales and flattens to [B, -1]."""

  def __init__(self, scale: float = 1.0, **kwargs):
    super().__init__(**kwargs)
    self._scale = float(scale)

  def call(self, x):
    x = tf.cast(x, tf.float32) * self._scale
    return tf.reshape(x, [tf.shape(x)[0], -1])

  def get_config(self):
    return dict(super().get_config(), scale=self._scale)


class _OneHotResponses(tf.keras.layers.Layer):
  """History responses (-1 pad, levels 0..L-1) as a flat one-hot [B, H*(L+1)]."""

  def __init__(self, num_levels: int, **kwargs):
    super().__init__(**kwargs)
    self._num_levels = int(num_levels)

  def call(self, responses):
    one_hot = tf.one_hot(tf.cast(responses, tf.int32) + 1,
                         self._num_levels + 1)
    return tf.reshape(one_hot, [-1, one_hot.shape[-2] * one_hot.shape[-1]])

  def get_config(self):
    return dict(super().get_config(), num_levels=self._num_levels)


def create_dqn_network(observation_spec: dict, action_spec,
                       track_features: np.ndarray,
                       fc_layer_params: Sequence[int] = (256, 128)
                       ) -> q_network.QNetwork:
  """A `QNetwork` over the flattened observation (see module docstring).

  Args:
    observation_spec: the playlist observation tensor specs.
    action_spec: the discrete action spec; one output per slot.
    track_features: float [N, F] catalog feature table.
    fc_layer_params: hidden units of the MLP.

  Returns:
    The network.

  Raises:
    ValueError: if the spec lacks a playlist observation key.
  """
  missing = [k for k in OBSERVATION_KEYS if k not in observation_spec]
  if missing:
    raise ValueError(f"the observation spec lacks {missing}")
  position_max = float(np.max(observation_spec["position"].maximum))
  num_levels = int(np.max(observation_spec["history_responses"].maximum)) + 1
  preprocessing = {
      "user_features": _ScaledFloat(),
      "history_ids": TrackFeatureLookup(track_features),
      "history_responses": _OneHotResponses(num_levels),
      "position": _ScaledFloat(1.0 / max(position_max, 1.0)),
      "candidate_ids": TrackFeatureLookup(track_features),
      "candidate_mask": _ScaledFloat(),
  }
  preprocessing.update({k: _ScaledFloat() for k in OPTIONAL_CANDIDATE_KEYS
                        if k in observation_spec})
  return q_network.QNetwork(
      observation_spec, action_spec, preprocessing_layers=preprocessing,
      preprocessing_combiner=tf.keras.layers.Concatenate(axis=-1),
      fc_layer_params=tuple(fc_layer_params), name="DqnQNetwork")


def create_dqn_agent(time_step_spec: ts.TimeStep,
                     action_spec: types.NestedTensorSpec,
                     track_features: np.ndarray,
                     optimizer: tf.keras.optimizers.Optimizer,
                     fc_layer_params: Sequence[int] = (256, 128),
                     **agent_kwargs) -> dqn_agent.DqnAgent:
  """The vanilla DQN agent: `make_q_agent` over `create_dqn_network`.

  Args:
    time_step_spec: the environment's time step spec (tensor specs).
    action_spec: the discrete action spec (pool slots).
    track_features: float [N, F] catalog feature table.
    optimizer: the optimizer.
    fc_layer_params: hidden units of the MLP.
    **agent_kwargs: passed to `make_q_agent` (epsilon, gamma, n-step...).

  Returns:
    An initialised agent.
  """
  q_net = create_dqn_network(time_step_spec.observation, action_spec,
                             track_features, fc_layer_params)
  return make_q_agent(time_step_spec, action_spec, q_net, optimizer,
                      name="dqn", **agent_kwargs)
