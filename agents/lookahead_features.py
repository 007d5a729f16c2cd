"""The learned model's one-step lookahead of each candidate, as a feature.

`playlist_sim.policies.score_features` gives the agent the learned model's
P(listen) of each candidate now (`candidate_scores`). What sequencing
changes is the *next* track: how well the session can go on once c has been
played. The learned model answers that too, for free, and
`agents.model_lookahead` shows its answer is worth having (a one-step
lookahead by the int8 model beats greedy by it in the world). This module
hands that answer to the agent:

    observation["candidate_lookahead"][b, k] =
        max_{c' in S_b, c' != c_k} P_model(listen c' | c_k played just before)

for the candidates c_k of S_b, the row's `shortlist` best by
`candidate_scores` (0 for the others), with the two tracks scored as a slate
played in order (the model's own view of what playing c_k does to the next
track: the transition, the fatigue). A residual Q head that reads it
(`agents.networks.ActionHeadQNetwork`, `lookahead_weight`, and the head
input "lookahead") only has to weigh the model's lookahead against what TD
learning sees, instead of discovering the order effect from returns.

Like the scores, the feature is computed by the *training* user model in
both worlds (the world is never asked), from the observation alone: the
deployed recommender has that model and can compute it the same way.
"""

import dataclasses
from collections.abc import Callable

import numpy as np
from tf_agents.environments import wrappers
from tf_agents.specs import array_spec

from playlist_sim.policies.baselines import context_from_observation
from playlist_sim.policies.score_features import SCORE_KEY
from user_models.base import AbstractUserModel, SessionContext

__all__ = ["LOOKAHEAD_KEY", "ModelLookaheadWrapper", "lookahead_values"]

#: Observation key of the learned model's one-step lookahead values.
LOOKAHEAD_KEY = "candidate_lookahead"


def _repeat_rows(context: SessionContext, index: np.ndarray
                 ) -> SessionContext:
  return SessionContext(**{f.name: np.asarray(getattr(context, f.name))[index]
                           for f in dataclasses.fields(context)})


def lookahead_values(user_model: AbstractUserModel, context: SessionContext,
                     candidate_ids: np.ndarray, available: np.ndarray,
                     scores: np.ndarray, shortlist: int) -> np.ndarray:
  """The best next listen probability after each shortlisted candidate.

  Args:
    user_model: the learned model (stateless: a CWM, Keras or LiteRT).
    context: the B sessions, before any candidate is played.
    candidate_ids: int [B, K] catalog rows.
    available: bool [B, K] candidate mask.
    scores: float [B, K] the model's P(listen) of each candidate now.
    shortlist: candidates per row, by score, that get a value and may
      follow one another.

  Returns:
    float32 [B, K]: for a shortlisted candidate c, the highest
    P_model(listen c') over the other available shortlisted c' played right
    after c; 0 elsewhere (and where no other candidate is available).
  """
  ids = np.asarray(candidate_ids)
  b, k = ids.shape
  m = min(int(shortlist), k)
  ranked = np.where(available, scores, -np.inf)
  short = np.argsort(-ranked, axis=1, kind="stable")[:, :m]     # [B, m]
  short_ok = np.take_along_axis(np.asarray(available, bool), short, 1)
  short_ids = np.take_along_axis(ids, short, 1)
  first = np.repeat(short_ids, m, axis=1)                        # [B, m*m]
  second = np.tile(short_ids, (1, m))
  rows = np.repeat(np.arange(b), m * m)
  probs = user_model.predict(_repeat_rows(context, rows),
                             np.stack([first, second], -1).reshape(-1, 2))
  p_next = np.asarray(probs)[:, 1, user_model.listen_level].reshape(b, m, m)
  usable = (short_ok[:, None, :] & short_ok[:, :, None] &
            ~np.eye(m, dtype=bool)[None])
  best_next = np.where(usable, p_next, 0.0).max(axis=2)          # [B, m]
  out = np.zeros((b, k), np.float32)
  np.put_along_axis(out, short, np.where(short_ok, best_next, 0.0), axis=1)
  return np.clip(out, 0.0, 1.0)


class ModelLookaheadWrapper(wrappers.PyEnvironmentBaseWrapper):
  """Adds `candidate_lookahead` (see the module docstring) to observations.

  Wraps an environment whose observations already carry `candidate_scores`
  (a `UserModelScoreWrapper`); both must use the same user model.
  """

  def __init__(self, env, user_model: AbstractUserModel,
               shortlist: int = 8,
               user_ids_fn: Callable[[], np.ndarray] | None = None):
    """Wraps a batched, scored playlist environment.

    Args:
      env: a batched environment whose observation has `candidate_scores`.
      user_model: the learned model that scored them (stateless).
      shortlist: candidates per row that get a value (>= 2).
      user_ids_fn: the current listener ids [B] (for a model with a user
        embedding); default: the inner `PlaylistEnvironment`'s.

    Raises:
      ValueError: for an unbatched environment, one without
        `candidate_scores` or already with `candidate_lookahead`, a
        shortlist below 2, or a slate (SWM) user model.
    """
    super().__init__(env)
    spec = env.observation_spec()
    if not env.batched:
      raise ValueError("ModelLookaheadWrapper needs a batched environment")
    if SCORE_KEY not in spec or LOOKAHEAD_KEY in spec:
      raise ValueError(
          f"ModelLookaheadWrapper needs {SCORE_KEY!r} and no "
          f"{LOOKAHEAD_KEY!r} in the observation (got {sorted(spec)}): wrap "
          "a UserModelScoreWrapper (train_eval.user_model_scores = True)")
    if isinstance(shortlist, bool) or not isinstance(
        shortlist, (int, np.integer)) or shortlist < 2:
      raise ValueError(f"shortlist must be an integer >= 2 (a candidate "
                       f"and one to follow it), got {shortlist!r}")
    if getattr(user_model, "kind", "cwm") != "cwm":
      raise ValueError(
          f"the lookahead feature needs a stateless (CWM) user model, got a "
          f"{user_model.kind}: train the simulator with "
          "configs/user_model_cwm_users.gin")
    self._model = user_model
    self._shortlist = int(shortlist)
    self._listen_level = int(np.max(spec["history_responses"].maximum))
    if user_ids_fn is None:
      inner = env.environment
      user_ids_fn = lambda: inner.session_context().user_ids  # noqa: E731
    self._user_ids = user_ids_fn
    self._spec = dict(spec, **{LOOKAHEAD_KEY: array_spec.BoundedArraySpec(
        spec["candidate_ids"].shape, np.float32, 0.0, 1.0,
        name=LOOKAHEAD_KEY)})

  @property
  def lookahead_shortlist(self) -> int:
    """Candidates per row that get a value (for `agents.export`)."""
    return self._shortlist

  def observation_spec(self):
    return self._spec

  def _augment(self, time_step):
    obs = time_step.observation
    context = context_from_observation(obs, self._user_ids(),
                                       self._listen_level)
    values = lookahead_values(self._model, context, obs["candidate_ids"],
                              np.asarray(obs["candidate_mask"], bool),
                              obs[SCORE_KEY], self._shortlist)
    return time_step._replace(observation=dict(obs, **{LOOKAHEAD_KEY:
                                                       values}))

  def _reset(self):
    return self._augment(self._env.reset())

  def _step(self, action):
    return self._augment(self._env.step(action))
