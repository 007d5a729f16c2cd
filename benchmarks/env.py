"""Environment throughput: the natively batched environment vs a list.

`env_steps_per_s` times, at each batch size B, one `PlaylistEnvironment` of
B rows (wrapped as a TF-Agents `PyEnvironment`) against TF-Agents'
`BatchedPyEnvironment` (multithreading=False) over B single environments,
all built by one `EnvironmentBuilder` (same user model, samplers, world),
stepped with the same pre-generated random valid actions; each call counts
B steps. `steps_with_ahdqn` times the batched environment with AH-DQN's
greedy policy choosing the actions. Used by `scripts/benchmark.py`.
"""

import logging
import os
import platform
import sys
import time
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf
import tf_agents
from tf_agents.environments import batched_py_environment
from tf_agents.environments import tf_py_environment
from tf_agents.specs import array_spec

from agents.ahdqn import create_ahdqn_agent
from user_models.base import AbstractUserModel

__all__ = ["EpisodeCounter", "env_steps_per_s", "is_stateful",
           "machine_info", "measure", "steps_with_ahdqn"]

_log = logging.getLogger(__name__)

#: Distinct pre-generated action batches, cycled through while stepping.
_NUM_ACTION_BATCHES = 64


def measure(step: Callable[[np.ndarray], object], actions: Sequence,
            seconds: float, warmup_seconds: float) -> tuple[int, float]:
  """Calls `step` on the actions in turn for a fixed wall time.

  Args:
    step: the function timed, called with one element of `actions`.
    actions: pre-generated arguments, cycled through.
    seconds: wall time measured (at least one call is made).
    warmup_seconds: wall time stepped, untimed, before measuring.

  Returns:
    (number of timed calls, their wall time in seconds).
  """
  n = len(actions)
  i = 0
  deadline = time.perf_counter() + warmup_seconds
  while time.perf_counter() < deadline:
    step(actions[i % n])
    i += 1
  calls = 0
  start = time.perf_counter()
  end = start + seconds
  while True:
    step(actions[(i + calls) % n])
    calls += 1
    now = time.perf_counter()
    if now >= end:
      return calls, now - start


def machine_info() -> dict:
  """The machine and software the numbers were measured on, and its load."""
  try:
    usable_cpus = len(os.sched_getaffinity(0))
  except AttributeError:  # Not on Linux.
    usable_cpus = os.cpu_count()
  try:
    load = [round(x, 2) for x in os.getloadavg()]
  except OSError:
    load = None
  return {
      "cpu_count": os.cpu_count(),
      "usable_cpu_count": usable_cpus,
      "processor": platform.processor() or platform.machine(),
      "platform": platform.platform(),
      "python": sys.version.split()[0],
      "numpy": np.__version__,
      "tensorflow": tf.__version__,
      "tf_agents": tf_agents.__version__,
      # Other processes compete for the CPUs when this is high.
      "load_average_1_5_15_min": load,
  }



class EpisodeCounter:
  """Steps an environment and counts the episodes that end."""

  def __init__(self, env):
    self._env, self.steps, self.episodes = env, 0, 0

  def step(self, action):
    time_step = self._env.step(action)
    step_type = np.asarray(time_step.step_type)
    self.steps += step_type.size
    self.episodes += int((step_type == 2).sum())
    return time_step

  def mean_length(self) -> float:
    """Steps per ended episode (all steps if none ended)."""
    return self.steps / max(self.episodes, 1)


def is_stateful(user_model: AbstractUserModel) -> bool:
  """Whether the user model keeps per-row session state."""
  cls = type(user_model)
  return (cls.begin_sessions is not AbstractUserModel.begin_sessions or
          cls.observe is not AbstractUserModel.observe)


def env_steps_per_s(builder, batch_sizes: Sequence[int], seconds: float,
                    warmup_seconds: float, seed: int = 0,
                    acting_batch_sizes: Sequence[int] = (256,)) -> dict:
  """Steps/s of the batched environment and of the list baseline.

  Args:
    builder: an `EnvironmentBuilder` (its user model is the one timed).
    batch_sizes: batch sizes B.
    seconds: wall time of each measurement.
    warmup_seconds: wall time stepped before each measurement.
    seed: seed of environments and actions.
    acting_batch_sizes: batch sizes also timed with AH-DQN acting.

  Returns:
    {"rates": {B: {"batched", "list", "ratio"}}, "raw": {B: counts, mean
    episode lengths and build times}, "acting": {B: steps/s with AH-DQN}},
    B as a string.
  """
  rng = np.random.RandomState(seed)
  rates, raw, acting = {}, {}, {}
  for b in batch_sizes:
    start = time.perf_counter()
    batched = builder.get_py_env(batch_size=b, seed=seed)
    batched_build = time.perf_counter() - start
    start = time.perf_counter()
    copies = [builder.get_py_env(unbatched=True, batch_size=1, seed=seed + i)
              for i in range(b)]
    listed = batched_py_environment.BatchedPyEnvironment(
        copies, multithreading=False)
    list_build = time.perf_counter() - start
    actions = array_spec.sample_spec_nest(
        batched.action_spec(), rng, outer_dims=(_NUM_ACTION_BATCHES, b))

    counts = {}
    for name, env in (("batched", batched), ("list", listed)):
      env.reset()
      episodes = EpisodeCounter(env)
      calls, elapsed = measure(episodes.step, actions, seconds,
                               warmup_seconds)
      counts[name] = {"calls": calls, "seconds": elapsed,
                      "steps_per_s": calls * b / elapsed,
                      "mean_episode_steps": episodes.mean_length()}
      _log.info("env B=%d %-7s: %d calls in %.2f s = %.0f steps/s", b, name,
                   calls, elapsed, counts[name]["steps_per_s"])
      env.close()
    if b in acting_batch_sizes:
      acting[str(b)] = steps_with_ahdqn(batched, seconds, warmup_seconds,
                                        seed)
    ratio = counts["batched"]["steps_per_s"] / counts["list"]["steps_per_s"]
    rates[str(b)] = {"batched": counts["batched"]["steps_per_s"],
                     "list": counts["list"]["steps_per_s"], "ratio": ratio}
    raw[str(b)] = {"batched": counts["batched"], "list": counts["list"],
                   "batched_build_seconds": batched_build,
                   "list_build_seconds": list_build}
    _log.info("env B=%d: batched / list = %.1fx (list built in %.2f s)", b,
                 ratio, list_build)
  return {"rates": rates, "raw": raw, "acting": acting}


def steps_with_ahdqn(py_env, seconds: float, warmup_seconds: float,
                     seed: int = 0) -> float:
  """Steps/s of `py_env` with AH-DQN's greedy policy choosing the actions.

  The policy (random weights) runs in an XLA-compiled `tf.function` on the
  environment's time steps, as a trained one would while collecting.

  Args:
    py_env: a batched `TFAgtPyEnvironment`.
    seconds: wall time measured.
    warmup_seconds: wall time stepped (and compiled) before.
    seed: TensorFlow seed of the network.

  Returns:
    Environment steps per second.
  """
  tf.random.set_seed(seed)
  specs = tf_py_environment.TFPyEnvironment(py_env)
  agent = create_ahdqn_agent(specs.time_step_spec(), specs.action_spec(),
                             py_env.environment.catalog.features,
                             tf.keras.optimizers.Adam())
  action = tf.function(agent.policy.action, jit_compile=True)
  state = {"time_step": py_env.reset()}

  def step(_):
    chosen = action(state["time_step"]).action.numpy()
    state["time_step"] = py_env.step(chosen)

  step(None)  # Trace and compile outside the timing.
  calls, elapsed = measure(step, [None], seconds, warmup_seconds)
  rate = calls * py_env.batch_size / elapsed
  _log.info("env B=%d with AH-DQN acting: %.0f steps/s", py_env.batch_size,
               rate)
  return rate
