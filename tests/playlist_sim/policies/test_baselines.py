"""Baseline and oracle policies never pick a played track and do what they
say."""

import numpy as np
import pytest

import agents
import simulator
import user_models
from playlist_sim.policies.oracle import OraclePolicy
from tests.conftest import make_env


def _py_env(world, **kwargs):
  return simulator.TFAgtPyEnvironment(make_env(world, batch_size=6, **kwargs))


@pytest.mark.parametrize("name", agents.BASELINES)
def test_baselines_only_pick_available_candidates(small_world, name):
  env = _py_env(small_world, max_pool_size=10, min_pool_size=3)
  policy = agents.make_baseline_policy(name, env.time_step_spec(),
                                       env.action_spec(), small_world.catalog)
  time_step = env.reset()
  for _ in range(60):
    action = policy.action(time_step).action
    mask = time_step.observation["candidate_mask"]
    running = time_step.step_type != 2
    assert mask[np.arange(6), action][running].all()
    time_step = env.step(action)


def test_popularity_picks_most_popular(small_world):
  env = _py_env(small_world)
  policy = agents.make_baseline_policy("popularity", env.time_step_spec(),
                                       env.action_spec(), small_world.catalog)
  time_step = env.reset()
  ids = time_step.observation["candidate_ids"]
  expected = small_world.catalog.popularity[ids].argmax(1)
  np.testing.assert_array_equal(policy.action(time_step).action, expected)


def test_softmax_policy_reports_its_probability(small_world):
  env = _py_env(small_world, max_pool_size=5)
  scores = np.log(np.array([1.0, 2.0, 3.0, 4.0, 10.0]))
  policy = agents.ScoringPyPolicy(
      env.time_step_spec(), env.action_spec(),
      lambda obs: np.tile(scores, (len(obs["candidate_ids"]), 1)),
      temperature=1.0, seed=0)
  time_step = env.reset()
  step = policy.action(time_step)
  expected = np.array([1, 2, 3, 4, 10]) / 20.0
  np.testing.assert_allclose(step.info["propensity"],
                             expected[step.action], rtol=1e-5)


def test_unknown_baseline_is_named(small_world):
  env = _py_env(small_world)
  with pytest.raises(ValueError, match="telepathy"):
    agents.make_baseline_policy("telepathy", env.time_step_spec(),
                                env.action_spec(), small_world.catalog)


@pytest.mark.parametrize("lookahead", [False, True])
def test_oracle_policies_pick_available_tracks(small_world, lookahead):
  listener = user_models.ParametricListener(small_world)
  env = make_env(small_world, user_model=listener, batch_size=4)
  policy = OraclePolicy(env, listener, lookahead=lookahead)
  py_env = simulator.TFAgtPyEnvironment(env)
  time_step = py_env.reset()
  for _ in range(40):
    action = policy.action(time_step).action
    running = time_step.step_type != 2
    mask = time_step.observation["candidate_mask"]
    assert mask[np.arange(4), action][running].all()
    time_step = py_env.step(action)
