"""UserModelScoreWrapper adds the scorer's P(listen) of every candidate."""

import numpy as np
import pytest
from tf_agents.trajectories import policy_step

import agents
import simulator
import user_models
from playlist_sim.policies.score_features import SCORE_KEY, ScoredObservationPolicy
from playlist_sim.policies.score_features import UserModelScoreWrapper
from tests.conftest import make_env


def test_scores_are_the_scorers_listen_probabilities(small_world):
  world_model = user_models.ParametricListener(small_world)
  scorer = user_models.LogisticUserModel(small_world)
  env = make_env(small_world, user_model=world_model, batch_size=5,
                 max_pool_size=12)
  wrapped = UserModelScoreWrapper(simulator.TFAgtPyEnvironment(env), scorer)
  assert wrapped.observation_spec()[SCORE_KEY].shape == (12,)
  greedy = agents.GreedyUserModelPolicy(
      wrapped.time_step_spec(), wrapped.action_spec(), scorer,
      user_ids_fn=lambda: env.session_context().user_ids)
  time_step = wrapped.reset()
  for _ in range(10):
    obs = time_step.observation
    scores = obs[SCORE_KEY]
    assert scores.dtype == np.float32
    assert (scores[~obs["candidate_mask"]] == 0).all()
    assert ((scores >= 0) & (scores <= 1)).all()
    action = greedy.action(time_step).action
    best = np.where(obs["candidate_mask"], scores, -1.0).argmax(1)
    np.testing.assert_array_equal(action, best)
    time_step = wrapped.step(action)


def test_wrapper_needs_a_batched_environment(small_world):
  env = make_env(small_world, batch_size=1)
  with pytest.raises(ValueError, match="batched"):
    UserModelScoreWrapper(simulator.TFAgtPyEnvironment(env, unbatched=True),
                          user_models.LogisticUserModel(small_world))


class _ArgmaxScorePolicy:
  """A stand-in for a saved policy trained on scored observations."""

  def __init__(self, time_step_spec):
    self.time_step_spec = time_step_spec
    self.seen = []

  def get_initial_state(self, batch_size):
    return ()

  def action(self, time_step, policy_state=()):
    obs = time_step.observation
    self.seen.append(obs[SCORE_KEY])
    best = np.where(obs["candidate_mask"], obs[SCORE_KEY], -1.0).argmax(1)
    return policy_step.PolicyStep(best.astype(np.int32), (), ())


def test_scored_observation_policy_acts_as_in_the_wrapped_env(small_world):
  world_model = user_models.ParametricListener(small_world)
  scorer = user_models.LogisticUserModel(small_world)
  plain = simulator.TFAgtPyEnvironment(make_env(
      small_world, user_model=world_model, batch_size=4, max_pool_size=10))
  wrapped = UserModelScoreWrapper(simulator.TFAgtPyEnvironment(make_env(
      small_world, user_model=world_model, batch_size=4, max_pool_size=10)),
                                  scorer)
  inner = _ArgmaxScorePolicy(wrapped.time_step_spec())
  policy = ScoredObservationPolicy(inner, plain, scorer)
  assert SCORE_KEY not in policy.time_step_spec.observation
  plain_step, wrapped_step = plain.reset(), wrapped.reset()
  for _ in range(8):
    action = policy.action(plain_step).action
    np.testing.assert_array_equal(
        inner.seen[-1], wrapped_step.observation[SCORE_KEY])
    plain_step, wrapped_step = plain.step(action), wrapped.step(action)
