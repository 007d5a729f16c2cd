"""ModelListener gives OraclePolicy a learned model's probabilities: with the
world's own listener as the "model" it reproduces the oracles exactly."""

import numpy as np
import pytest

import simulator
import user_models
from agents.model_lookahead import ModelListener
from playlist_sim.policies.oracle import OraclePolicy
from tests.conftest import make_env


def _contexts_and_ids(world, batch=6, steps=3):
  listener = user_models.ParametricListener(world)
  env = make_env(world, user_model=listener, batch_size=batch)
  py_env = simulator.TFAgtPyEnvironment(env)
  time_step = py_env.reset()
  for _ in range(steps):  # Some history, so fatigue and skips count.
    time_step = py_env.step(np.zeros(batch, np.int32))
  return listener, env, time_step


@pytest.mark.parametrize("independent", [True, False])
def test_model_listener_matches_the_listener_it_wraps(small_world,
                                                     independent):
  listener, env, time_step = _contexts_and_ids(small_world)
  context = env.session_context()
  ids = np.asarray(time_step.observation["candidate_ids"])[:, :4]
  np.testing.assert_allclose(
      ModelListener(listener).listen_probability(context, ids, independent),
      listener.listen_probability(context, ids, independent), rtol=1e-5,
      atol=1e-6)


@pytest.mark.parametrize("lookahead", [False, True])
def test_oracle_by_model_listener_acts_like_the_oracle(small_world,
                                                       lookahead):
  listener, env, time_step = _contexts_and_ids(small_world)
  truth = OraclePolicy(env, listener, lookahead=lookahead)
  by_model = OraclePolicy(env, ModelListener(listener), lookahead=lookahead)
  np.testing.assert_array_equal(by_model.action(time_step).action,
                                truth.action(time_step).action)
