"""Measurements behind `scripts/benchmark.py` (agent, replay, Ray, int8).

Each function measures one thing on this machine and returns plain numbers;
the script formats them. Agents and Ray are imported inside the functions,
so `simulator` does not depend on them.

* `int8_cwm_user_model`: a CWM of the trained architecture, quantised to
  int8 (dynamic range) and served by `LiteRTUserModel`, for timing the
  environment with the int8 user model in the loop without logs or training.
* `ahdqn_decision_ms`: latency of AH-DQN's greedy policy at batch 1 against
  the pool size K.
* `train_steps_per_s`: AH-DQN `agent.train` steps/s on a filled replay
  buffer.
* `replay_bytes_per_transition`: bytes a transition takes in TF-Agents'
  replay buffer (from the data spec and from the buffer's variables).
* `ray_speedup`: `playlist_sim.jobs.distributed.evaluate_policies` on Ray workers
  against the same work in one process.
* `ray_collection_speedup`: `agents.distributed_collection` on Ray actors
  against the same workers in one process.
"""

import hashlib
import json
import os
import tempfile
import time
from typing import Sequence

import numpy as np
import tensorflow as tf
from tf_agents.drivers import dynamic_step_driver
from tf_agents.environments import tf_py_environment
from tf_agents.policies import random_tf_policy
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.utils import common

from agents.ahdqn import candidate_mask_splitter, create_ahdqn_agent
from agents.distributed_collection import DistributedCollector
from playlist_sim.data.catalog import TrackCatalog
from playlist_sim.jobs import distributed
from simulator.builder import EnvironmentBuilder
from simulator.environment import playlist_observation_spec
from user_models import features, keras_models, litert
from user_models.base import PUBLIC_RESPONSE_LEVELS
from user_models.litert_user_model import LiteRTUserModel, META_FILE

__all__ = [
    "ahdqn_decision_ms",
    "int8_cwm_user_model",
    "ray_collection_speedup",
    "ray_speedup",
    "replay_bytes_per_transition",
    "train_steps_per_s",
]

# Listen probability the untrained CWM's output bias is set to, so that its
# episodes are about as long as logged sessions (a uniform output would end
# most sessions after a few skips and time resets instead of steps).
_LISTEN_SHARE = 0.7


def int8_cwm_user_model(catalog: TrackCatalog, user_feature_dim: int,
                        model_dir: str | None = None, user_vocab: int = 2001,
                        seed: int = 0):
  """An int8 LiteRT CWM over `catalog`, written to `model_dir`.

  The weights are random (speed does not depend on them); the output bias
  gives the listen level probability ~`_LISTEN_SHARE`.

  Args:
    catalog: the environment's catalog.
    user_feature_dim: width of the environment's user features.
    model_dir: folder for `user_model.int8.tflite` and its meta file;
      default a new temporary folder.
    user_vocab: rows of the CWM's user embedding (0: none).
    seed: seed of the weights.

  Returns:
    A `user_models.LiteRTUserModel`.
  """
  model_dir = model_dir or tempfile.mkdtemp(prefix="int8_cwm_")
  os.makedirs(model_dir, exist_ok=True)
  tf.keras.utils.set_random_seed(seed)
  spec = features.FeatureTables(catalog).spec(user_feature_dim)
  model = keras_models.build_cwm(spec, user_vocab=user_vocab)
  last = [l for l in model.layers if getattr(l, "bias", None) is not None][-1]
  skip_share = (1.0 - _LISTEN_SHARE) / (features.NUM_LEVELS - 1)
  bias = np.log([skip_share] * (features.NUM_LEVELS - 1) + [_LISTEN_SHARE])
  if tuple(last.bias.shape) == bias.shape:
    last.bias.assign(bias.astype(np.float32))
  path = os.path.join(model_dir, "user_model.int8.tflite")
  with open(path, "wb") as f:
    f.write(litert.convert_keras_model(model, "int8"))
  with open(os.path.join(model_dir, META_FILE), "w") as f:
    with open(path, "rb") as model_file:
      digest = hashlib.sha256(model_file.read()).hexdigest()
    json.dump({"kind": keras_models.CWM_NAME, "user_vocab": user_vocab,
               "sha256": {os.path.basename(path): digest}}, f)
  return LiteRTUserModel(path, catalog, user_feature_dim=user_feature_dim)


def _ahdqn_agent(track_features: np.ndarray, pool_size: int, **kwargs):
  # The default environment's sizes (configs/simulate.gin).
  observation = tensor_spec.from_spec(playlist_observation_spec(
      len(track_features), pool_size, user_feature_dim=8, history_length=10,
      num_levels=len(PUBLIC_RESPONSE_LEVELS), max_playlist_length=30))
  action = tensor_spec.BoundedTensorSpec((), tf.int32, 0, pool_size - 1,
                                         "action")
  return create_ahdqn_agent(ts.time_step_spec(observation), action,
                            track_features, tf.keras.optimizers.Adam(1e-3),
                            **kwargs)


def ahdqn_decision_ms(track_features: np.ndarray, pool_sizes: Sequence[int],
                      calls: int = 300, seed: int = 0,
                      jit_compile: bool = True) -> dict:
  """Median latency of one greedy AH-DQN decision at batch 1, per K.

  The greedy policy's `action` is wrapped in `tf.function` (XLA-compiled
  with `jit_compile`), traced once, then called `calls` times on one fixed
  time step; each timing includes reading the action back to NumPy.

  Args:
    track_features: float32 [N, F] catalog feature table.
    pool_sizes: pool sizes K to measure.
    calls: timed calls per K.
    seed: seed of the network and the time step.
    jit_compile: compile the policy with XLA.

  Returns:
    {"median_ms": {K: ms}, "p90_ms": {K: ms}, "no_xla_median_ms": {K: ms}
    (empty without jit_compile)}, K as a string.
  """
  median, p90, plain = {}, {}, {}
  for k in pool_sizes:
    tf.random.set_seed(seed)
    agent = _ahdqn_agent(track_features, int(k))
    time_step = tensor_spec.sample_spec_nest(agent.time_step_spec,
                                             seed=seed, outer_dims=(1,))
    time_step.observation["candidate_mask"] = tf.ones((1, int(k)), tf.bool)
    times = _call_times(tf.function(agent.policy.action,
                                    jit_compile=jit_compile), time_step, calls)
    median[str(k)] = float(np.median(times) * 1e3)
    p90[str(k)] = float(np.quantile(times, 0.9) * 1e3)
    if jit_compile:  # The same without XLA, for comparison.
      plain[str(k)] = float(np.median(_call_times(
          tf.function(agent.policy.action), time_step, calls)) * 1e3)
  return {"median_ms": median, "p90_ms": p90, "no_xla_median_ms": plain}


def _call_times(action, time_step, calls: int) -> np.ndarray:
  """Seconds of each of `calls` calls, after one untimed (tracing) call."""
  action(time_step).action.numpy()
  times = np.empty(calls)
  for i in range(calls):
    start = time.perf_counter()
    action(time_step).action.numpy()
    times[i] = time.perf_counter() - start
  return times


def replay_bytes_per_transition(track_features: np.ndarray,
                                pool_size: int = 500,
                                capacity: int = 1000) -> dict:
  """Bytes per transition of AH-DQN's replay buffer at pool size K.

  Args:
    track_features: float32 [N, F] catalog feature table (its width F does
      not enter the buffer: observations carry ids).
    pool_size: K.
    capacity: transitions the measured buffer holds.

  Returns:
    {"spec": bytes per item of the agent's collect data spec, "stored":
    bytes of the buffer's variables / capacity, "feature_width": F}.
  """
  agent = _ahdqn_agent(track_features, pool_size)
  spec = agent.collect_data_spec
  per_item = sum(int(np.prod(s.shape)) * s.dtype.size
                 for s in tf.nest.flatten(spec))
  buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
      spec, batch_size=1, max_length=capacity)
  stored = sum(int(np.prod(v.shape)) * v.dtype.size
               for v in buffer.variables())
  return {"spec": float(per_item), "stored": stored / capacity,
          "feature_width": int(np.shape(track_features)[1])}


def train_steps_per_s(py_env, num_steps: int = 50, batch_size: int = 256,
                      fill_steps: int = 20, seed: int = 0) -> dict:
  """AH-DQN `agent.train` steps/s on a replay buffer filled from `py_env`.

  The buffer is filled by a random policy (`fill_steps` batched steps); the
  train step (`next(iterator)` + `agent.train`) runs in `common.function`,
  is traced by 3 untimed steps, then timed over `num_steps`.

  Args:
    py_env: a batched `TFAgtPyEnvironment`.
    num_steps: timed train steps.
    batch_size: transitions per train step.
    fill_steps: batched environment steps collected before training.
    seed: TensorFlow seed.

  Returns:
    {"steps_per_s", "seconds", "num_steps", "batch_size", "frames"}.
  """
  tf.random.set_seed(seed)
  env = tf_py_environment.TFPyEnvironment(py_env)
  agent = create_ahdqn_agent(env.time_step_spec(), env.action_spec(),
                             py_env.environment.catalog.features,
                             tf.keras.optimizers.Adam(1e-3))
  buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
      agent.collect_data_spec, batch_size=env.batch_size,
      max_length=fill_steps + 1)
  random_policy = random_tf_policy.RandomTFPolicy(
      env.time_step_spec(), env.action_spec(),
      observation_and_action_constraint_splitter=candidate_mask_splitter)
  common.function(dynamic_step_driver.DynamicStepDriver(
      env, random_policy, observers=[buffer.add_batch],
      num_steps=fill_steps * env.batch_size).run)()
  iterator = iter(buffer.as_dataset(sample_batch_size=batch_size,
                                    num_steps=2,
                                    num_parallel_calls=2).prefetch(2))

  @common.function
  def train_step():
    experience, _ = next(iterator)
    return agent.train(experience).loss

  for _ in range(3):
    train_step().numpy()
  start = time.perf_counter()
  for _ in range(num_steps):
    loss = train_step()
  loss.numpy()
  seconds = time.perf_counter() - start
  return {"steps_per_s": num_steps / seconds, "seconds": seconds,
          "num_steps": num_steps, "batch_size": batch_size,
          "frames": int(buffer.num_frames().numpy())}


def ray_speedup(policies: Sequence[str], num_episodes: int,
                shards_per_policy: int = 4, batch_size: int = 64,
                num_workers: int = 2, seed: int = 0) -> dict:
  """`evaluate_policies` on `num_workers` Ray workers vs one process.

  Both runs do the same shards with the same seeds; their returns must be
  identical. Ray's startup and the workers' first (warm-up) shard are
  timed apart and left out of the speed-up.

  Args:
    policies: baseline names.
    num_episodes: episodes per policy.
    shards_per_policy: shards per policy (a multiple of num_workers balances
      the load).
    batch_size: listeners per shard environment.
    num_workers: local Ray workers.
    seed: base seed.

  Returns:
    {"speedup", "serial_seconds", "ray_seconds", "ray_startup_seconds",
    "identical", "num_workers", "episodes"}.
  """
  kwargs = dict(policies=list(policies), num_episodes=num_episodes,
                shards_per_policy=shards_per_policy, batch_size=batch_size,
                seed=seed)
  serial = distributed.evaluate_policies(**kwargs)
  on_ray = distributed.evaluate_policies(use_ray=True,
                                         num_workers=num_workers, **kwargs)
  identical = all(np.array_equal(serial["returns"][p], on_ray["returns"][p])
                  for p in policies)
  return {"speedup": serial["seconds"] / on_ray["seconds"],
          "serial_seconds": serial["seconds"],
          "ray_seconds": on_ray["seconds"],
          "ray_startup_seconds": on_ray["startup_seconds"],
          "identical": bool(identical), "num_workers": num_workers,
          "episodes": num_episodes * len(policies)}


def ray_collection_speedup(num_workers: int = 2, batch_size: int = 256,
                           num_steps: int = 30, seed: int = 0) -> dict:
  """`DistributedCollector` on Ray actors vs the same workers in process.

  The environment comes from the current gin config (no scope). Each run
  first collects 2 untimed steps (building, tracing and compiling), then
  times one `collect` of `num_steps` steps per worker.

  Args:
    num_workers: workers W.
    batch_size: listeners B per worker.
    num_steps: timed steps per worker.
    seed: seed of the workers and the learner's network.

  Returns:
    {"speedup", "serial_steps_per_s", "ray_steps_per_s", "identical"}.
  """
  tf.random.set_seed(seed)
  builder = EnvironmentBuilder()
  specs = tf_py_environment.TFPyEnvironment(builder.get_py_env(batch_size=1))
  agent = create_ahdqn_agent(specs.time_step_spec(), specs.action_spec(),
                             builder.episode_sampler.catalog.features,
                             tf.keras.optimizers.Adam())
  rates, data = {}, {}
  for use_ray in (False, True):
    with DistributedCollector(num_workers=num_workers, batch_size=batch_size,
                              seed=seed, env_scope="",
                              use_ray=use_ray) as collector:
      collector.collect(agent.policy, 2)
      start = time.perf_counter()
      data[use_ray] = collector.collect(agent.policy, num_steps)
      rates[use_ray] = (num_workers * batch_size * num_steps /
                        (time.perf_counter() - start))
  identical = all(np.array_equal(a, b) for a, b in zip(
      tf.nest.flatten(data[False]), tf.nest.flatten(data[True])))
  return {"speedup": rates[True] / rates[False],
          "serial_steps_per_s": rates[False], "ray_steps_per_s": rates[True],
          "identical": bool(identical)}
