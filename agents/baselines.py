"""Baseline playlist policies as TF-Agents PyPolicies.

Each baseline scores the candidates in the observation and places the
highest-scoring available ones (`candidate_mask`), so no baseline ever picks a
played track. Scores:

* `random`: i.i.d. uniform scores from a seeded generator (a uniformly random
  available candidate; for continuous action specs, a uniform point in the
  action box);
* `popularity`: the catalog's popularity rank of the track.
"""

from typing import Callable

import numpy as np
from tf_agents.policies import py_policy
from tf_agents.policies import random_py_policy
from tf_agents.specs import array_spec
from tf_agents.trajectories import policy_step
from tf_agents.trajectories import time_step as ts

from user_models.catalog import TrackCatalog

__all__ = ["ScoringPyPolicy", "make_baseline_policy", "BASELINES"]

ScoreFn = Callable[[dict], np.ndarray]


class ScoringPyPolicy(py_policy.PyPolicy):
  """Places the available candidates with the highest scores.

  Works on batched time steps ([B, ...] observations); for a slate action of
  shape (k,), the k best available candidates in score order.
  """

  def __init__(self, time_step_spec: ts.TimeStep,
               action_spec: array_spec.BoundedArraySpec, score_fn: ScoreFn,
               name: str = "scoring"):
    """Builds the policy.

    Args:
      time_step_spec: the environment's time step spec.
      action_spec: a discrete action spec (pool slots).
      score_fn: maps a batched observation dict to float scores [B, K].
      name: the policy's name.

    Raises:
      ValueError: if the action spec is not integer.
    """
    if action_spec.dtype.kind not in "iu":
      raise ValueError(f"{name} policy needs a discrete (pool slot) action "
                       f"spec, got dtype {action_spec.dtype}")
    super().__init__(time_step_spec, action_spec)
    self._score_fn = score_fn
    self.name = name

  def _action(self, time_step, policy_state):
    obs = time_step.observation
    mask = np.asarray(obs["candidate_mask"])
    squeeze = mask.ndim == 1
    if squeeze:  # An unbatched time step.
      obs = {k: np.asarray(v)[None] for k, v in obs.items()}
      mask = mask[None]
    scores = np.where(mask, self._score_fn(obs), -np.inf)
    k = int(np.prod(self.action_spec.shape, dtype=np.int64))
    if k == 1:
      best = scores.argmax(axis=1)[:, None]
    else:
      best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    action = best.reshape((-1,) + tuple(self.action_spec.shape))
    action = action.astype(self.action_spec.dtype)
    if squeeze:
      action = action[0]
    return policy_step.PolicyStep(action, policy_state, ())


def _random_scores(seed: int) -> ScoreFn:
  rng = np.random.default_rng(seed)
  return lambda obs: rng.random(obs["candidate_mask"].shape)


def _popularity_scores(catalog: TrackCatalog) -> ScoreFn:
  return lambda obs: catalog.popularity[obs["candidate_ids"]]


BASELINES = ("random", "popularity")


def make_baseline_policy(name: str, time_step_spec: ts.TimeStep,
                         action_spec: array_spec.BoundedArraySpec,
                         catalog: TrackCatalog,
                         seed: int = 0) -> py_policy.PyPolicy:
  """Builds a baseline by name.

  Args:
    name: one of `BASELINES`.
    time_step_spec: the environment's time step spec.
    action_spec: the environment's action spec.
    catalog: the environment's catalog.
    seed: seed of the random baseline.

  Returns:
    A PyPolicy for batched time steps.

  Raises:
    ValueError: for an unknown name or a baseline that does not support the
      action spec.
  """
  if name not in BASELINES:
    raise ValueError(f"unknown policy {name!r}; choose one of {BASELINES}")
  if action_spec.dtype.kind == "f":
    if name != "random":
      raise ValueError(f"policy {name!r} needs a discrete action spec; the "
                       "environment has a continuous one")
    return random_py_policy.RandomPyPolicy(time_step_spec, action_spec,
                                           seed=seed)
  score_fn = (_random_scores(seed) if name == "random" else
              _popularity_scores(catalog))
  return ScoringPyPolicy(time_step_spec, action_spec, score_fn, name=name)
