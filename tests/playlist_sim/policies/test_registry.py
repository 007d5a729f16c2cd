"""`make_policy`: every policy by name, one greedy under both its names, and
the logging policy is the softmax scoring policy of off-policy evaluation."""

import numpy as np
import pytest

import simulator
import user_models
from playlist_sim.jobs.log_generation import logging_policy
from playlist_sim.policies import registry
from playlist_sim.policies.baselines import GreedyUserModelPolicy
from playlist_sim.policies.oracle import OraclePolicy
from playlist_sim.policies.sampling import sample_slots
from playlist_sim.policies.sampling import softmax_probabilities
from playlist_sim.policies.softmax import DEFAULT_STOCHASTIC
from playlist_sim.policies.softmax import SoftmaxScorePolicy
from playlist_sim.policies.softmax import SoftmaxSpec
from tests.conftest import ConstantUserModel
from tests.conftest import make_env


def _py_env(world, user_model=None):
  return simulator.TFAgtPyEnvironment(
      make_env(world, user_model=user_model, batch_size=4, max_pool_size=8))


@pytest.mark.parametrize("name", registry.GREEDY_NAMES)
def test_both_greedy_names_build_the_same_policy(small_world, name):
  env = _py_env(small_world)
  scorer = user_models.ParametricListener(small_world)
  policy = registry.make_policy(name, env, scorer=scorer)
  assert isinstance(policy, GreedyUserModelPolicy)
  assert policy.name == name
  assert registry.canonical_name(name) == registry.GREEDY_USER_MODEL
  time_step = env.reset()
  assert policy.action(time_step).action.shape == (4,)


def test_greedy_without_a_scorer_is_refused(small_world):
  with pytest.raises(ValueError, match="needs a scorer"):
    registry.make_policy("greedy", _py_env(small_world))


def test_oracles_need_the_listener_world(small_world):
  listener = user_models.ParametricListener(small_world)
  policy = registry.make_policy("lookahead_oracle",
                                _py_env(small_world, user_model=listener))
  assert isinstance(policy, OraclePolicy) and policy.name == "lookahead"
  with pytest.raises(ValueError, match="ParametricListener"):
    registry.make_policy("greedy_oracle",
                         _py_env(small_world, ConstantUserModel(0.5)))


def test_an_unknown_name_lists_the_known_ones(small_world):
  with pytest.raises(ValueError, match="telepathy.*'greedy_user_model'"):
    registry.make_policy("telepathy", _py_env(small_world))


def test_the_logging_policy_is_the_evaluations_softmax_policy(small_world):
  env = _py_env(small_world)
  logger = logging_policy(env.time_step_spec(), env.action_spec(),
                          small_world.catalog, seed=5)
  target = registry.make_policy("logging", env, seed=5)
  assert isinstance(logger, SoftmaxScorePolicy)
  assert logger.spec == DEFAULT_STOCHASTIC["logging"] == SoftmaxSpec()
  time_step = env.reset()
  obs = {k: np.asarray(v) for k, v in time_step.observation.items()}
  np.testing.assert_array_equal(logger.probabilities(obs),
                                target.probabilities(obs))
  first, second = logger.action(time_step), target.action(time_step)
  np.testing.assert_array_equal(first.action, second.action)
  np.testing.assert_array_equal(first.info["propensity"],
                                second.info["propensity"])


def test_sampling_steps_back_from_an_unavailable_last_slot():
  mask = np.array([[True, True, False]])
  probs = softmax_probabilities(np.array([[0.0, 0.0, 9.0]]), mask, 1.0)
  np.testing.assert_allclose(probs, [[0.5, 0.5, 0.0]])

  class _Draws:  # A draw past the cumulative sum's rounding.
    def random(self, shape):
      return np.full(shape, 1.0 + 1e-12)
  slots, propensity = sample_slots(probs, mask, _Draws())
  assert slots.tolist() == [1] and propensity.tolist() == [0.5]


def test_softmax_probabilities_refuse_a_bad_temperature():
  with pytest.raises(ValueError, match="temperature must be > 0"):
    softmax_probabilities(np.zeros((1, 2)), np.ones((1, 2), bool), 0.0)
