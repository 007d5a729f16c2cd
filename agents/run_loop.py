"""One run loop for every agent: the algorithms supply collect and train.

    metrics = run_agent(root_dir, "ahdqn", settings, build_steps)

`run_agent` is the skeleton that AH-DQN, DQN (`agents.train_eval`) and PPO
(`agents.ppo`) share, the shape of Dopamine's Runner: it builds the
environments (gin scopes `train`, `eval`), asks the algorithm for its
`AgentSteps` (the agent, one iteration's collect, one iteration's train),
then owns everything else:

* checkpoint and resume (`agents.checkpointing.RunCheckpointer`): weights,
  optimizer, step, train metrics, the algorithm's own state (a replay
  buffer), the environment's generator, and the run's bookkeeping, so the
  learning curve, loss history and wall time of `metrics.json` cover the
  whole run across resumes; a resume with another operative config is
  refused unless `allow_config_change`;
* TensorBoard summaries (root_dir/train, root_dir/eval), periodic evaluation
  with common random numbers, the policy export (root_dir/policy), the
  comparison with baselines and metrics.json.

Progress is counted in the algorithm's unit (train steps for DQN, iterations
for PPO); `num_iterations` is the count the run ends at. The run folder's
lock and manifest (run.json) belong to the command that calls the loop
(`playlist_sim.runner`): a Python caller owns its folder itself.
"""

import dataclasses
import os
import time
from typing import Any, Callable, Mapping, Sequence

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.environments import tf_py_environment
from tf_agents.eval import metric_utils
from tf_agents.metrics import tf_metrics
from tqdm.auto import tqdm

from agents.checkpointing import RunCheckpointer, environment_generators
from playlist_sim.evaluation.comparison import run_metrics
from agents.environments import RunEvaluation, make_env, scored_env
from agents.run_record import RunRecord
from agents.export import export_policy, recover_interrupted_export
from playlist_sim.common.io_utils import ensure_writable_dir
from playlist_sim.common.runs import operative_bindings, write_run_files

__all__ = ["AgentSteps", "CounterKeys", "ITERATION_COUNTERS", "LoopSettings",
           "RunEnvironments", "STEP_COUNTERS", "build_environments",
           "run_agent", "run_config"]

# Arguments that change how a run is shown or guarded, not what it computes.
_NOT_CONFIG = ("root_dir", "progress", "allow_config_change", "ray_address")


def run_config(function_name: str,
               arguments: Mapping[str, Any]) -> dict[str, str]:
  """The operative config a resume must share: gin's, and the arguments.

  Arguments passed in Python never reach gin's operative config, so they
  are added as `function_name.argument` bindings.

  Args:
    function_name: the entry point's gin name ("train_eval", "train_ppo").
    arguments: its arguments, name -> value.

  Returns:
    Binding -> value text.
  """
  config = operative_bindings()
  config.update({f"{function_name}.{k}": repr(v) for k, v in arguments.items()
                 if k not in _NOT_CONFIG})
  return config


@dataclasses.dataclass(frozen=True)
class CounterKeys:
  """The metrics.json keys of the progress counters (they name the unit).

  Attributes:
    resumed_from: progress the run was resumed from in this process.
    total: progress of the whole run.
    this_process: progress made by this process.
    rate: progress per second of the whole run's wall time.
  """
  resumed_from: str
  total: str
  this_process: str
  rate: str


STEP_COUNTERS = CounterKeys("resumed_from_step", "train_steps",
                            "train_steps_this_process", "train_steps_per_s")
ITERATION_COUNTERS = CounterKeys("resumed_from_iteration", "iterations",
                                 "train_iterations", "iterations_per_s")


@dataclasses.dataclass(frozen=True)
class LoopSettings:
  """What the loop needs besides the algorithm (see `train_eval`'s Args).

  Attributes:
    num_iterations: progress (in the algorithm's unit) the run ends at.
    seed: seed of the environments, the networks and the exploration.
    env_batch_size: listeners in the training environment.
    eval_batch_size: listeners in the evaluation environment.
    eval_common_random_numbers: evaluate on the same episodes every time.
    user_model_scores: observations carry the training user model's
      P(listen) of each candidate in both worlds.
    eval_interval: progress between evaluations.
    num_eval_episodes: episodes per periodic evaluation.
    final_eval_episodes: episodes of the final evaluation and baselines.
    baselines: baselines of the final comparison.
    checkpoint_interval: progress between checkpoints.
    summary_interval: progress between training summaries.
    progress: show a progress bar.
    collect_batch_size: rows of the collected experience when the algorithm
      collects elsewhere than in the training environment (remote workers);
      None: the training environment's batch size.
    entry_point: the gin name of the function the run was started by
      ("train_eval", "train_ppo").
    arguments: its arguments; with gin's operative config once the
      environments are built (the world's bindings included), they are the
      config a resume is compared with (`run_config`).
    allow_config_change: resume even if that config differs.
  """
  num_iterations: int
  seed: int
  env_batch_size: int
  eval_batch_size: int
  eval_common_random_numbers: bool
  eval_interval: int
  num_eval_episodes: int
  final_eval_episodes: int
  baselines: Sequence[str]
  checkpoint_interval: int
  summary_interval: int = 1
  user_model_scores: bool = False
  progress: bool = True
  collect_batch_size: int | None = None
  entry_point: str = "train_eval"
  arguments: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  allow_config_change: bool = False


@dataclasses.dataclass
class RunEnvironments:
  """What the loop builds before the algorithm: environments and counters.

  Attributes:
    py_env: the training PyEnvironment (with the score wrapper if used).
    tf_env: the same as a `TFPyEnvironment`.
    evaluation: the evaluation side of the run.
    scorer: the user model scoring candidates in the observations, or None.
    global_step: the run's step variable (the agent's train step counter).
    train_metrics: episodes, environment steps and average return; the
      algorithm's collection must observe them.
  """
  py_env: Any
  tf_env: tf_py_environment.TFPyEnvironment
  evaluation: RunEvaluation
  scorer: Any
  global_step: tf.Variable
  train_metrics: list


@dataclasses.dataclass
class AgentSteps:
  """What an algorithm supplies to the loop.

  Attributes:
    agent: the TF-Agents agent (its `policy` is evaluated and exported).
    collect: collects one iteration's experience.
    train: trains one iteration, given the progress left before the run's
      end (never 0); returns the last loss.
    progress: the run's progress, read from the agent's state.
    checkpointed: further objects the checkpoints carry (a replay buffer).
    after_restore: called once after the checkpoint is restored (fills an
      empty replay buffer, for example).
    summaries: extra training scalars, name -> value (epsilon, say).
    counters: the metrics.json names of the progress counters.
    unit: the progress bar's unit.
    close: releases what the steps hold (remote workers), after training
      or on an error.
  """
  agent: tf_agent.TFAgent
  collect: Callable[[], None]
  train: Callable[[int], float]
  progress: Callable[[], int]
  checkpointed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  after_restore: Callable[[], None] | None = None
  summaries: Callable[[], Mapping[str, Any]] | None = None
  counters: CounterKeys = STEP_COUNTERS
  unit: str = "step"
  close: Callable[[], None] | None = None


def build_environments(settings: LoopSettings) -> RunEnvironments:
  """The training environment, the evaluation and the run's counters.

  Args:
    settings: the loop's settings (batch sizes, seed, scores).

  Returns:
    What the algorithm's steps are built from.
  """
  py_env = make_env("train", settings.env_batch_size, settings.seed)
  scorer = py_env.environment.user_model if settings.user_model_scores else None
  if scorer is not None:  # The same learned model scores in both worlds.
    py_env = scored_env(py_env, scorer)
  evaluation = RunEvaluation(py_env.environment.user_model,
                             settings.eval_batch_size, settings.seed,
                             settings.eval_common_random_numbers, scorer)
  tf_env = tf_py_environment.TFPyEnvironment(py_env)
  # A fresh variable, not the graph-collection global step, so that two runs
  # in one process do not share it.
  global_step = tf.Variable(0, dtype=tf.int64, trainable=False,
                            name="global_step")
  train_metrics = [
      tf_metrics.NumberOfEpisodes(),
      tf_metrics.EnvironmentSteps(),
      tf_metrics.AverageReturnMetric(
          batch_size=settings.collect_batch_size or tf_env.batch_size,
          buffer_size=100),
  ]
  return RunEnvironments(py_env, tf_env, evaluation, scorer, global_step,
                         train_metrics)


def _crossed(interval: int, previous: int, step: int, end: int) -> bool:
  # Several train steps per iteration can jump over a multiple.
  return step // max(interval, 1) > previous // max(interval, 1) or step >= end


def _summarise(writer, loss: float, steps: AgentSteps,
               envs: RunEnvironments) -> None:
  with writer.as_default():
    tf.summary.scalar("loss", loss, step=envs.global_step)
    for name, value in (steps.summaries() if steps.summaries else {}).items():
      tf.summary.scalar(name, value, step=envs.global_step)
    for metric in envs.train_metrics:
      tf.summary.scalar(f"Metrics/{metric.name}", metric.result(),
                        step=envs.global_step)


def _train(settings: LoopSettings, steps: AgentSteps, envs: RunEnvironments,
           checkpointer: RunCheckpointer, record: RunRecord, writer,
           name: str) -> None:
  """Collects and trains until the run's end, evaluating and saving."""
  end = settings.num_iterations
  step = steps.progress()
  bar = tqdm(total=end, initial=min(step, end), unit=steps.unit,
             disable=not settings.progress, desc=name, dynamic_ncols=True)
  while step < end:
    with record.timed("collect"):
      steps.collect()
    with record.timed("train"):
      loss = float(steps.train(end - step))
    previous, step = step, steps.progress()
    bar.update(step - previous)
    if _crossed(settings.summary_interval, previous, step, end):
      with record.timed("summaries"):
        record.loss_history.append([step, loss])
        _summarise(writer, loss, steps, envs)
    if _crossed(settings.eval_interval, previous, step, end):
      seconds_before = record.seconds()
      with record.timed("evaluation"):
        returns = envs.evaluation.evaluate(settings.num_eval_episodes)
      mean = record.add_evaluation(step, returns, seconds_before)
      bar.set_postfix(loss=f"{loss:.3f}", eval_return=f"{mean:.2f}")
    if _crossed(settings.checkpoint_interval, previous, step, end):
      with record.timed("checkpoint"):
        checkpointer.save(global_step=envs.global_step,
                          run_state=record.state())
  bar.close()


def _final_metrics(name: str, settings: LoopSettings, steps: AgentSteps,
                   envs: RunEnvironments, checkpointer: RunCheckpointer,
                   record: RunRecord, resumed_from: int) -> dict:
  """Compares the policy with the baselines; the metrics of the whole run."""
  seconds = record.seconds()
  started = time.perf_counter()
  comparison = envs.evaluation.compare(name, settings.baselines,
                                       settings.final_eval_episodes)
  comparison_seconds = time.perf_counter() - started
  final_loss = record.loss_history[-1][1] if record.loss_history else None
  # The environment-step metric is checkpointed: the whole run's count.
  env_steps = int(envs.train_metrics[1].result().numpy())
  metrics = run_metrics(name, comparison, record.curve, final_loss,
                        env_steps, seconds, settings.final_eval_episodes)
  if envs.evaluation.split_warning:
    metrics["split_warning"] = envs.evaluation.split_warning
  done = steps.progress()
  keys = steps.counters
  metrics.update({
      "global_step": int(envs.global_step.numpy()),
      "loss_history": record.loss_history,
      "resume_history": checkpointer.resumed_from_steps,
      keys.resumed_from: resumed_from,
      keys.total: done,
      keys.this_process: done - resumed_from,
      keys.rate: done / max(seconds, 1e-9),
      # Where this process's time went, beside the training loop's phases
      # (the whole run's): the final comparison is not training time.
      "loop_seconds": {k: round(v, 3)
                       for k, v in record.phase_seconds.items()},
      "final_comparison_s": round(comparison_seconds, 3),
  })
  return metrics


def _train_with_checkpoints(root_dir: str, name: str, settings: LoopSettings,
                           envs: RunEnvironments, steps: AgentSteps,
                           setup_started: float
                           ) -> tuple[RunCheckpointer, RunRecord, int]:
  """Restores the run, trains it to its end and saves the last checkpoint.

  Returns:
    The checkpointer, the run's bookkeeping, and the progress resumed from.
  """
  # Resumes weights, optimizer, step, the algorithm's state and the training
  # environment's generator; refuses another run's checkpoint.
  checkpointer = RunCheckpointer(
      os.path.join(root_dir, "checkpoint"), seed=settings.seed, max_to_keep=1,
      generators=environment_generators(envs.py_env.environment,
                                        settings.seed),
      fingerprint={"agent": name},
      # After the environments and the agent: their bindings are operative.
      config=run_config(settings.entry_point, settings.arguments),
      allow_config_change=settings.allow_config_change,
      agent=steps.agent, policy=steps.agent.policy,
      global_step=envs.global_step,
      metrics=metric_utils.MetricsGroup(envs.train_metrics, "train_metrics"),
      **steps.checkpointed)
  checkpointer.restore()
  resumed_from = steps.progress()
  if steps.after_restore is not None:
    steps.after_restore()
  writer = tf.summary.create_file_writer(os.path.join(root_dir, "train"))
  envs.evaluation.attach(steps.agent.policy, os.path.join(root_dir, "eval"),
                         envs.global_step)
  record = RunRecord(checkpointer.run_state, root_dir)
  record.setup_seconds = time.perf_counter() - setup_started
  _train(settings, steps, envs, checkpointer, record, writer, name)
  record.stop()
  checkpointer.save(global_step=envs.global_step, run_state=record.state())
  return checkpointer, record, resumed_from


def run_agent(root_dir: str, name: str, settings: LoopSettings,
              build_steps: Callable[[RunEnvironments], AgentSteps]) -> dict:
  """Trains an agent, evaluates it, and writes the run's outputs.

  Args:
    root_dir: output folder; resumes from root_dir/checkpoint if present.
    name: the agent's name (in the checkpoint's fingerprint and the
      metrics).
    settings: the loop's settings.
    build_steps: makes the algorithm's `AgentSteps` from the environments.

  Returns:
    The metrics written to root_dir/metrics.json.

  Raises:
    CheckpointError: root_dir holds another run's checkpoint.
    ConfigChangeError: resuming with another operative config, unless
      `settings.allow_config_change` (the message lists the bindings).
    UserModelLoadError: a scope's user model files are missing.
  """
  setup_started = time.perf_counter()
  root_dir = ensure_writable_dir(root_dir)
  # A kill in the middle of the last run's export leaves policy.old only.
  recover_interrupted_export(os.path.join(root_dir, "policy"))
  tf.keras.utils.set_random_seed(settings.seed)
  envs = build_environments(settings)
  steps = build_steps(envs)
  try:
    checkpointer, record, resumed_from = _train_with_checkpoints(
        root_dir, name, settings, envs, steps, setup_started)
  finally:
    if steps.close is not None:
      steps.close()
  export_started = time.perf_counter()
  export_policy(steps.agent, os.path.join(root_dir, "policy"),
                envs.global_step, scorer=envs.scorer,
                lookahead_shortlist=getattr(envs.py_env, "lookahead_shortlist",
                                            None))
  export_seconds = time.perf_counter() - export_started
  metrics = _final_metrics(name, settings, steps, envs, checkpointer, record,
                           resumed_from)
  # Building the environments, the agent, restoring and filling the replay
  # buffer: before the training clock starts.
  metrics["setup_s"] = round(record.setup_seconds, 3)
  metrics["export_s"] = round(export_seconds, 3)
  write_run_files(root_dir, metrics)
  envs.py_env.close()
  return metrics
