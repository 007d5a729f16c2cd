"""Train and evaluate a playlist agent (AH-DQN, DQN or PPO) in gin-built worlds.

    train_eval(root_dir)   # with configs/ahdqn.gin parsed

The training and evaluation environments are built by
`simulator.EnvironmentBuilder` inside the gin scopes `train` and `eval`, so a
config trains in a learned simulator and evaluates in the listener world
(configs/ahdqn.gin does, with the int8 CWM):

    train/EnvironmentBuilder.user_model = @LiteRTUserModel()
    LogEpisodeSampler.split_by = 'user'   # train on some users, evaluate
    eval/LogEpisodeSampler.split = 'test' # on the others

PPO (agent_name='ppo') has its own on-policy loop, `agents.ppo.train_ppo`.

Each iteration collects `collect_steps_per_iteration` environment steps (over
the B rows of one natively batched environment) with the epsilon-greedy
policy into a `TFUniformReplayBuffer`, then takes `train_steps_per_iteration`
gradient steps; both are wrapped in `common.function`. Every
`eval_interval` train steps the greedy policy runs `num_eval_episodes`
episodes in a fresh eval environment with common random numbers: every
evaluation, and every baseline at the end, meets the same play modes and
outcome draws, so returns are paired by episode. Outputs in root_dir:

* train/, eval/: TensorBoard summaries;
* checkpoint/: agent, policy, replay buffer (optional), global step, train
  metrics and the run's bookkeeping (a run whose root_dir holds a checkpoint
  resumes from it; its learning curve, loss history, steps and wall time
  carry over, and a resume with another operative config is refused unless
  `allow_config_change`);
* policy/: the greedy policy as a portable SavedModel (`agents.export`;
  load it with `tf.saved_model.load` or `agents.load_policy`);
* metrics.json: final and best evaluation return, the evaluation curve
  ([train step, seconds, mean return] rows) and the loss history ([train
  step, loss] rows) of the whole run across resumes, steps, wall time, speed,
  and a
  comparison with the baselines on the same held-out episodes (mean returns
  with bootstrap 95% intervals, and the paired difference to each, see
  `agents.comparison`);
* operative_config.gin, config.gin.
"""

import os
import time
from typing import Sequence

import gin
import tensorflow as tf
from tf_agents.drivers import dynamic_step_driver
from tf_agents.environments import tf_py_environment
from tf_agents.eval import metric_utils
from tf_agents.metrics import tf_metrics
from tf_agents.policies import random_tf_policy
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.utils import common
from tqdm.auto import tqdm

from agents.ahdqn import candidate_mask_splitter, create_ahdqn_agent
from agents.checkpointing import RunCheckpointer, environment_generators
from playlist_sim.evaluation.comparison import run_metrics
from agents.dqn import create_dqn_agent
from agents.environments import RunEvaluation, make_env
from agents.export import export_policy, recover_interrupted_export
from agents.ppo import train_ppo
from playlist_sim.policies.score_features import UserModelScoreWrapper
from playlist_sim.common.io_utils import ensure_writable_dir
from playlist_sim.common.runs import operative_bindings, write_run_files

__all__ = ["AGENTS", "train_eval"]

AGENTS = ("ahdqn", "dqn", "ppo")
# Arguments that change how a run is shown or guarded, not what it computes.
_NOT_CONFIG = ("root_dir", "progress", "allow_config_change")


def _run_config(arguments: dict) -> dict[str, str]:
  """The operative config a resume must share: gin's, and the arguments."""
  config = operative_bindings()
  config.update({f"train_eval.{k}": repr(v) for k, v in arguments.items()
                 if k not in _NOT_CONFIG})
  return config


@gin.configurable(denylist=["root_dir", "allow_config_change"])
def train_eval(
    root_dir: str,
    agent_name: str = "ahdqn",
    num_iterations: int = 40_000,
    seed: int = 0,
    # Environments: B listeners stepped together in each.
    env_batch_size: int = 256,
    eval_batch_size: int = 250,
    eval_common_random_numbers: bool = True,
    # Networks: ActionHeadQNetwork (ahdqn) / QNetwork (dqn).
    embedding_dim: int = 32,
    state_layers: Sequence[int] = (64,),
    head_layers: Sequence[int] = (64, 64),
    history_decay: float = 0.8,
    fc_layer_params: Sequence[int] = (256, 128),
    user_model_scores: bool = False,
    # Collection and replay.
    initial_collect_steps: int = 25_600,
    collect_steps_per_iteration: int = 256,
    replay_buffer_capacity: int = 100_000,
    epsilon_start: float = 0.5,
    epsilon_end: float = 0.1,
    epsilon_decay_steps: int = 6000,
    # Training.
    train_steps_per_iteration: int = 2,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    final_learning_rate: float | None = 1e-4,
    gamma: float = 0.9,
    n_step_update: int = 1,
    double_dqn: bool = True,
    target_update_period: int = 200,
    target_update_tau: float = 1.0,
    gradient_clipping: float | None = 10.0,
    # Evaluation.
    eval_interval: int = 4000,
    num_eval_episodes: int = 500,
    final_eval_episodes: int = 2000,
    baselines: Sequence[str] = ("random", "popularity", "cosine",
                                "greedy_user_model", "greedy_oracle",
                                "lookahead_oracle"),
    # Checkpoints, summaries, progress.
    checkpoint_interval: int = 5000,
    checkpoint_replay_buffer: bool = True,
    summary_interval: int = 100,
    progress: bool = True,
    allow_config_change: bool = False) -> dict:
  """Trains an agent, evaluates it, and writes the run's outputs.

  Args:
    root_dir: output folder; resumes from root_dir/checkpoint if present.
    agent_name: one of `AGENTS`.
    num_iterations: train steps in total: the global step the run ends at
      (a resumed run continues up to it).
    seed: seed of the environments, the network and the exploration.
    env_batch_size: listeners in the training environment.
    eval_batch_size: listeners in the evaluation environment.
    eval_common_random_numbers: evaluate with the environment's common
      random numbers (needs an env_ctor that takes `common_random_numbers`,
      as `PlaylistEnvironment` does), so every evaluation and baseline meets
      the same episodes.
    embedding_dim: AH-DQN track embedding width.
    state_layers: AH-DQN state MLP.
    head_layers: AH-DQN action head MLP.
    history_decay: AH-DQN recency decay of the history means.
    fc_layer_params: DQN MLP.
    user_model_scores: add the training user model's P(listen) of each
      candidate to the observations of both environments
      (`agents.score_features`; the world is scored by the learned model,
      never by itself).
    initial_collect_steps: random-policy steps before training (skipped
      when resuming with a restored replay buffer); with the first
      iteration's steps, at least (n_step_update + 1) * env_batch_size.
    collect_steps_per_iteration: environment row-steps per iteration (one
      batched step moves env_batch_size rows).
    replay_buffer_capacity: transitions kept in total.
    epsilon_start: exploration rate at step 0.
    epsilon_end: exploration rate after `epsilon_decay_steps`.
    epsilon_decay_steps: train steps of the linear epsilon decay.
    train_steps_per_iteration: gradient steps per iteration.
    batch_size: transitions per gradient step.
    learning_rate: Adam learning rate.
    final_learning_rate: if set, the learning rate decays linearly to it over
      the `num_iterations` train steps (quieter updates late in the run).
    gamma: discount.
    n_step_update: n of the n-step return.
    double_dqn: double-DQN targets.
    target_update_period: train steps between target network updates.
    target_update_tau: weight of the online network in a target update.
    gradient_clipping: global gradient norm clip, or None.
    eval_interval: train steps between evaluations.
    num_eval_episodes: episodes per periodic evaluation.
    final_eval_episodes: episodes of the final evaluation and of each
      baseline.
    baselines: baselines compared on the final evaluation's episodes (see
      `agents.comparison`): names from `agents.BASELINES`,
      "greedy_user_model" (greedy by the training user model) and the
      oracles "greedy_oracle" and "lookahead_oracle" (only when the eval user
      model is a ParametricListener).
    checkpoint_interval: train steps between checkpoints.
    checkpoint_replay_buffer: keep the replay buffer in the checkpoints for
      an exact resume (it is most of a run's disk: 214 of the 227 MB of a
      `--quick` pipeline); without it a resumed run refills the buffer with
      `initial_collect_steps` random steps.
    summary_interval: train steps between training summaries.
    progress: show a progress bar.
    allow_config_change: resume a checkpoint even if the operative config
      (gin bindings and these arguments) differs from the one it was trained
      with.

  Returns:
    The metrics written to root_dir/metrics.json.

  Raises:
    ValueError: for an unknown agent name, or too few steps collected
      before the first n-step sample.
    ConfigChangeError: resuming with another operative config (the message
      lists the differing bindings), unless `allow_config_change`.
    UserModelLoadError: if a scope's user model files are missing (the
      message gives the commands that make them).
  """
  arguments = dict(locals())  # Before any other local: the run's arguments.
  if agent_name not in AGENTS:
    raise ValueError(f"unknown agent {agent_name!r}; choose one of {AGENTS}")
  first_rows = ((initial_collect_steps + collect_steps_per_iteration) //
                env_batch_size)
  if agent_name != "ppo" and first_rows < n_step_update + 1:
    # Each replay row must hold n + 1 steps before the first sample.
    raise ValueError(
        f"train_eval.initial_collect_steps = {initial_collect_steps} and "
        f"collect_steps_per_iteration = {collect_steps_per_iteration} give "
        f"{first_rows} steps per row of the {env_batch_size} listeners before "
        f"the first train step; {n_step_update}-step returns need "
        f"{n_step_update + 1}")
  # A kill in the middle of the last run's export leaves policy.old only.
  recover_interrupted_export(os.path.join(root_dir, "policy"))
  if agent_name == "ppo":  # On-policy: its own loop.
    return train_ppo(
        root_dir, num_iterations=num_iterations, seed=seed,
        env_batch_size=env_batch_size, eval_batch_size=eval_batch_size,
        eval_common_random_numbers=eval_common_random_numbers,
        eval_interval=eval_interval, num_eval_episodes=num_eval_episodes,
        final_eval_episodes=final_eval_episodes, baselines=baselines,
        checkpoint_interval=checkpoint_interval, progress=progress)
  root_dir = ensure_writable_dir(root_dir)
  tf.keras.utils.set_random_seed(seed)
  train_py_env = make_env("train", env_batch_size, seed)
  scorer = (train_py_env.environment.user_model if user_model_scores else
            None)
  if scorer is not None:  # The same learned model scores in both worlds.
    train_py_env = UserModelScoreWrapper(train_py_env, scorer)
  evaluation = RunEvaluation(train_py_env.environment.user_model,
                             eval_batch_size, seed,
                             eval_common_random_numbers, scorer)
  train_env = tf_py_environment.TFPyEnvironment(train_py_env)
  catalog = train_py_env.environment.catalog

  # A fresh variable, not the graph-collection global step, so that two runs
  # in one process do not share it.
  global_step = tf.Variable(0, dtype=tf.int64, trainable=False,
                            name="global_step")

  def epsilon():  # Linear decay, read by the collect policy at each step.
    fraction = tf.minimum(tf.cast(global_step, tf.float32) /
                          max(epsilon_decay_steps, 1), 1.0)
    return epsilon_start + (epsilon_end - epsilon_start) * fraction

  agent_kwargs = dict(
      epsilon_greedy=epsilon, n_step_update=n_step_update,
      double_dqn=double_dqn, gamma=gamma,
      target_update_period=target_update_period,
      target_update_tau=target_update_tau,
      gradient_clipping=gradient_clipping, train_step_counter=global_step)
  if final_learning_rate is not None:
    learning_rate = tf.keras.optimizers.schedules.PolynomialDecay(
        learning_rate, max(num_iterations, 1), final_learning_rate)
  optimizer = tf.keras.optimizers.Adam(learning_rate=learning_rate)
  if agent_name == "ahdqn":
    agent = create_ahdqn_agent(
        train_env.time_step_spec(), train_env.action_spec(), catalog.features,
        optimizer, embedding_dim=embedding_dim, state_layers=state_layers,
        head_layers=head_layers, history_decay=history_decay, **agent_kwargs)
  else:
    agent = create_dqn_agent(
        train_env.time_step_spec(), train_env.action_spec(), catalog.features,
        optimizer, fc_layer_params=fc_layer_params, **agent_kwargs)

  replay_buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
      data_spec=agent.collect_data_spec, batch_size=train_env.batch_size,
      max_length=max(replay_buffer_capacity // train_env.batch_size, 2))
  train_metrics = [
      tf_metrics.NumberOfEpisodes(),
      tf_metrics.EnvironmentSteps(),
      tf_metrics.AverageReturnMetric(batch_size=train_env.batch_size,
                                     buffer_size=100),
  ]
  # Resumes weights, optimizer, step, replay buffer and the training
  # environment's generator state; refuses another run's checkpoint.
  replay = {"replay_buffer": replay_buffer} if checkpoint_replay_buffer else {}
  checkpointer = RunCheckpointer(
      os.path.join(root_dir, "checkpoint"), seed=seed, max_to_keep=1,
      generators=environment_generators(train_py_env.environment, seed),
      fingerprint={"agent": agent_name},
      config=_run_config(arguments), allow_config_change=allow_config_change,
      agent=agent, policy=agent.policy, global_step=global_step,
      metrics=metric_utils.MetricsGroup(train_metrics, "train_metrics"),
      **replay)
  resumed_from_step = checkpointer.restore()

  collect_driver = dynamic_step_driver.DynamicStepDriver(
      train_env, agent.collect_policy,
      observers=[replay_buffer.add_batch] + train_metrics,
      num_steps=collect_steps_per_iteration)
  collect = common.function(collect_driver.run)
  if replay_buffer.num_frames() == 0:
    random_policy = random_tf_policy.RandomTFPolicy(
        train_env.time_step_spec(), train_env.action_spec(),
        observation_and_action_constraint_splitter=candidate_mask_splitter)
    common.function(dynamic_step_driver.DynamicStepDriver(
        train_env, random_policy, observers=[replay_buffer.add_batch],
        num_steps=initial_collect_steps).run)()

  dataset = replay_buffer.as_dataset(
      num_parallel_calls=2, sample_batch_size=batch_size,
      num_steps=n_step_update + 1).prefetch(2)
  iterator = iter(dataset)

  @common.function
  def train_step():
    experience, _ = next(iterator)
    return agent.train(experience)

  train_writer = tf.summary.create_file_writer(os.path.join(root_dir, "train"))
  evaluation.attach(agent.policy, os.path.join(root_dir, "eval"),
                    global_step)

  # What earlier processes of this run measured (saved with the checkpoint).
  state = checkpointer.run_state
  curve = [tuple(row) for row in state.get("eval_curve", [])]
  loss_history = [tuple(row) for row in state.get("loss_history", [])]
  earlier_seconds = float(state.get("wall_time_s", 0.0))
  step = resumed_from_step
  start = time.perf_counter()

  def run_state():
    return {"eval_curve": curve, "loss_history": loss_history,
            "wall_time_s": earlier_seconds + time.perf_counter() - start}

  time_step, policy_state = None, agent.collect_policy.get_initial_state(
      train_env.batch_size)
  loss = float("nan")
  bar = tqdm(total=num_iterations, initial=step, unit="step",
             disable=not progress, desc=agent_name, dynamic_ncols=True)
  while step < num_iterations:
    time_step, policy_state = collect(time_step=time_step,
                                      policy_state=policy_state)
    for _ in range(min(train_steps_per_iteration, num_iterations - step)):
      loss_info = train_step()
    loss = float(loss_info.loss.numpy())
    previous, step = step, int(global_step.numpy())
    bar.update(step - previous)

    def crossed(interval, previous=previous, step=step):
      # Several train steps per iteration can jump over a multiple.
      return step // interval > previous // interval or step >= num_iterations
    if crossed(summary_interval):
      loss_history.append((step, loss))
      with train_writer.as_default():
        tf.summary.scalar("loss", loss, step=global_step)
        tf.summary.scalar("epsilon", epsilon(), step=global_step)
        for metric in train_metrics:
          tf.summary.scalar(f"Metrics/{metric.name}", metric.result(),
                            step=global_step)
    if crossed(eval_interval):
      curve.append((step, round(earlier_seconds + time.perf_counter() -
                                start, 1),
                    float(evaluation.evaluate(num_eval_episodes).mean())))
      bar.set_postfix(loss=f"{loss:.3f}", eval_return=f"{curve[-1][2]:.2f}")
    if crossed(checkpoint_interval):
      checkpointer.save(global_step=global_step, run_state=run_state())
  bar.close()
  seconds = earlier_seconds + time.perf_counter() - start
  env_steps = int(train_metrics[1].result().numpy())  # Checkpointed: total.
  checkpointer.save(global_step=global_step, run_state=run_state())
  export_policy(agent, os.path.join(root_dir, "policy"), global_step,
                scorer=scorer)

  comparison = evaluation.compare(agent_name, baselines, final_eval_episodes)
  final_loss = loss_history[-1][1] if loss_history else None
  metrics = run_metrics(agent_name, comparison, [list(r) for r in curve],
                        final_loss, env_steps, seconds, final_eval_episodes)
  if evaluation.split_warning:
    metrics["split_warning"] = evaluation.split_warning
  metrics.update(
      global_step=step,
      loss_history=[list(r) for r in loss_history],
      resumed_from_step=resumed_from_step,
      resume_history=checkpointer.resumed_from_steps,
      train_steps=step,
      train_steps_this_process=step - resumed_from_step,
      train_steps_per_s=step / max(seconds, 1e-9))
  write_run_files(root_dir, metrics)
  train_py_env.close()
  return metrics
