"""Train and evaluate a playlist agent (AH-DQN, DQN or PPO) in gin-built worlds.

    train_eval(root_dir)   # with configs/ahdqn.gin parsed

The training and evaluation environments are built by
`simulator.EnvironmentBuilder` inside the gin scopes `train` and `eval`, so a
config trains in a learned simulator and evaluates in the listener world
(configs/ahdqn.gin does, with the int8 CWM):

    train/EnvironmentBuilder.user_model = @LiteRTUserModel()
    LogEpisodeSampler.split_by = 'user'   # train on some users, evaluate
    eval/LogEpisodeSampler.split = 'test' # on the others

Training runs in the one run loop of `agents.run_loop`; AH-DQN and DQN
supply its collect and train steps from `agents.q_learning` (epsilon-greedy
collection into a replay buffer, n-step gradient steps), PPO
(agent_name='ppo') from `agents.ppo.train_ppo` (on-policy). Every
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
  and a comparison with the baselines on the same held-out episodes (mean returns
  with bootstrap 95% intervals, and the paired difference to each, see
  `playlist_sim.evaluation.comparison`);
* operative_config.gin, config.gin.
"""

import types
from typing import Sequence

import gin

from agents.export import export_policy
from agents.ppo import train_ppo
from agents.q_learning import check_q_learning_arguments, q_learning_steps
from agents.run_loop import LoopSettings, run_agent

# export_policy: re-exported, callers import it from here.
__all__ = ["AGENTS", "export_policy", "train_eval"]

AGENTS = ("ahdqn", "dqn", "ppo")


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
    collect_workers: int = 0,
    ray_address: str | None = None,
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
      (`playlist_sim.policies.score_features`; the world is scored by the learned model,
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
    collect_workers: W > 0 collects with W Ray workers, each with its own
      environment of env_batch_size listeners (AH-DQN only; see
      `agents.q_learning`); 0 collects in this process.
    ray_address: the Ray cluster of the workers (None: a local Ray on
      127.0.0.1, cleaned up at the end).
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
      `playlist_sim.evaluation.comparison`): names from `agents.BASELINES`,
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
    ValueError: for an unknown agent name, no train step per iteration, or
      too few steps collected before the first n-step sample.
    ConfigChangeError: resuming with another operative config (the message
      lists the differing bindings), unless `allow_config_change`.
    UserModelLoadError: if a scope's user model files are missing (the
      message gives the commands that make them).
  """
  arguments = dict(locals())  # Before any other local: the run's arguments.
  if agent_name not in AGENTS:
    raise ValueError(f"unknown agent {agent_name!r}; choose one of {AGENTS}")
  if agent_name == "ppo":  # On-policy: its own collect and train steps.
    return train_ppo(
        root_dir, num_iterations=num_iterations, seed=seed,
        env_batch_size=env_batch_size, eval_batch_size=eval_batch_size,
        eval_common_random_numbers=eval_common_random_numbers,
        eval_interval=eval_interval, num_eval_episodes=num_eval_episodes,
        final_eval_episodes=final_eval_episodes, baselines=baselines,
        checkpoint_interval=checkpoint_interval, progress=progress,
        allow_config_change=allow_config_change)
  settings = LoopSettings(
      num_iterations=num_iterations, seed=seed, env_batch_size=env_batch_size,
      eval_batch_size=eval_batch_size,
      eval_common_random_numbers=eval_common_random_numbers,
      user_model_scores=user_model_scores, eval_interval=eval_interval,
      num_eval_episodes=num_eval_episodes,
      final_eval_episodes=final_eval_episodes, baselines=tuple(baselines),
      checkpoint_interval=checkpoint_interval,
      summary_interval=summary_interval, progress=progress,
      collect_batch_size=collect_workers * env_batch_size or None,
      entry_point="train_eval", arguments=arguments,
      allow_config_change=allow_config_change)
  hyperparameters = types.SimpleNamespace(**arguments)
  check_q_learning_arguments(hyperparameters)  # Before anything is built.
  return run_agent(root_dir, agent_name, settings,
                   lambda envs: q_learning_steps(envs, hyperparameters))
