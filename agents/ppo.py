"""PPO in the continuous action space: a point in track-feature space.

The published work also trained 'vanilla' policy-gradient agents. Here the
action is a vector of the catalog's track features (the environment's
`simulator.ContinuousTrackSampler` places the nearest unplayed candidate), so
the continuous path of the simulator is exercised by a real learner:

* `create_ppo_agent`: TF-Agents' `PPOClipAgent` with an
  `ActorDistributionNetwork` (a Gaussian squashed into the feature bounds)
  and a `ValueNetwork`, both over `SessionStateFeatures` of the observation;
* `train_ppo`: the on-policy loop of TF-Agents' PPO example (collect full
  episodes into a `TFUniformReplayBuffer`, train on all of it, clear it),
  with the same environments (gin scopes `train`, `eval`), evaluation,
  checkpoint/resume, policy export, baselines and outputs as
  `agents.train_eval.train_eval`, which calls it for agent_name='ppo'.

configs/ppo.gin binds `EnvironmentBuilder.track_sampler =
@ContinuousTrackSampler()`; baselines that pick pool slots (popularity,
cosine, greedy) cannot run in that environment: compare them from an AH-DQN
run on the same held-out episodes (same eval seed, common random numbers).
"""

import os
import time
from typing import Sequence

import gin
import numpy as np
import tensorflow as tf
from tf_agents.agents.ppo import ppo_clip_agent
from tf_agents.drivers import dynamic_episode_driver
from tf_agents.environments import tf_py_environment
from tf_agents.eval import metric_utils
from tf_agents.metrics import tf_metrics
from tf_agents.networks import actor_distribution_network
from tf_agents.networks import value_network
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.trajectories import time_step as ts
from tf_agents.typing import types
from tf_agents.utils import common
from tqdm.auto import tqdm

from agents.checkpointing import RunCheckpointer, environment_generators
from playlist_sim.evaluation.comparison import run_metrics
from agents.environments import RunEvaluation, make_env
from agents.export import export_policy
from agents.networks import OBSERVATION_KEYS
from playlist_sim.common.io_utils import ensure_writable_dir
from playlist_sim.common.runs import write_run_files

__all__ = ["SessionStateFeatures", "create_ppo_agent", "train_ppo"]


class SessionStateFeatures(tf.keras.layers.Layer):
  """The observation as one flat vector for the actor and value networks.

  [user features, catalog features of the H history tracks (H x F), one-hot
  history responses (H x (L + 1), padding included), position / max
  position, mean features of the available candidates (F)]. The last part
  tells the actor where in feature space the pool lies.
  """

  def __init__(self, track_features: np.ndarray, num_levels: int,
               max_position: float, **kwargs):
    super().__init__(**kwargs)
    self._track_features = np.asarray(track_features, np.float32)
    self._table = tf.constant(self._track_features)
    self._num_levels = int(num_levels)
    self._max_position = float(max(max_position, 1.0))

  def call(self, observation):
    history = tf.gather(self._table, observation["history_ids"])
    valid = tf.cast(observation["history_responses"] >= 0, tf.float32)
    history = tf.reshape(history * valid[..., None],
                         [-1, history.shape[-2] * history.shape[-1]])
    responses = tf.one_hot(
        tf.cast(observation["history_responses"], tf.int32) + 1,
        self._num_levels + 1)
    responses = tf.reshape(responses,
                           [-1, responses.shape[-2] * responses.shape[-1]])
    mask = tf.cast(observation["candidate_mask"], tf.float32)[..., None]
    pool = (tf.reduce_sum(tf.gather(self._table, observation["candidate_ids"])
                          * mask, axis=-2) /
            tf.maximum(tf.reduce_sum(mask, axis=-2), 1.0))
    position = tf.cast(observation["position"], tf.float32)[..., None]
    return tf.concat([tf.cast(observation["user_features"], tf.float32),
                      history, responses, position / self._max_position,
                      pool], axis=-1)

  def get_config(self):
    # TF-Agents' encoding networks copy their combiner through its config.
    return dict(super().get_config(), track_features=self._track_features,
                num_levels=self._num_levels, max_position=self._max_position)


def create_ppo_agent(time_step_spec: ts.TimeStep,
                     action_spec: types.NestedTensorSpec,
                     track_features: np.ndarray,
                     optimizer: tf.keras.optimizers.Optimizer,
                     actor_layers: Sequence[int] = (128, 64),
                     value_layers: Sequence[int] = (128, 64),
                     num_epochs: int = 10,
                     discount_factor: float = 0.9,
                     importance_ratio_clipping: float = 0.2,
                     entropy_regularization: float = 0.0,
                     lambda_value: float = 0.95,
                     gradient_clipping: float | None = 0.5,
                     train_step_counter: tf.Variable | None = None
                     ) -> ppo_clip_agent.PPOClipAgent:
  """A PPO-clip agent whose action is a point in track-feature space.

  Args:
    time_step_spec: the environment's time step spec (tensor specs).
    action_spec: the continuous action spec ([F] within the feature bounds).
    track_features: float [N, F] catalog feature table.
    optimizer: the optimizer.
    actor_layers: hidden units of the actor MLP.
    value_layers: hidden units of the value MLP.
    num_epochs: passes over each batch of collected episodes.
    discount_factor: discount.
    importance_ratio_clipping: PPO's clip epsilon.
    entropy_regularization: entropy bonus weight.
    lambda_value: GAE lambda.
    gradient_clipping: global-norm clip, or None.
    train_step_counter: the global step (incremented once per epoch).

  Returns:
    An initialised agent.

  Raises:
    ValueError: for a discrete action spec or an observation spec without
      the playlist keys.
  """
  observation_spec = time_step_spec.observation
  missing = [k for k in OBSERVATION_KEYS if k not in observation_spec]
  if missing:
    raise ValueError(f"the observation spec lacks {missing}")
  if not action_spec.dtype.is_floating:
    raise ValueError("PPO needs a continuous action spec "
                     "(EnvironmentBuilder.track_sampler = "
                     f"@ContinuousTrackSampler()); got {action_spec}")

  def features():
    return SessionStateFeatures(
        track_features,
        int(np.max(observation_spec["history_responses"].maximum)) + 1,
        float(np.max(observation_spec["position"].maximum)))
  actor_net = actor_distribution_network.ActorDistributionNetwork(
      observation_spec, action_spec, preprocessing_combiner=features(),
      fc_layer_params=tuple(actor_layers),
      activation_fn=tf.keras.activations.tanh)
  value_net = value_network.ValueNetwork(
      observation_spec, preprocessing_combiner=features(),
      fc_layer_params=tuple(value_layers),
      activation_fn=tf.keras.activations.tanh)
  agent = ppo_clip_agent.PPOClipAgent(
      time_step_spec, action_spec, optimizer, actor_net=actor_net,
      value_net=value_net, importance_ratio_clipping=importance_ratio_clipping,
      discount_factor=discount_factor,
      entropy_regularization=entropy_regularization,
      lambda_value=lambda_value, normalize_observations=False,
      normalize_rewards=False, use_gae=True, num_epochs=num_epochs,
      gradient_clipping=gradient_clipping,
      train_step_counter=train_step_counter, name="ppo")
  agent.initialize()
  return agent


@gin.configurable(denylist=["root_dir"])
def train_ppo(root_dir: str,
              num_iterations: int = 200,
              seed: int = 0,
              env_batch_size: int = 256,
              eval_batch_size: int = 250,
              eval_common_random_numbers: bool = True,
              eval_interval: int = 20,
              num_eval_episodes: int = 500,
              final_eval_episodes: int = 2000,
              baselines: Sequence[str] = ("random",),
              checkpoint_interval: int = 20,
              progress: bool = True,
              collect_episodes_per_iteration: int | None = None,
              max_steps_per_row: int = 256,
              learning_rate: float = 3e-4,
              actor_layers: Sequence[int] = (128, 64),
              value_layers: Sequence[int] = (128, 64),
              num_epochs: int = 10,
              discount_factor: float = 0.9,
              importance_ratio_clipping: float = 0.2,
              entropy_regularization: float = 0.0,
              lambda_value: float = 0.95,
              gradient_clipping: float | None = 0.5) -> dict:
  """Trains PPO on-policy, evaluates it, and writes the run's outputs.

  Called by `train_eval(agent_name='ppo')`, which passes its shared
  arguments (iterations, seed, environments, evaluation, baselines); the
  PPO-specific ones are bound as `train_ppo.<name>` in gin.

  Args:
    root_dir: output folder; resumes from root_dir/checkpoint if present.
    num_iterations: collect-and-train iterations in total.
    seed: seed of the environments and the networks.
    env_batch_size: listeners in the training environment.
    eval_batch_size: listeners in the evaluation environment.
    eval_common_random_numbers: evaluate with common random numbers.
    eval_interval: iterations between evaluations.
    num_eval_episodes: episodes per periodic evaluation.
    final_eval_episodes: episodes of the final evaluation and baselines.
    baselines: baselines of the final comparison (see `agents.comparison`;
      only those that take a continuous action, i.e. "random").
    checkpoint_interval: iterations between checkpoints.
    progress: show a progress bar.
    collect_episodes_per_iteration: episodes collected per iteration
      (default env_batch_size).
    max_steps_per_row: replay buffer length per environment row; must hold
      one iteration's steps of a row.
    learning_rate: Adam learning rate.
    actor_layers: see `create_ppo_agent`.
    value_layers: see `create_ppo_agent`.
    num_epochs: see `create_ppo_agent`.
    discount_factor: see `create_ppo_agent`.
    importance_ratio_clipping: see `create_ppo_agent`.
    entropy_regularization: see `create_ppo_agent`.
    lambda_value: see `create_ppo_agent`.
    gradient_clipping: see `create_ppo_agent`.

  Returns:
    The metrics written to root_dir/metrics.json.
  """
  root_dir = ensure_writable_dir(root_dir)
  tf.keras.utils.set_random_seed(seed)
  train_py_env = make_env("train", env_batch_size, seed)
  if not getattr(train_py_env.environment.track_sampler, "clip_actions",
                 False):
    raise ValueError(
        "PPO's policies sample actions without clipping them to the action "
        "spec, which the environment refuses: set "
        "ContinuousTrackSampler.clip_actions = True (as configs/ppo.gin does)")
  evaluation = RunEvaluation(train_py_env.environment.user_model,
                             eval_batch_size, seed,
                             eval_common_random_numbers)
  train_env = tf_py_environment.TFPyEnvironment(train_py_env)
  global_step = tf.Variable(0, dtype=tf.int64, trainable=False,
                            name="global_step")
  agent = create_ppo_agent(
      train_env.time_step_spec(), train_env.action_spec(),
      train_py_env.environment.catalog.features,
      tf.keras.optimizers.Adam(learning_rate=learning_rate),
      actor_layers=actor_layers, value_layers=value_layers,
      num_epochs=num_epochs, discount_factor=discount_factor,
      importance_ratio_clipping=importance_ratio_clipping,
      entropy_regularization=entropy_regularization,
      lambda_value=lambda_value, gradient_clipping=gradient_clipping,
      train_step_counter=global_step)
  replay_buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
      agent.collect_data_spec, batch_size=train_env.batch_size,
      max_length=max_steps_per_row)
  train_metrics = [tf_metrics.NumberOfEpisodes(), tf_metrics.EnvironmentSteps(),
                   tf_metrics.AverageReturnMetric(
                       batch_size=train_env.batch_size, buffer_size=100)]
  # As train_eval's: the environment's generator state and a fingerprint
  # live in the checkpoint; another run's checkpoint is refused.
  checkpointer = RunCheckpointer(
      os.path.join(root_dir, "checkpoint"), seed=seed, max_to_keep=1,
      generators=environment_generators(train_py_env.environment, seed),
      fingerprint={"agent": "ppo"},
      agent=agent, policy=agent.policy, global_step=global_step,
      metrics=metric_utils.MetricsGroup(train_metrics, "train_metrics"))
  resumed_from = checkpointer.restore() // num_epochs

  collect = common.function(dynamic_episode_driver.DynamicEpisodeDriver(
      train_env, agent.collect_policy,
      observers=[replay_buffer.add_batch] + train_metrics,
      num_episodes=collect_episodes_per_iteration or env_batch_size).run)

  @common.function
  def train_step():
    return agent.train(replay_buffer.gather_all())

  train_writer = tf.summary.create_file_writer(os.path.join(root_dir, "train"))
  evaluation.attach(agent.policy, os.path.join(root_dir, "eval"),
                    global_step)

  curve, loss = [], float("nan")
  env_steps_start = int(train_metrics[1].result().numpy())
  start = time.perf_counter()
  time_step = policy_state = None
  bar = tqdm(total=num_iterations, initial=resumed_from, unit="iter",
             disable=not progress, desc="ppo", dynamic_ncols=True)
  for iteration in range(resumed_from + 1, num_iterations + 1):
    time_step, policy_state = collect(time_step=time_step,
                                      policy_state=policy_state)
    loss = float(train_step().loss.numpy())
    replay_buffer.clear()
    bar.update(1)
    with train_writer.as_default():
      tf.summary.scalar("loss", loss, step=global_step)
      for metric in train_metrics:
        tf.summary.scalar(f"Metrics/{metric.name}", metric.result(),
                          step=global_step)
    if iteration % eval_interval == 0 or iteration == num_iterations:
      curve.append((iteration, round(time.perf_counter() - start, 1),
                    float(evaluation.evaluate(num_eval_episodes).mean())))
      bar.set_postfix(loss=f"{loss:.3f}", eval_return=f"{curve[-1][2]:.2f}")
    if iteration % checkpoint_interval == 0:
      checkpointer.save(global_step=global_step)
  bar.close()
  seconds = time.perf_counter() - start
  trained = max(num_iterations - resumed_from, 0)
  env_steps = int(train_metrics[1].result().numpy()) - env_steps_start
  checkpointer.save(global_step=global_step)
  export_policy(agent, os.path.join(root_dir, "policy"), global_step)
  comparison = evaluation.compare("ppo", baselines, final_eval_episodes)
  metrics = run_metrics("ppo", comparison, curve, loss if trained else None,
                        env_steps, seconds, final_eval_episodes)
  if evaluation.split_warning:
    metrics["split_warning"] = evaluation.split_warning
  metrics.update(
      global_step=int(global_step.numpy()),
      iterations=max(num_iterations, resumed_from),
      resumed_from_iteration=resumed_from,
      resume_history=checkpointer.resumed_from_steps,
      train_iterations=trained,
      iterations_per_s=trained / max(seconds, 1e-9))
  write_run_files(root_dir, metrics)
  train_py_env.close()
  return metrics
