"""UserModelScoreWrapper adds the scorer's P(listen) of every candidate."""

import numpy as np
import pytest

import agents
import simulator
import user_models
from agents.score_features import SCORE_KEY, UserModelScoreWrapper
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
