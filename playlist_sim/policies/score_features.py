"""The learned user model's predictions as an observation feature.

The learned simulator (e.g. the int8 CWM) knows things the observation does
not show: its user embedding is keyed by listener id, which the agent never
sees, so an agent trained in it faces a partly hidden listener. The
recommender that deploys the agent has that model too, so it may hand the
agent the model's prediction for each candidate:

    observation["candidate_scores"][b, k] = P_model(listen | context_b,
                                                    candidate_k next)

(0 for unavailable candidates). `UserModelScoreWrapper` adds this key to a
batched environment's observations; `agents.train_eval` wraps the training
environment (whose own user model is the scorer) and the evaluation
environment (the listener world, scored by the *training* user model, never
by the world) the same way, so the features carry no world truth. The
action-head and DQN networks read the key when the spec has it.

Only stateless (context-wise) scorers are supported: the scores are
computed on re-indexed rows (see
`playlist_sim.policies.baselines.GreedyUserModelPolicy`).
"""

import numpy as np
from tf_agents.environments import wrappers
from tf_agents.policies import py_policy
from tf_agents.specs import array_spec

from playlist_sim.policies.baselines import _listen_probability_scores  # pylint: disable=protected-access
from user_models.base import AbstractUserModel

__all__ = ["SCORE_KEY", "ScoredObservationPolicy", "UserModelScoreWrapper"]

#: Observation key of the scorer's predicted listen probabilities.
SCORE_KEY = "candidate_scores"


def _env_scores(env, user_model: AbstractUserModel):
  """`observation -> [B, K]` P(listen) by `user_model` in batched `env`."""
  levels = env.observation_spec()["history_responses"]
  listen_level = int(np.max(levels.maximum))
  inner = env.environment
  return _listen_probability_scores(
      user_model, listen_level, lambda: inner.session_context().user_ids)


def _with_scores(time_step, score):
  """`time_step` with `score(observation)` [B, K] added as SCORE_KEY."""
  obs = time_step.observation
  scores = np.where(obs["candidate_mask"], score(obs), 0.0)
  return time_step._replace(observation=dict(
      obs, **{SCORE_KEY: np.clip(scores, 0.0, 1.0).astype(np.float32)}))


class UserModelScoreWrapper(wrappers.PyEnvironmentBaseWrapper):
  """Adds `candidate_scores` (a user model's P(listen)) to observations."""

  def __init__(self, env, user_model: AbstractUserModel):
    """Wraps a batched playlist environment.

    Args:
      env: a batched `simulator.TFAgtPyEnvironment` (or a wrapper of one).
      user_model: the scorer; its listen level is read from the history
        responses' spec.

    Raises:
      ValueError: for an unbatched environment or one whose observation
        already has the key.
    """
    super().__init__(env)
    if not env.batched:
      raise ValueError("UserModelScoreWrapper needs a batched environment")
    spec = env.observation_spec()
    if SCORE_KEY in spec:
      raise ValueError(f"the observation already has {SCORE_KEY!r}")
    self._score = _env_scores(env, user_model)
    pool = spec["candidate_ids"].shape
    self._spec = dict(spec, **{SCORE_KEY: array_spec.BoundedArraySpec(
        pool, np.float32, 0.0, 1.0, name=SCORE_KEY)})
    self.scorer = user_model

  def observation_spec(self):
    return self._spec

  def _augment(self, time_step):
    return _with_scores(time_step, self._score)

  def _reset(self):
    return self._augment(self._env.reset())

  def _step(self, action):
    return self._augment(self._env.step(action))


class ScoredObservationPolicy(py_policy.PyPolicy):
  """Runs a policy trained on scored observations in an unwrapped env.

  A policy exported from a run with `user_model_scores` expects
  `candidate_scores` in its observation; this adds them (from `user_model`,
  the learned model it was trained with) to the environment's time steps
  before each action, as `UserModelScoreWrapper` does for the environment.
  """

  def __init__(self, policy: py_policy.PyPolicy, env,
               user_model: AbstractUserModel):
    """Wraps `policy` for the batched playlist environment `env`.

    Args:
      policy: a batched PyPolicy whose observation has SCORE_KEY.
      env: the batched `simulator.TFAgtPyEnvironment` it will act in
        (without the key).
      user_model: the scorer (stateless, see the module docstring).
    """
    super().__init__(env.time_step_spec(), env.action_spec())
    self._policy = policy
    self._score = _env_scores(env, user_model)

  def _get_initial_state(self, batch_size):
    return self._policy.get_initial_state(batch_size)

  def _action(self, time_step, policy_state):
    return self._policy.action(_with_scores(time_step, self._score),
                               policy_state)
