"""Tests of PlaylistEnvironment's dynamics, specs and errors."""

import numpy as np
import pytest
from tf_agents.drivers import dynamic_episode_driver
from tf_agents.environments import tf_py_environment
from tf_agents.environments import utils as env_utils
from tf_agents.metrics import tf_metrics
from tf_agents.policies import random_tf_policy
from tf_agents.utils import common

import simulator
import user_models
from tests.conftest import ConstantUserModel, make_env


def _mask_splitter(observation):
  return observation, observation["candidate_mask"]


@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("sampler,slate_size", [("discrete", 1),
                                                ("discrete", 3),
                                                ("continuous", 1),
                                                ("continuous", 2)])
def test_validate_py_environment(small_world, batch_size, sampler, slate_size):
  env = simulator.TFAgtPyEnvironment(make_env(
      small_world, sampler=sampler, slate_size=slate_size,
      batch_size=batch_size, min_pool_size=5, max_pool_size=20, seed=3))
  env_utils.validate_py_environment(env, episodes=10)


def test_validate_with_mask_splitter(small_world):
  env = simulator.TFAgtPyEnvironment(make_env(small_world, batch_size=4))
  env_utils.validate_py_environment(
      env, episodes=10,
      observation_and_action_constraint_splitter=_mask_splitter)


def test_tf_py_environment_runs_random_tf_policy_for_100_episodes(small_world):
  tf_env = tf_py_environment.TFPyEnvironment(
      simulator.TFAgtPyEnvironment(make_env(small_world, batch_size=4)))
  policy = random_tf_policy.RandomTFPolicy(
      tf_env.time_step_spec(), tf_env.action_spec(),
      observation_and_action_constraint_splitter=_mask_splitter)
  episodes = tf_metrics.NumberOfEpisodes()
  driver = dynamic_episode_driver.DynamicEpisodeDriver(
      tf_env, policy, [episodes], num_episodes=100)
  common.function(driver.run)()
  assert episodes.result().numpy() >= 100


def test_unbatched_b1_goes_into_batched_py_environment(small_world):
  from tf_agents.environments import batched_py_environment
  envs = [simulator.TFAgtPyEnvironment(make_env(small_world, seed=i),
                                       unbatched=True) for i in range(3)]
  batched = batched_py_environment.BatchedPyEnvironment(envs)
  env_utils.validate_py_environment(batched, episodes=5)


def test_all_skips_end_after_exactly_n(small_world):
  env = make_env(small_world, user_model=ConstantUserModel(1.0),
                 consecutive_skip_limit=4, batch_size=5)
  env.reset()
  for step in range(1, 5):
    result = env.step(np.zeros(5, np.int32))
    expected = 2 if step == 4 else 1  # LAST on the 4th skip, MID before.
    np.testing.assert_array_equal(result.step_type, expected)
  assert (result.termination_reason == 1).all()
  assert (env.step(np.zeros(5, np.int32)).step_type == 0).all()  # FIRST


def test_all_listens_end_at_max_length(small_world):
  env = make_env(small_world, user_model=ConstantUserModel(0.0),
                 max_playlist_length=7, batch_size=2)
  env.reset()
  rewards = [env.step(np.zeros(2, np.int32)) for _ in range(7)]
  assert [r.step_type[0] for r in rewards] == [1] * 6 + [2]
  assert sum(r.reward[0] for r in rewards) == 7
  assert rewards[-1].termination_reason[0] == 2


def test_pool_exhausted(small_world):
  env = make_env(small_world, user_model=ConstantUserModel(0.0),
                 max_pool_size=4, max_playlist_length=30)
  env.reset()
  types = [int(env.step(np.array([0], np.int32)).step_type[0])
           for _ in range(4)]
  assert types == [1, 1, 1, 2]
  assert env.last_result.termination_reason[0] == 3


def test_played_slot_falls_through_to_next_available(small_world):
  env = make_env(small_world, user_model=ConstantUserModel(0.0))
  first = env.reset().observation["candidate_ids"][0]
  env.step(np.array([2], np.int32))
  env.step(np.array([2], np.int32))  # Slot 2 is played: slot 3 is next.
  env.step(np.array([19], np.int32))
  env.step(np.array([19], np.int32))  # Slot 19 played: wraps to slot 0.
  history = env.last_result.observation["history_ids"][0][-4:]
  np.testing.assert_array_equal(history, first[[2, 3, 19, 0]])
  assert not env.last_result.observation["candidate_mask"][0][[0, 2, 3, 19]].any()


def test_custom_reward_per_level(small_world):
  env = make_env(small_world, user_model=ConstantUserModel(1.0),
                 reward_per_level={"skip": -1.0, "not_skipped": 2.0})
  env.reset()
  assert env.step(np.array([0], np.int32)).reward[0] == -1.0


@pytest.mark.parametrize("action,match", [
    (np.array([20], np.int32), "outside the pool"),
    (np.array([-1], np.int32), "outside the pool"),
    (np.array([[1, 2]], np.int32), "shape"),
    (np.array([1.5], np.float32), "integer"),
])
def test_bad_discrete_actions(small_world, action, match):
  env = make_env(small_world)
  env.reset()
  with pytest.raises(simulator.ActionError, match=match):
    env.step(action)


def test_bad_continuous_action(small_world):
  env = make_env(small_world, sampler="continuous")
  env.reset()
  action = np.zeros((1, small_world.catalog.feature_dim), np.float32)
  action[0, 0] = np.nan
  with pytest.raises(simulator.ActionError, match="NaN"):
    env.step(action)


class _BadShapeModel(user_models.AbstractUserModel):

  def predict(self, context, track_ids):
    return np.full(track_ids.shape, 0.5)


class _NaNModel(user_models.AbstractUserModel):

  def predict(self, context, track_ids):
    return np.full(track_ids.shape + (2,), np.nan)


@pytest.mark.parametrize("model,match", [(_BadShapeModel(), "shape"),
                                         (_NaNModel(), "NaN")])
def test_bad_user_model_output(small_world, model, match):
  env = make_env(small_world, user_model=model)
  env.reset()
  with pytest.raises(user_models.UserModelError, match=match):
    env.step(np.array([0], np.int32))


@pytest.mark.parametrize("kwargs,match", [
    ({"consecutive_skip_limit": 0}, "consecutive_skip_limit"),
    ({"max_playlist_length": -3}, "max_playlist_length"),
    ({"batch_size": 0}, "batch_size"),
    ({"reward_per_level": {"skip_9": 1.0}}, "skip_9"),
])
def test_bad_environment_arguments(small_world, kwargs, match):
  with pytest.raises(ValueError, match=match):
    make_env(small_world, **kwargs)


def test_empty_pool_is_rejected(small_world):
  with pytest.raises(ValueError, match="max_pool_size"):
    simulator.RandomEpisodeSampler(small_world, max_pool_size=0)

  class EmptyPools(simulator.RandomEpisodeSampler):

    def _sample(self, rng, n):
      modes = super()._sample(rng, n)
      return simulator.PlayModes(modes.user_ids, modes.user_features,
                                 modes.candidate_ids,
                                 np.zeros(n, np.int32), modes.play_mode_ids)

  env = make_env(small_world)
  env.episode_sampler = EmptyPools(small_world, max_pool_size=20)
  with pytest.raises(ValueError, match="non-empty pool"):
    env.reset()


def test_same_seed_same_episodes(small_world):
  def run(seed):
    env = make_env(small_world, batch_size=4, seed=seed)
    env.reset()
    rng = np.random.default_rng(0)
    out = []
    for _ in range(40):
      r = env.step(rng.integers(0, 20, size=4).astype(np.int32))
      out.append((r.reward.copy(), r.step_type.copy(),
                  r.observation["candidate_ids"].copy()))
    return out
  a, b, c = run(7), run(7), run(8)
  for x, y in zip(a, b):
    for u, v in zip(x, y):
      np.testing.assert_array_equal(u, v)
  assert any(not np.array_equal(x[2], y[2]) for x, y in zip(a, c))


def test_observation_carries_ids_not_features(small_world):
  env = make_env(small_world, max_pool_size=250)
  spec = env.observation_space
  floats = sum(int(np.prod(s.shape)) for s in spec.values()
               if s.dtype == np.float32)
  assert floats == small_world.user_features.shape[1]
  assert spec["candidate_ids"].shape == (250,)


def test_common_random_numbers_make_episodes_independent_of_other_rows(
    small_world):
  """With CRN, episode e is the same whatever the batch size."""
  def episodes(batch_size):
    tracker = simulator.EpisodeTracker()
    env = make_env(small_world, batch_size=batch_size, tracker=tracker,
                   common_random_numbers=True, seed=11)
    env.reset()
    for _ in range(80):
      env.step(np.zeros(batch_size, np.int32))
    rows = tracker.to_table().to_pydict()
    by_episode = {}
    for e, t, r in zip(rows["episode_id"], rows["track_row"], rows["skip"]):
      by_episode.setdefault(e, []).append((t, r))
    return by_episode
  a, b = episodes(2), episodes(5)
  for e in range(3):
    n = min(len(a[e]), len(b[e]))
    assert n and a[e][:n] == b[e][:n]
