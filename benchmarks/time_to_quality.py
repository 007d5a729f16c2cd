"""Time to quality: wall seconds until AH-DQN beats greedy-by-model.

    python scripts/benchmark.py --root_dir runs/bench --only time_to_quality \
        --ttq_world_dir runs

trains the agent config (`configs/ahdqn.gin`, whatever it is when this runs)
from existing learned-simulator files: `<world>/logs/{sessions,tracks}.
parquet` and `<world>/quantized_users/user_model.int8.tflite` (the layout of
the agent config's prerequisites; the world's seed is read from the logs'
operative config). Every `--ttq_eval_interval` train steps the run loop
evaluates the greedy policy on the same `--ttq_eval_episodes` held-out
episodes of the listener world (common random numbers) and writes their
returns (`agents.run_record`); afterwards greedy-by-the-same-model and the
world's greedy and lookahead oracles run on those very episodes. Each point
of the learning curve is then judged against the bar of
`benchmarks.quality_bar`, and `time_to_quality_s` is the first point's wall
time that clears it, if the run's final comparison (its own, usually more,
episodes) confirms it; otherwise null, with the reason.

Wall time of a point: the setup (environments, agent, the first replay
fill) plus the training loop's clock up to that policy, without the time
the periodic evaluations took (they are this benchmark's measurement, denser
than a training run needs; `wall_with_evaluations_s` keeps them). The
figure is noisy on a shared machine: the load average is recorded beside it.
"""

import inspect
import os
import re
import shutil
import time

import gin
import numpy as np

from agents.environments import RunEvaluation, scoped_builder
from agents.run_record import read_episode_returns
from agents.train_eval import train_eval
from benchmarks.quality_bar import REFERENCES, assess_curve
from benchmarks.quality_plot import plot_curve
from playlist_sim.common.runs import isolated_gin_config, parse_gin
from playlist_sim.evaluation.comparison import baseline_policies
from playlist_sim.evaluation.comparison import compare_policies

__all__ = ["run_time_to_quality", "world_bindings"]

_WORLD_SEED = re.compile(r"^(?:\S+/)?SyntheticWorld\.seed\s*=\s*(\d+)\s*$",
                         re.MULTILINE)


def world_bindings(world_dir: str) -> list[str]:
  """The gin bindings that point the agent config at a built world.

  Args:
    world_dir: a folder with logs/ (from generate_logs) and
      quantized_users/ (from quantize_user_model).

  Returns:
    Bindings of SESSIONS, TRACKS, USER_MODEL_PATH and the world's seed.

  Raises:
    FileNotFoundError: a file is missing (the message names the command
      that makes it).
  """
  files = {
      "SESSIONS": os.path.join(world_dir, "logs", "sessions.parquet"),
      "TRACKS": os.path.join(world_dir, "logs", "tracks.parquet"),
      "USER_MODEL_PATH": os.path.join(world_dir, "quantized_users",
                                      "user_model.int8.tflite")}
  for name, path in files.items():
    if not os.path.isfile(path):
      raise FileNotFoundError(
          f"--ttq_world_dir {world_dir}: no {path} ({name}). Build the world "
          "first: scripts/generate_logs.py, train_user_model.py and "
          "quantize_user_model.py into <world>/logs, <world>/cwm_users and "
          "<world>/quantized_users (see configs/ahdqn.gin)")
  bindings = [f"{name} = {path!r}" for name, path in files.items()]
  operative = os.path.join(world_dir, "logs", "operative_config.gin")
  if os.path.isfile(operative):
    with open(operative, encoding="utf-8") as f:
      found = _WORLD_SEED.search(f.read())
    if found:  # The listener world the logs came from.
      bindings.append(f"SyntheticWorld.seed = {int(found.group(1))}")
  return bindings


def _setting(name: str):
  """`train_eval`'s value of a setting under the parsed config."""
  try:
    return gin.query_parameter(f"train_eval.{name}")
  except ValueError:
    return inspect.signature(train_eval).parameters[name].default


def _reference_returns(seed: int, num_episodes: int) -> dict:
  """`REFERENCES` on the periodic evaluations' episodes (same seed, CRN)."""
  train_model = scoped_builder("train").user_model
  scorer = train_model if _setting("user_model_scores") else None
  evaluation = RunEvaluation(train_model, _setting("eval_batch_size"), seed,
                             common_random_numbers=True, scorer=scorer)
  policies = baseline_policies(REFERENCES, train_model,
                               evaluation.builder.user_model, evaluation.seed)
  compared = compare_policies(evaluation.make_env, policies, num_episodes,
                              evaluation.seed)
  return {name: result["returns"] for name, result in compared.items()}


def _points(run_dir: str, setup_s: float) -> list[dict]:
  """The learning curve's points with their wall times."""
  points, evaluations = [], 0.0
  for row in read_episode_returns(run_dir):
    points.append({
        "train_steps": row["progress"],
        "wall_s": round(setup_s + row["seconds"] - evaluations, 2),
        "wall_with_evaluations_s": round(setup_s + row["seconds"], 2),
        "returns": row["returns"]})
    evaluations += row["eval_seconds"]
  return points


def run_time_to_quality(root_dir: str, world_dir: str | None,
                        agent_config: str = "configs/ahdqn.gin", seed: int = 1,
                        eval_interval: int = 250, eval_episodes: int = 2000,
                        gain_fraction: float = 0.5, max_lift: float = 0.05,
                        collect_workers: int = 0,
                        bindings: tuple[str, ...] = ()) -> dict:
  """Trains the agent config and measures its time to quality.

  Args:
    root_dir: the benchmark's folder; the run goes to
      root_dir/time_to_quality (replaced) and the plot beside it.
    world_dir: the built world (see `world_bindings`); None: the agent
      config names its files itself.
    agent_config: the agent's gin config.
    seed: the agent's seed (evaluation episodes use seed + 1, as in
      `train_eval`).
    eval_interval: train steps between points of the curve.
    eval_episodes: held-out episodes of every point (and of the final
      comparison).
    gain_fraction: see `benchmarks.quality_bar.quality_bar`.
    max_lift: see `benchmarks.quality_bar.quality_bar`.
    collect_workers: `train_eval.collect_workers` (0: in process).
    bindings: further gin bindings, after the world's.

  Returns:
    The entries of benchmark.json: `time_to_quality_s` (None when the bar is
    not reached and confirmed) and `time_to_quality` (bar, curve, reason,
    references, final comparison, load averages, plot).
  """
  run_dir = os.path.join(root_dir, "time_to_quality")
  shutil.rmtree(run_dir, ignore_errors=True)  # A fresh run, never a resume.
  load_before = os.getloadavg()
  with isolated_gin_config():
    gin.clear_config()
    world = world_bindings(world_dir) if world_dir else []
    parse_gin([agent_config], world + list(bindings))
    started = time.perf_counter()
    metrics = train_eval(
        run_dir, seed=seed, eval_interval=eval_interval,
        num_eval_episodes=eval_episodes, final_eval_episodes=eval_episodes,
        baselines=REFERENCES, collect_workers=collect_workers,
        checkpoint_replay_buffer=False, progress=False)
    run_seconds = time.perf_counter() - started
    references = _reference_returns(seed, eval_episodes)
  load_after = os.getloadavg()
  assessed = assess_curve(
      _points(run_dir, metrics["setup_s"]), references,
      dict(policies=metrics["policies"], differences=metrics["differences"],
           episodes=eval_episodes),
      gain_fraction=gain_fraction, max_lift=max_lift, seed=seed)
  first = assessed["first_passed"]
  seconds = (assessed["curve"][first]["wall_s"]
             if first is not None and assessed["confirmed"] else None)
  plot = plot_curve(os.path.join(root_dir, "time_to_quality.png"),
                    assessed, references, seconds)
  return {"time_to_quality_s": seconds, "time_to_quality": dict(
      assessed, world_dir=world_dir, agent_config=agent_config, seed=seed,
      collect_workers=collect_workers, eval_interval=eval_interval,
      eval_episodes=eval_episodes,
      references={name: float(np.mean(r)) for name, r in references.items()},
      train_steps=metrics["train_steps"], setup_s=metrics["setup_s"],
      loop_seconds=metrics["loop_seconds"],
      final_comparison_s=metrics["final_comparison_s"],
      run_seconds=round(run_seconds, 1), load_average_before=load_before,
      load_average_after=load_after, plot=plot, run_dir=run_dir)}
