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
and reports the probability of its choice (`info["propensity"]`), drawn by
`playlist_sim.policies.sampling` like every softmax policy of the package.
"""

from typing import Callable

import numpy as np
from tf_agents.policies import py_policy
from tf_agents.policies import random_py_policy
from tf_agents.specs import array_spec
from tf_agents.trajectories import policy_step
from tf_agents.trajectories import time_step as ts

from playlist_sim.data.catalog import TrackCatalog
from playlist_sim.data.catalog import acoustic_vectors
from playlist_sim.policies.sampling import sample_slots
from playlist_sim.policies.sampling import softmax_probabilities
from user_models.base import AbstractUserModel
from user_models.base import PUBLIC_RESPONSE_LEVELS
from user_models.base import SessionContext

__all__ = ["ScoringPyPolicy", "make_baseline_policy", "BASELINES",
           "acoustic_vectors", "cosine_scores", "GreedyUserModelPolicy",
           "context_from_observation"]

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
      probs = softmax_probabilities(scores, mask, self._temperature)
      best, propensity = sample_slots(probs, mask, self._rng)
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


# -- Greedy by a user model -------------------------------------------------

def context_from_observation(
    obs: dict, user_ids: np.ndarray | None = None,
    listen_level: int = len(PUBLIC_RESPONSE_LEVELS) - 1) -> SessionContext:
  """The `SessionContext` a user model needs, rebuilt from an observation.

  The observation shows only the last H tracks, so the skip counts are those
  of the window: `consecutive_skips` is the run of skips at its end (exact
  while the run is shorter than H, which the consecutive-skip limit keeps
  true) and `num_skips` counts the skips in it (a lower bound on the
  session's). Rows are 0..B-1.

  Args:
    obs: a batched observation dict (see `PlaylistEnvironment`).
    user_ids: int64 [B] listener ids, or None: the observation does not
      carry them, so they are -1 and a model that looks listeners up by id
      (e.g. `ParametricListener`) cannot be served this way; use
      `playlist_sim.policies.oracle.OraclePolicy` in the simulator instead.
    listen_level: the response level of a listen in `history_responses`,
      the last level of the environment's user model (3 for the public
      levels, 1 for a binary model).

  Returns:
    A SessionContext with B rows.
  """
  responses = np.asarray(obs["history_responses"])
  b = responses.shape[0]
  skips = (responses >= 0) & (responses != listen_level)
  # Trailing run: position of the last non-skip from the right.
  not_skip_from_end = np.cumsum(~skips[:, ::-1], axis=1) > 0
  trailing = (~not_skip_from_end).sum(axis=1).astype(np.int32)
  ids = (np.full(b, -1, np.int64) if user_ids is None else
         np.asarray(user_ids, np.int64))
  return SessionContext(
      rows=np.arange(b, dtype=np.int64), user_ids=ids,
      user_features=np.asarray(obs["user_features"], np.float32),
      position=np.asarray(obs["position"], np.int32),
      history_ids=np.asarray(obs["history_ids"], np.int32),
      history_responses=responses.astype(np.int32),
      consecutive_skips=trailing,
      num_skips=skips.sum(axis=1).astype(np.int32))


def _listen_probability_scores(
    user_model: AbstractUserModel, listen_level: int,
    user_ids_fn: Callable[[], np.ndarray] | None) -> ScoreFn:
  """Each candidate's predicted listen probability as the next track."""

  def score(obs):
    context = context_from_observation(
        obs, None if user_ids_fn is None else user_ids_fn(), listen_level)
    ids = np.asarray(obs["candidate_ids"])
    b, k = ids.shape
    # One row per (session, candidate) with a slate of one, so candidates
    # are scored independently rather than as a slate played in order.
    repeated = SessionContext(**{
        f: np.repeat(getattr(context, f), k, axis=0)
        for f in context.__dataclass_fields__})
    probs = user_model.predict(repeated, ids.reshape(b * k, 1))
    return np.asarray(probs)[:, 0, user_model.listen_level].reshape(b, k)
  return score


class GreedyUserModelPolicy(ScoringPyPolicy):
  """Places the candidate a user model thinks most likely to be listened to.

  The strong myopic baseline: greedy by predicted P(listen) now, blind to
  what the choice does to the rest of the session. The session context is
  rebuilt from the observation (`context_from_observation`).
  """

  def __init__(self, time_step_spec: ts.TimeStep,
               action_spec: array_spec.BoundedArraySpec,
               user_model: AbstractUserModel,
               user_ids_fn: Callable[[], np.ndarray] | None = None,
               name: str = "greedy"):
    """Builds the policy.

    Args:
      time_step_spec: the environment's time step spec.
      action_spec: a discrete (pool slot) action spec.
      user_model: scores candidates by its listen level's probability (the
        history's listen level comes from the observation spec).
      user_ids_fn: returns the current listener ids [B], for user models
        that need them (in a simulator, e.g.
        `lambda: env.session_context().user_ids`); None passes -1.
      name: the policy's name.
    """
    listen_level = int(np.max(
        time_step_spec.observation["history_responses"].maximum))
    super().__init__(time_step_spec, action_spec,
                     _listen_probability_scores(user_model, listen_level,
                                                user_ids_fn), name=name)
    self.user_model = user_model
