"""Experience collected by workers: identical in-process and on Ray, and it
fills a TF-Agents replay buffer the learner trains from."""

import os

import gin
import numpy as np
import pytest
import tensorflow as tf
from tf_agents.environments import tf_py_environment
from tf_agents.replay_buffers import tf_uniform_replay_buffer

from agents.ahdqn import create_ahdqn_agent
from agents.distributed_collection import DistributedCollector
from simulator.builder import EnvironmentBuilder
from tests.conftest import REPO_ROOT

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration

_NETWORK = {"embedding_dim": 8, "state_layers": (16,), "head_layers": (16,)}


def _parse_small_world():
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "simulate.gin"))
  gin.parse_config("SyntheticWorld.num_tracks = 300\n"
                   "SyntheticWorld.num_users = 60\n"
                   "RandomEpisodeSampler.max_pool_size = 20")


def _learner():
  tf.random.set_seed(0)
  env = tf_py_environment.TFPyEnvironment(
      EnvironmentBuilder().get_py_env(batch_size=2, seed=0))
  catalog = EnvironmentBuilder().episode_sampler.catalog
  return create_ahdqn_agent(env.time_step_spec(), env.action_spec(),
                            catalog.features, tf.keras.optimizers.Adam(1e-3),
                            **_NETWORK)


def _collect(agent, use_ray: bool):
  with DistributedCollector(num_workers=2, batch_size=3, seed=5,
                            env_scope="", network_kwargs=_NETWORK,
                            use_ray=use_ray) as collector:
    first = collector.collect(agent.policy, num_steps=4, epsilon=0.3)
    second = collector.collect(agent.policy, num_steps=4, epsilon=0.3)
  return collector, first, second


def test_serial_collection_fills_the_replay_buffer_and_trains():
  _parse_small_world()
  agent = _learner()
  collector, first, second = _collect(agent, use_ray=False)
  assert first.observation["candidate_ids"].shape == (6, 4, 20)
  assert first.action.shape == (6, 4)
  # Workers have their own seeds: their experience differs.
  assert not np.array_equal(first.observation["candidate_ids"][:3],
                            first.observation["candidate_ids"][3:])
  # The environment carries on between calls.
  np.testing.assert_array_equal(second.step_type[:, 0],
                                first.next_step_type[:, -1])
  buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
      agent.collect_data_spec, batch_size=collector.replay_batch_size,
      max_length=16)
  collector.add_to(buffer, first)
  collector.add_to(buffer, second)
  assert int(buffer.num_frames()) == 6 * 8
  experience, _ = buffer.get_next(sample_batch_size=8, num_steps=2)
  assert np.isfinite(agent.train(experience).loss.numpy())


@pytest.mark.slow  # Ray start and two TensorFlow workers: ~30-60 s.
def test_ray_and_serial_collection_are_identical():
  pytest.importorskip("ray")
  _parse_small_world()
  agent = _learner()
  home = os.path.expanduser("~")
  before = set(os.listdir(home))
  _, serial_first, serial_second = _collect(agent, use_ray=False)
  _, ray_first, ray_second = _collect(agent, use_ray=True)
  for serial, on_ray in ((serial_first, ray_first),
                         (serial_second, ray_second)):
    tf.nest.map_structure(np.testing.assert_array_equal, serial, on_ray)
  assert set(os.listdir(home)) == before


def test_bad_sizes():
  with pytest.raises(ValueError, match="num_workers"):
    DistributedCollector(num_workers=0)


def _episode_keys(experiences) -> set:
  """Each episode started in the experience, as its candidate pool."""
  keys = set()
  for experience in experiences:
    first = experience.step_type == 0  # StepType.FIRST
    keys |= {tuple(row) for row in
             experience.observation["candidate_ids"][first]}
  return keys


def test_a_resumed_collection_meets_new_episodes():
  _parse_small_world()
  agent = _learner()

  def run(start_step):
    with DistributedCollector(num_workers=2, batch_size=3, seed=5,
                              env_scope="", network_kwargs=_NETWORK) as c:
      return [c.collect(agent.policy, num_steps=4, epsilon=0.3,
                        step=start_step + 4 * i) for i in range(2)]

  first, again = run(0), run(0)
  # Same seed and step: the same experience.
  for a, b in zip(first, again, strict=True):
    tf.nest.map_structure(np.testing.assert_array_equal, a, b)
  # Workers restarted at step 8 (a resume from that checkpoint) meet
  # episodes of their own, none of the first run's.
  resumed = _episode_keys(run(8))
  assert len(resumed) >= 6 and not resumed & _episode_keys(first)
