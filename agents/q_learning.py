"""AH-DQN and DQN's collect and train steps for the run loop.

Off-policy, as TF-Agents' DQN example: each iteration collects
`collect_steps_per_iteration` environment row-steps (over the B rows of one
natively batched environment) with the epsilon-greedy policy into a
`TFUniformReplayBuffer`, then takes `train_steps_per_iteration` gradient
steps on n-step samples of it; both are wrapped in `common.function`. The
replay buffer travels in the checkpoints (unless
`checkpoint_replay_buffer=False`), and an empty buffer is first filled with
`initial_collect_steps` steps of the random policy. Progress is counted in
train steps (the agent's train step counter).

With `collect_workers = W > 0` (AH-DQN only) the experience comes from W
Ray workers (`agents.distributed_collection.DistributedCollector`, local Ray
on 127.0.0.1, or the cluster at `ray_address`), each stepping its own
natively batched environment of B = env_batch_size listeners built from the
same gin config; the learner's greedy weights go to the workers with every
collect, and the learner trains on the driver. The replay buffer then has
W * B rows; an iteration collects ceil(collect_steps_per_iteration / (W * B))
steps per row, with the same epsilon schedule. The workers' seeds are
derived from the train step of their first collect, so a resumed run's
workers meet new episodes (`agents.distributed_collection.worker_seed`).
"""

import types

import tensorflow as tf
from tf_agents.drivers import dynamic_step_driver
from tf_agents.policies import random_tf_policy
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.utils import common

from agents.ahdqn import candidate_mask_splitter, create_ahdqn_agent
from agents.distributed_collection import DistributedCollector
from agents.dqn import create_dqn_agent
from agents.run_loop import STEP_COUNTERS, AgentSteps, RunEnvironments

__all__ = ["check_q_learning_arguments", "create_q_agent",
           "q_learning_steps"]


def check_q_learning_arguments(hp: types.SimpleNamespace) -> None:
  """Refuses settings that cannot train, before anything is built.

  Args:
    hp: `train_eval`'s arguments.

  Raises:
    ValueError: negative workers, workers for another agent than AH-DQN, no
      train step per iteration, or too few steps collected before the first
      n-step sample.
  """
  if hp.collect_workers < 0:
    raise ValueError(f"train_eval.collect_workers = {hp.collect_workers}: "
                     "give 0 (collect in this process) or more workers")
  if hp.collect_workers and hp.agent_name != "ahdqn":
    raise ValueError(
        f"train_eval.collect_workers = {hp.collect_workers} needs "
        f"agent_name = 'ahdqn' (the workers run AH-DQN's network); got "
        f"{hp.agent_name!r}: set collect_workers = 0")
  if hp.train_steps_per_iteration < 1:
    raise ValueError(
        "train_eval.train_steps_per_iteration = "
        f"{hp.train_steps_per_iteration}: each iteration needs at least one "
        "train step")
  first_rows = ((hp.initial_collect_steps + hp.collect_steps_per_iteration)
                // hp.env_batch_size)
  if first_rows < hp.n_step_update + 1:
    # Each replay row must hold n + 1 steps before the first sample.
    raise ValueError(
        f"train_eval.initial_collect_steps = {hp.initial_collect_steps} and "
        f"collect_steps_per_iteration = {hp.collect_steps_per_iteration} give "
        f"{first_rows} steps per row of the {hp.env_batch_size} listeners "
        f"before the first train step; {hp.n_step_update}-step returns need "
        f"{hp.n_step_update + 1}")


def create_q_agent(envs: RunEnvironments, hp: types.SimpleNamespace):
  """The AH-DQN or DQN agent of `hp.agent_name`, epsilon decaying linearly.

  Args:
    envs: the run's environments and step variable.
    hp: `train_eval`'s arguments.

  Returns:
    (agent, epsilon): the agent and its exploration rate's function.
  """
  global_step = envs.global_step

  def epsilon():  # Linear decay, read by the collect policy at each step.
    fraction = tf.minimum(tf.cast(global_step, tf.float32) /
                          max(hp.epsilon_decay_steps, 1), 1.0)
    return hp.epsilon_start + (hp.epsilon_end - hp.epsilon_start) * fraction

  learning_rate = hp.learning_rate
  if hp.final_learning_rate is not None:
    learning_rate = tf.keras.optimizers.schedules.PolynomialDecay(
        learning_rate, max(hp.num_iterations, 1), hp.final_learning_rate)
  optimizer = tf.keras.optimizers.Adam(learning_rate=learning_rate)
  shared = dict(
      epsilon_greedy=epsilon, n_step_update=hp.n_step_update,
      double_dqn=hp.double_dqn, gamma=hp.gamma,
      target_update_period=hp.target_update_period,
      target_update_tau=hp.target_update_tau,
      gradient_clipping=hp.gradient_clipping, train_step_counter=global_step)
  specs = (envs.tf_env.time_step_spec(), envs.tf_env.action_spec(),
           envs.py_env.environment.catalog.features, optimizer)
  if hp.agent_name == "ahdqn":
    agent = create_ahdqn_agent(
        *specs, embedding_dim=hp.embedding_dim, state_layers=hp.state_layers,
        head_layers=hp.head_layers, history_decay=hp.history_decay, **shared)
  else:
    agent = create_dqn_agent(*specs, fc_layer_params=hp.fc_layer_params,
                             **shared)
  return agent, epsilon


def _worker_collection(envs: RunEnvironments, hp: types.SimpleNamespace,
                       agent, replay_buffer, epsilon):
  """Collection by `hp.collect_workers` Ray workers (see the module doc).

  Returns:
    (collect, initial_fill, close) functions.
  """
  collector = DistributedCollector(
      num_workers=hp.collect_workers, batch_size=hp.env_batch_size,
      seed=hp.seed, env_scope="train", use_ray=True,
      ray_address=hp.ray_address, user_model_scores=hp.user_model_scores,
      network_kwargs=dict(embedding_dim=hp.embedding_dim,
                          state_layers=hp.state_layers,
                          head_layers=hp.head_layers,
                          history_decay=hp.history_decay))
  collector.__enter__()  # Left by `close`, which the run loop always calls.
  rows = collector.replay_batch_size

  def steps_per_row(row_steps: int) -> int:
    return max(1, -(-row_steps // rows))

  def add(experience, observers) -> None:  # [W * B, T]: a step per add.
    experience = tf.nest.map_structure(tf.convert_to_tensor, experience)
    for t in range(int(experience.step_type.shape[1])):
      step = tf.nest.map_structure(lambda x, t=t: x[:, t], experience)
      for observer in observers:
        observer(step)

  def collect() -> None:  # Weights go to the workers with every call.
    add(collector.collect(agent.policy,
                          steps_per_row(hp.collect_steps_per_iteration),
                          epsilon=float(epsilon()),
                          step=int(envs.global_step.numpy())),
        [replay_buffer.add_batch] + envs.train_metrics)

  def initial_fill() -> None:  # Epsilon 1: uniform over the candidates.
    add(collector.collect(agent.policy, max(steps_per_row(
        hp.initial_collect_steps), hp.n_step_update + 1), epsilon=1.0,
                          step=int(envs.global_step.numpy())),
        [replay_buffer.add_batch])
  return collect, initial_fill, lambda: collector.__exit__(None, None, None)


def _local_collection(envs: RunEnvironments, hp: types.SimpleNamespace,
                      agent, replay_buffer):
  """Collection in the training environment of this process.

  Returns:
    (collect, initial_fill) functions.
  """
  tf_env = envs.tf_env
  collect_run = common.function(dynamic_step_driver.DynamicStepDriver(
      tf_env, agent.collect_policy,
      observers=[replay_buffer.add_batch] + envs.train_metrics,
      num_steps=hp.collect_steps_per_iteration).run)
  carried = {"time_step": None,
             "policy_state": agent.collect_policy.get_initial_state(
                 tf_env.batch_size)}

  def collect() -> None:  # The episodes carry on across iterations.
    carried["time_step"], carried["policy_state"] = collect_run(**carried)

  def initial_fill() -> None:
    random_policy = random_tf_policy.RandomTFPolicy(
        tf_env.time_step_spec(), tf_env.action_spec(),
        observation_and_action_constraint_splitter=candidate_mask_splitter)
    common.function(dynamic_step_driver.DynamicStepDriver(
        tf_env, random_policy, observers=[replay_buffer.add_batch],
        num_steps=hp.initial_collect_steps).run)()
  return collect, initial_fill


def q_learning_steps(envs: RunEnvironments,
                     hp: types.SimpleNamespace) -> AgentSteps:
  """The replay buffer, the collect driver and the train step.

  Args:
    envs: the run's environments, step variable and train metrics.
    hp: `train_eval`'s arguments (agent_name, the collection, replay and
      training hyperparameters).

  Returns:
    The steps the run loop calls.
  """
  agent, epsilon = create_q_agent(envs, hp)
  # With workers, each buffer row is the stream of one (worker, listener).
  rows = hp.collect_workers * hp.env_batch_size or envs.tf_env.batch_size
  replay_buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
      data_spec=agent.collect_data_spec, batch_size=rows,
      max_length=max(hp.replay_buffer_capacity // rows, 2))
  close = None
  if hp.collect_workers:
    collect, initial_fill, close = _worker_collection(
        envs, hp, agent, replay_buffer, epsilon)
  else:
    collect, initial_fill = _local_collection(envs, hp, agent, replay_buffer)
  sampled = {}

  def after_restore() -> None:
    if replay_buffer.num_frames() == 0:  # A fresh run, or a lean checkpoint.
      initial_fill()
    sampled["iterator"] = iter(replay_buffer.as_dataset(
        num_parallel_calls=2, sample_batch_size=hp.batch_size,
        num_steps=hp.n_step_update + 1).prefetch(2))

  @common.function
  def train_step():
    experience, _ = next(sampled["iterator"])
    return agent.train(experience)

  def train(remaining: int) -> float:
    for _ in range(min(hp.train_steps_per_iteration, remaining)):
      loss_info = train_step()
    return float(loss_info.loss.numpy())

  replay = ({"replay_buffer": replay_buffer} if hp.checkpoint_replay_buffer
            else {})
  return AgentSteps(
      agent=agent, collect=collect, train=train,
      progress=lambda: int(envs.global_step.numpy()), checkpointed=replay,
      after_restore=after_restore, summaries=lambda: {"epsilon": epsilon()},
      counters=STEP_COUNTERS, unit="step", close=close)
