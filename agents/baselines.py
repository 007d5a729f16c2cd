"""Baseline playlist policies as TF-Agents PyPolicies.

Each baseline scores the candidates in the observation and places the
highest-scoring available ones (`candidate_mask`), so no baseline ever picks a
played track. Scores:

* `random`: i.i.d. uniform scores from a seeded generator (a uniformly random
  available candidate; for continuous action specs, a uniform point in the
  action box);
* `popularity`: the catalog's popularity rank of the track;
* `cosine`: cosine similarity between the observed user features and the
  track's `acoustic_vector_*` columns (user features live in that space).

With a `temperature`, a `ScoringPyPolicy` samples from the softmax of
score / temperature over the available candidates instead of taking the best,
and reports the probability of its choice (`info["propensity"]`): this is the
stochastic logging policy of `simulator.log_generation`.
"""

from typing import Callable

import numpy as np
from tf_agents.policies import py_policy
from tf_agents.policies import random_py_policy
from tf_agents.specs import array_spec
from tf_agents.trajectories import policy_step
from tf_agents.trajectories import time_step as ts

from user_models.catalog import TrackCatalog

__all__ = ["ScoringPyPolicy", "make_baseline_policy", "BASELINES",
           "acoustic_vectors", "cosine_scores"]

ScoreFn = Callable[[dict], np.ndarray]


class ScoringPyPolicy(py_policy.PyPolicy):
  """Places the available candidates with the highest scores.

  Works on batched time steps ([B, ...] observations); for a slate action of
  shape (k,), the k best available candidates in score order.
  """

  def __init__(self, time_step_spec: ts.TimeStep,
               action_spec: array_spec.BoundedArraySpec, score_fn: ScoreFn,
               name: str = "scoring", temperature: float | None = None,
               seed: int = 0):
    """Builds the policy.

    Args:
      time_step_spec: the environment's time step spec.
      action_spec: a discrete action spec (pool slots).
      score_fn: maps a batched observation dict to float scores [B, K].
      name: the policy's name.
      temperature: None for the best candidate; > 0 to sample from
        softmax(score / temperature) (single-track actions only).
      seed: seed of the sampling.

    Raises:
      ValueError: if the action spec is not integer, or a temperature is
        given for a slate or is not positive.
    """
    if action_spec.dtype.kind not in "iu":
      raise ValueError(f"{name} policy needs a discrete (pool slot) action "
                       f"spec, got dtype {action_spec.dtype}")
    info_spec = ()
    if temperature is not None:
      if temperature <= 0 or action_spec.shape != ():
        raise ValueError(f"{name}: temperature must be > 0 and the action a "
                         f"single slot; got {temperature}, action shape "
                         f"{action_spec.shape}")
      info_spec = {"propensity": array_spec.ArraySpec((), np.float32)}
    super().__init__(time_step_spec, action_spec, info_spec=info_spec)
    self._score_fn = score_fn
    self._temperature = temperature
    self._rng = np.random.default_rng(seed)
    self.name = name

  def _action(self, time_step, policy_state):
    obs = time_step.observation
    mask = np.asarray(obs["candidate_mask"])
    squeeze = mask.ndim == 1
    if squeeze:  # An unbatched time step.
      obs = {k: np.asarray(v)[None] for k, v in obs.items()}
      mask = mask[None]
    scores = np.where(mask, self._score_fn(obs), -np.inf)
    info = ()
    k = int(np.prod(self.action_spec.shape, dtype=np.int64))
    if self._temperature is not None:
      logits = scores / self._temperature
      probs = np.exp(logits - logits.max(axis=1, keepdims=True))
      probs /= probs.sum(axis=1, keepdims=True)
      draws = self._rng.random((len(probs), 1))
      best = np.minimum((probs.cumsum(axis=1) < draws).sum(axis=1),
                        probs.shape[1] - 1)
      # Rounding can land on a masked slot at the end: step back to the last
      # available one.
      best = np.where(mask[np.arange(len(best)), best], best,
                      probs.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1))
      propensity = probs[np.arange(len(best)), best].astype(np.float32)
      info = {"propensity": propensity[0] if squeeze else propensity}
      best = best[:, None]
    elif k == 1:
      best = scores.argmax(axis=1)[:, None]
    else:
      best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    action = best.reshape((-1,) + tuple(self.action_spec.shape))
    action = action.astype(self.action_spec.dtype)
    if squeeze:
      action = action[0]
    return policy_step.PolicyStep(action, policy_state, info)


def _random_scores(seed: int) -> ScoreFn:
  rng = np.random.default_rng(seed)
  return lambda obs: rng.random(obs["candidate_mask"].shape)


def _popularity_scores(catalog: TrackCatalog) -> ScoreFn:
  return lambda obs: catalog.popularity[obs["candidate_ids"]]


def acoustic_vectors(catalog: TrackCatalog) -> np.ndarray:
  """The raw `acoustic_vector_*` columns, float32 [N, 8]."""
  return np.stack([catalog.columns[f"acoustic_vector_{i}"] for i in range(8)],
                  axis=1).astype(np.float32)


def cosine_scores(catalog: TrackCatalog) -> ScoreFn:
  """Cosine between user features and each candidate's acoustic vector."""
  vectors = acoustic_vectors(catalog)
  vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-6)

  def score(obs):
    user = np.asarray(obs["user_features"], np.float32)
    user = user / np.maximum(np.linalg.norm(user, axis=1, keepdims=True), 1e-6)
    return np.einsum("bd,bkd->bk", user, vectors[obs["candidate_ids"]])
  return score


BASELINES = ("random", "popularity", "cosine")


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
  score_fn = {"random": lambda: _random_scores(seed),
              "popularity": lambda: _popularity_scores(catalog),
              "cosine": lambda: cosine_scores(catalog)}[name]()
  return ScoringPyPolicy(time_step_spec, action_spec, score_fn, name=name)
