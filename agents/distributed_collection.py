"""Experience collection by several workers feeding one learner (Ray optional).

    with DistributedCollector(num_workers=2, batch_size=256, seed=0,
                              use_ray=True) as collector:
      replay_buffer = TFUniformReplayBuffer(
          agent.collect_data_spec, batch_size=collector.replay_batch_size,
          max_length=...)
      experience = collector.collect(agent.policy, num_steps=16, epsilon=0.1)
      collector.add_to(replay_buffer, experience)

Each worker (`Collector`, a Ray actor with `use_ray`) holds one natively
batched environment (B listeners, built from the learner's gin config in
`env_scope`) and an AH-DQN network with the learner's architecture. Per
`collect` call the learner's greedy-policy weights are copied to every worker,
each worker steps its environment `num_steps` times with an epsilon-greedy
policy over available candidates, and returns its trajectories as NumPy
arrays [B, T]; the learner concatenates workers in worker order ([W * B, T])
and adds them to its TF-Agents replay buffer, one time step per `add_batch`
(each buffer row is then the stream of one (worker, listener)).

The user's code: a Ray worker is a fresh process, so before it parses the
learner's gin config it imports the modules behind it (`--gin_imports`, the
config's `import` lines, and the module of every configurable the config
uses, such as a user model of the user's own), from the folders the driver
imported them from (`playlist_sim.common.user_modules`). A module a worker
cannot import stops the run at the first collect with a `WorkerImportError`
naming the module and the worker.

Determinism: workers build their environments at the first `collect`, told
the learner's train step then (`step`). Worker w's environment is seeded
with `worker_seed(seed, w, step)` and its exploration draws come from NumPy's
generator seeded by (seed, w, step), never from TensorFlow's global random
state, so the same seeds give the same experience whether the workers run in
this process (`use_ray=False`) or as Ray actors, locally or on a cluster
(`ray_address`, or gin `local_ray.address`); and a run resumed from a
checkpoint at step k (new workers) meets new episodes instead of the ones
its workers collected from step 0.
"""

import contextlib
import dataclasses
from typing import Sequence

import gin
import numpy as np
import tensorflow as tf
from tf_agents.environments import tf_py_environment
from tf_agents.trajectories import policy_step
from tf_agents.trajectories import trajectory

from agents.ahdqn import create_ahdqn_agent
from agents.environments import scored_env
from playlist_sim.common.user_modules import ModuleSet, WorkerImportError
from simulator.builder import EnvironmentBuilder
from simulator.ray_session import local_ray
# Registers LogEpisodeSampler with gin: the agent configs name it.
import simulator.log_episodes  # noqa: F401  pylint: disable=unused-import

__all__ = ["Collector", "CollectorConfig", "DistributedCollector",
           "WorkerImportError", "policy_weights", "worker_seed"]


@dataclasses.dataclass(frozen=True)
class CollectorConfig:
  """What a worker needs to build its environment and network.

  Attributes:
    gin_config: gin config text the environment is built from (parsed in a
      Ray worker; None: use the current process's config).
    env_scope: gin scope of the `EnvironmentBuilder` ("" for none).
    batch_size: listeners B in the worker's environment.
    seed: base seed.
    network_kwargs: `create_ahdqn_agent` keyword arguments of the learner's
      network (embedding_dim, state_layers, head_layers, history_decay).
    user_model_scores: the observations carry the environment's user model's
      P(listen) of each candidate, and whatever else `scored_env` adds, as
      the learner's do with `train_eval.user_model_scores`.
    modules: the driver's modules a worker imports before parsing
      `gin_config` (see the module docstring).
  """
  gin_config: str | None
  env_scope: str
  batch_size: int
  seed: int
  network_kwargs: tuple[tuple[str, object], ...] = ()
  user_model_scores: bool = False
  modules: ModuleSet = ModuleSet()


def policy_weights(policy) -> list[np.ndarray]:
  """The values of a policy's variables, in `policy.variables()` order."""
  return [v.numpy() for v in policy.variables()]


def worker_seed(seed: int, worker_index: int, start_step: int) -> int:
  """The environment seed of worker w that starts collecting at a step.

  Args:
    seed: the run's seed.
    worker_index: w.
    start_step: the learner's train step at the worker's first collect (0
      for a fresh run, k after a resume from a checkpoint at step k).

  Returns:
    A seed in [0, 2**63), a hash of the three (NumPy's `SeedSequence`), so
    neighbouring runs, workers and steps get unrelated streams.
  """
  state = np.random.SeedSequence(
      [int(seed), int(worker_index), int(start_step)]).generate_state(
          1, np.uint64)[0]
  return int(state >> np.uint64(1))


class Collector:
  """One worker: a batched environment and an epsilon-greedy AH-DQN policy.

  Built at `start` (the first `collect`), when the learner's train step is
  known: it picks the worker's seeds.
  """

  def __init__(self, config: CollectorConfig, worker_index: int):
    """Stores the settings; `start` builds.

    Args:
      config: the shared settings.
      worker_index: w, which picks the worker's seeds.
    """
    self._config = config
    self._worker_index = int(worker_index)
    self.env = None
    self._time_step = None

  def start(self, start_step: int = 0) -> None:
    """Imports the driver's modules, then builds the environment and the
    network, seeded by (seed, w, start_step); once.

    Args:
      start_step: the learner's train step (see `worker_seed`).

    Raises:
      WorkerImportError: if a module of the driver's cannot be imported.
    """
    if self.env is not None:
      return
    config, w = self._config, self._worker_index
    config.modules.import_all(f"collect worker {w}")
    if config.gin_config is not None:
      with gin.unlock_config():
        gin.clear_config()
        # Bindings of configurables no imported module registers (the
        # learner's own entry points, if their modules were not imported)
        # are not the worker's: skipped.
        gin.parse_config(config.gin_config, skip_unknown=True)
    with gin.config_scope(config.env_scope or None):
      builder = EnvironmentBuilder()
    env = builder.get_py_env(batch_size=config.batch_size,
                             seed=worker_seed(config.seed, w, start_step))
    if config.user_model_scores:
      # The learner's wrappers, lookahead included (`scored_env` reads its
      # bindings from the config parsed above): the same observations.
      env = scored_env(env, env.environment.user_model)
    specs = tf_py_environment.TFPyEnvironment(env)
    agent = create_ahdqn_agent(specs.time_step_spec(), specs.action_spec(),
                               env.environment.catalog.features,
                               tf.keras.optimizers.Adam(),
                               **dict(config.network_kwargs))
    self._policy = agent.policy
    self._variables = self._policy.variables()
    # XLA roughly halves the Q network's time at B=256 (see the benchmark).
    self._greedy = tf.function(self._policy.action, jit_compile=True)
    self._rng = np.random.default_rng([int(config.seed), w, int(start_step)])
    self.env = env

  def set_weights(self, weights: Sequence[np.ndarray]) -> None:
    """Copies the learner's greedy-policy weights (see `policy_weights`)."""
    self.start()
    if len(weights) != len(self._variables):
      raise ValueError(f"got {len(weights)} weight arrays, the worker's "
                       f"policy has {len(self._variables)} variables")
    for variable, value in zip(self._variables, weights):
      variable.assign(value)

  def _actions(self, time_step, epsilon: float) -> np.ndarray:
    observation = time_step.observation
    greedy = self._greedy(tf.nest.map_structure(tf.convert_to_tensor,
                                                time_step)).action.numpy()
    mask = np.asarray(observation["candidate_mask"], bool)
    # A uniform choice among available candidates: argmax of uniform scores
    # on them (rows with none left take slot 0; the environment resets them).
    scores = np.where(mask, self._rng.random(mask.shape), -1.0)
    explore = self._rng.random(mask.shape[0]) < epsilon
    return np.where(explore, scores.argmax(1), greedy).astype(np.int32)

  def collect(self, num_steps: int, epsilon: float) -> trajectory.Trajectory:
    """Steps the environment; returns the trajectories [B, num_steps].

    The environment carries on from the previous call.

    Args:
      num_steps: batched environment steps.
      epsilon: exploration rate.

    Returns:
      A `Trajectory` of NumPy arrays [B, num_steps, ...].
    """
    self.start()
    if self._time_step is None:
      self._time_step = self.env.reset()
    steps = []
    for _ in range(int(num_steps)):
      action = self._actions(self._time_step, epsilon)
      next_time_step = self.env.step(action)
      steps.append(trajectory.from_transition(
          self._time_step, policy_step.PolicyStep(action, (), ()),
          next_time_step))
      self._time_step = next_time_step
    return tf.nest.map_structure(lambda *xs: np.stack(xs, axis=1), *steps)


@gin.configurable
class DistributedCollector:
  """Workers collecting experience for one learner (see module docstring).

  Use as a context manager: Ray (if used) starts on entry and stops on exit.
  """

  def __init__(self, num_workers: int = 2, batch_size: int = 64,
               seed: int = 0, env_scope: str = "train",
               network_kwargs: dict | None = None, use_ray: bool = False,
               ray_address: str | None = None,
               user_model_scores: bool = False):
    """Stores the settings.

    Args:
      num_workers: workers W.
      batch_size: listeners B per worker environment.
      seed: base seed.
      env_scope: gin scope of the workers' `EnvironmentBuilder`.
      network_kwargs: the learner's `create_ahdqn_agent` network arguments.
      use_ray: run workers as Ray actors (else in this process, in turn).
      ray_address: a Ray cluster address (implies use_ray).
      user_model_scores: see `CollectorConfig`.

    Raises:
      ValueError: if num_workers or batch_size < 1.
      WorkerImportError: with Ray, if the gin config uses a configurable
        defined in the script being run (`__main__`).
    """
    if num_workers < 1 or batch_size < 1:
      raise ValueError(f"DistributedCollector needs num_workers >= 1 and "
                       f"batch_size >= 1, got {num_workers} and {batch_size}")
    self.num_workers, self.batch_size = int(num_workers), int(batch_size)
    self.use_ray = bool(use_ray or ray_address)
    self.ray_address = ray_address
    self._config = CollectorConfig(
        gin_config=gin.config_str() if self.use_ray else None,
        env_scope=env_scope, batch_size=self.batch_size, seed=int(seed),
        network_kwargs=tuple(sorted((network_kwargs or {}).items())),
        user_model_scores=bool(user_model_scores),
        # In-process workers share this process's modules.
        modules=ModuleSet.of_gin_config() if self.use_ray else ModuleSet())
    self._stack = contextlib.ExitStack()
    self._ray = None
    self._workers = []
    self._started = False

  @property
  def replay_batch_size(self) -> int:
    """The batch size of the learner's replay buffer: W * B."""
    return self.num_workers * self.batch_size

  def __enter__(self) -> "DistributedCollector":
    if self.use_ray:
      address = {"address": self.ray_address} if self.ray_address else {}
      self._ray = self._stack.enter_context(
          local_ray(self.num_workers, **address))
      actor = self._ray.remote(num_cpus=1)(Collector)
      self._workers = [actor.remote(self._config, w)
                       for w in range(self.num_workers)]
    else:
      self._workers = [Collector(self._config, w)
                       for w in range(self.num_workers)]
    return self

  def __exit__(self, *exc) -> None:
    if self._ray is None:
      for worker in self._workers:
        if worker.env is not None:
          worker.env.close()
    self._workers, self._ray, self._started = [], None, False
    self._stack.close()

  def _start(self, step: int) -> None:
    """Builds every worker, seeded for the learner's train step `step`."""
    if self._ray is None:
      for worker in self._workers:
        worker.start(step)
    else:
      try:
        self._ray.get([w.start.remote(step) for w in self._workers])
      except WorkerImportError as e:  # Ray's copy carries the worker's trace.
        raise WorkerImportError(str(getattr(e, "cause", e))) from None
    self._started = True

  def collect(self, policy, num_steps: int, epsilon: float = 0.1,
              step: int = 0) -> trajectory.Trajectory:
    """Every worker collects `num_steps` steps with `policy`'s weights.

    Args:
      policy: the learner's greedy policy (`agent.policy`).
      num_steps: batched steps per worker.
      epsilon: exploration rate.
      step: the learner's train step; the first call's picks the workers'
        seeds (`worker_seed`), later calls carry their episodes on.

    Returns:
      A `Trajectory` of NumPy arrays [W * B, num_steps, ...], workers in
      order.

    Raises:
      WorkerImportError: on the first call, if a worker cannot import a
        module of the driver's gin config.
    """
    if not self._workers:
      raise RuntimeError("use DistributedCollector as a context manager "
                         "(with DistributedCollector(...) as collector:)")
    if not self._started:
      self._start(step)
    weights = policy_weights(policy)
    if self._ray is not None:
      ref = self._ray.put(weights)
      self._ray.get([w.set_weights.remote(ref) for w in self._workers])
      parts = self._ray.get([w.collect.remote(num_steps, epsilon)
                             for w in self._workers])
    else:
      parts = []
      for worker in self._workers:
        worker.set_weights(weights)
        parts.append(worker.collect(num_steps, epsilon))
    return tf.nest.map_structure(lambda *xs: np.concatenate(xs, axis=0),
                                 *parts)

  @staticmethod
  def add_to(replay_buffer, experience: trajectory.Trajectory) -> None:
    """Adds [W * B, T] experience to a replay buffer of batch size W * B."""
    steps = tf.nest.flatten(experience)[0].shape[1]
    for t in range(steps):
      replay_buffer.add_batch(tf.nest.map_structure(
          lambda x, t=t: tf.convert_to_tensor(x[:, t]), experience))
