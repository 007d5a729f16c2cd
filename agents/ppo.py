"""PPO in the continuous action space: a point in track-feature space.

The published work also trained 'vanilla' policy-gradient agents. Here the
action is a vector of the catalog's track features (the environment's
`simulator.ContinuousTrackSampler` places the nearest unplayed candidate), so
the continuous path of the simulator is exercised by a real learner:

* `create_ppo_agent`: TF-Agents' `PPOClipAgent` with an
  `ActorDistributionNetwork` (a Gaussian squashed into the feature bounds)
  and a `ValueNetwork`, both over `SessionStateFeatures` of the observation;
* `ppo_steps`: the on-policy steps of TF-Agents' PPO example (collect full
  episodes into a `TFUniformReplayBuffer`, train on all of it, clear it);
* `train_ppo`: runs them in the run loop every agent shares
  (`agents.run_loop`: the same environments, gin scopes `train` and `eval`,
  evaluation, checkpoint/resume with metrics carried across resumes and a
  changed config refused, policy export, baselines and outputs as
  `agents.train_eval.train_eval`, which calls it for agent_name='ppo').

configs/ppo.gin binds `EnvironmentBuilder.track_sampler =
@ContinuousTrackSampler()`; baselines that pick pool slots (popularity,
cosine, greedy) cannot run in that environment: compare them from an AH-DQN
run on the same held-out episodes (same eval seed, common random numbers).
"""

from types import SimpleNamespace
from typing import Sequence

import gin
import numpy as np
import tensorflow as tf
from tf_agents.agents.ppo import ppo_clip_agent
from tf_agents.drivers import dynamic_episode_driver
from tf_agents.networks import actor_distribution_network
from tf_agents.networks import value_network
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.trajectories import time_step as ts
from tf_agents.typing import types
from tf_agents.utils import common

from agents.networks import OBSERVATION_KEYS
from agents.run_loop import ITERATION_COUNTERS, AgentSteps, LoopSettings
from agents.run_loop import RunEnvironments, run_agent

__all__ = ["SessionStateFeatures", "create_ppo_agent", "ppo_steps",
           "train_ppo"]


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


@gin.configurable(denylist=["root_dir", "allow_config_change"])
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
              gradient_clipping: float | None = 0.5,
              allow_config_change: bool = False) -> dict:
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
    baselines: baselines of the final comparison (see `playlist_sim.evaluation.comparison`;
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
    allow_config_change: resume a checkpoint even if the operative config
      (gin bindings and these arguments) differs from the one it was trained
      with.

  Returns:
    The metrics written to root_dir/metrics.json (the evaluation curve's
    rows are [iteration, seconds, mean return]; curve, loss history,
    environment steps and wall time cover the whole run across resumes).

  Raises:
    ValueError: if the continuous sampler does not clip actions.
    ConfigChangeError: resuming with another operative config (the message
      lists the differing bindings), unless `allow_config_change`.
  """
  arguments = dict(locals())  # Before any other local: the run's arguments.
  settings = LoopSettings(
      num_iterations=num_iterations, seed=seed, env_batch_size=env_batch_size,
      eval_batch_size=eval_batch_size,
      eval_common_random_numbers=eval_common_random_numbers,
      eval_interval=eval_interval, num_eval_episodes=num_eval_episodes,
      final_eval_episodes=final_eval_episodes, baselines=tuple(baselines),
      checkpoint_interval=checkpoint_interval, summary_interval=1,
      progress=progress, entry_point="train_ppo", arguments=arguments,
      allow_config_change=allow_config_change)
  hyperparameters = SimpleNamespace(**arguments)
  return run_agent(root_dir, "ppo", settings,
                   lambda envs: ppo_steps(envs, hyperparameters))


def ppo_steps(envs: RunEnvironments, hp: SimpleNamespace) -> AgentSteps:
  """PPO's collect (full episodes) and train (all of them, then clear) steps.

  Args:
    envs: the run's environments, step variable and train metrics.
    hp: `train_ppo`'s arguments.

  Returns:
    The steps the run loop calls; progress is counted in iterations (the
    agent's step counter advances once per epoch).

  Raises:
    ValueError: if the continuous sampler does not clip actions.
  """
  if not getattr(envs.py_env.environment.track_sampler, "clip_actions",
                 False):
    raise ValueError(
        "PPO's policies sample actions without clipping them to the action "
        "spec, which the environment refuses: set "
        "ContinuousTrackSampler.clip_actions = True (as configs/ppo.gin does)")
  tf_env = envs.tf_env
  agent = create_ppo_agent(
      tf_env.time_step_spec(), tf_env.action_spec(),
      envs.py_env.environment.catalog.features,
      tf.keras.optimizers.Adam(learning_rate=hp.learning_rate),
      actor_layers=hp.actor_layers, value_layers=hp.value_layers,
      num_epochs=hp.num_epochs, discount_factor=hp.discount_factor,
      importance_ratio_clipping=hp.importance_ratio_clipping,
      entropy_regularization=hp.entropy_regularization,
      lambda_value=hp.lambda_value, gradient_clipping=hp.gradient_clipping,
      train_step_counter=envs.global_step)
  replay_buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
      agent.collect_data_spec, batch_size=tf_env.batch_size,
      max_length=hp.max_steps_per_row)
  collect_run = common.function(dynamic_episode_driver.DynamicEpisodeDriver(
      tf_env, agent.collect_policy,
      observers=[replay_buffer.add_batch] + envs.train_metrics,
      num_episodes=hp.collect_episodes_per_iteration or hp.env_batch_size).run)
  carried = {"time_step": None, "policy_state": None}

  def collect() -> None:
    carried["time_step"], carried["policy_state"] = collect_run(**carried)

  @common.function
  def train_step():
    return agent.train(replay_buffer.gather_all())

  def train(remaining: int) -> float:
    del remaining  # One iteration is one unit of progress.
    loss = float(train_step().loss.numpy())
    replay_buffer.clear()  # On-policy: the next iteration collects afresh.
    return loss

  return AgentSteps(
      agent=agent, collect=collect, train=train,
      progress=lambda: int(envs.global_step.numpy()) // hp.num_epochs,
      counters=ITERATION_COUNTERS, unit="iter")
