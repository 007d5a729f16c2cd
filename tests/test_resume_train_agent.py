"""scripts/train_agent.py killed with SIGKILL and started again resumes.

Each run kills the script at random points (a seeded number of new
checkpoints, then a seeded delay, so kills land in training, in checkpoint
writes and in evaluation alike) or, where a test needs to know the step, at
a fixed point (the script stops itself right after a given checkpoint, see
`tests/pause_at_checkpoint.py`), restarts it on the same root_dir, and
checks that it resumes from the last checkpoint, that checkpoint steps never
go backwards, that every artefact parses, and that the final policy is
within noise of an uninterrupted run's.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from simulator.ray_session import reap_orphaned_ray
from tests.conftest import REPO_ROOT

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration

TINY = [
    "SyntheticWorld.num_tracks = 300", "SyntheticWorld.num_users = 60",
    "RandomEpisodeSampler.max_pool_size = 12",
    "PlaylistEnvironment.max_playlist_length = 8",
    "train_eval.env_batch_size = 4", "train_eval.eval_batch_size = 8",
    "train_eval.initial_collect_steps = 16",
    "train_eval.collect_steps_per_iteration = 4", "train_eval.batch_size = 8",
    "train_eval.replay_buffer_capacity = 256", "train_eval.embedding_dim = 4",
    "train_eval.state_layers = (8,)", "train_eval.head_layers = (8,)",
    "train_eval.eval_interval = 40", "train_eval.num_eval_episodes = 8",
    "train_eval.final_eval_episodes = 200",
    "train_eval.baselines = ('random',)", "train_eval.progress = False",
    "train_eval.checkpoint_interval = 5",
]
# tests/pause_at_checkpoint.py's variable (not imported here: it patches the
# checkpointer of the process that imports it).
_STOP_VAR = "STOP_AFTER_STEP"
_RESUMED = re.compile(r"resumed from \S+ at step (\d+)")


def _command(root_dir, num_iterations, extra=(), stoppable=False):
  # -v: the "saved checkpoint at step" lines the kills are timed by.
  cmd = [sys.executable, "scripts/train_agent.py", "--gin_file",
         "configs/world.gin", "--root_dir", str(root_dir), "--seed", "3",
         "-v"]
  if stoppable:  # Every attempt alike: the import is part of the config.
    cmd += ["--gin_imports", "tests.pause_at_checkpoint"]
  for binding in (TINY + [f"train_eval.num_iterations = {num_iterations}"] +
                  list(extra)):
    cmd += ["--gin_bindings", binding]
  return cmd


def _start(root_dir, num_iterations, log_path, extra, stoppable=False,
           stop_after=None):
  log = open(log_path, "w")  # pylint: disable=consider-using-with
  env = {k: v for k, v in os.environ.items()
         if k != _STOP_VAR}
  if stop_after is not None:
    env[_STOP_VAR] = str(stop_after)
  proc = subprocess.Popen(
      _command(root_dir, num_iterations, extra, stoppable=stoppable),
      cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
  return proc, log


def _wait_until_stopped(proc, timeout=240.0):
  """Waits until the process has stopped itself (SIGSTOP) or ended."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline and proc.poll() is None:
    with open(f"/proc/{proc.pid}/stat") as f:
      if f.read().rsplit(")", 1)[1].split()[0] == "T":
        return
    time.sleep(0.02)


def _latest_step(root_dir) -> int:
  """Step of the latest checkpoint, after checking that it loads."""
  latest = tf.train.latest_checkpoint(str(root_dir / "checkpoint"))
  if latest is None:
    return 0
  reader = tf.train.load_checkpoint(latest)
  step = int(reader.get_tensor("global_step/.ATTRIBUTES/VARIABLE_VALUE"))
  assert latest.endswith(f"ckpt-{step}"), latest
  return step


def _wait_for_new_checkpoints(proc, log_path, count, timeout=240.0):
  """Waits until this run has saved `count` checkpoints (or ended)."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline and proc.poll() is None:
    with open(log_path) as f:
      if f.read().count("saved checkpoint at step") >= count:
        return
    time.sleep(0.02)


def _assert_artefacts_parse(root_dir, finished):
  for path in root_dir.rglob("*.parquet"):
    pq.read_table(path)
  names = {p.name for p in root_dir.iterdir()}
  if finished or "metrics.json" in names:
    json.loads((root_dir / "metrics.json").read_text())
  if finished or "operative_config.gin" in names:
    assert "train_eval." in (root_dir / "operative_config.gin").read_text()
  if finished or "policy" in names:
    policy = tf.saved_model.load(str(root_dir / "policy"))
    assert int(policy.get_train_step().numpy()) >= 0


def _kill_and_resume(root_dir, num_iterations, kills, seed, tmp_path,
                     extra=(), stop_at=None, after_kill=None):
  """Runs the script, SIGKILLs it `kills` times, lets the last run finish.

  Kills land at seeded random points, or, with `stop_at` (one step per
  kill), right after the first checkpoint at or past each step (the process
  stops itself there, see `tests/pause_at_checkpoint.py`). `after_kill` is
  called after each kill (to reap what the killed process left).

  Returns:
    (metrics, steps at each kill, steps each restart said it resumed from).
  """
  rng = np.random.default_rng(seed)
  kill_steps, resumed = [], []
  previous = 0
  for attempt in range(kills + 1):
    log_path = tmp_path / f"attempt{attempt}.log"
    stop_after = (stop_at[attempt] if stop_at is not None and attempt < kills
                  else None)
    proc, log = _start(root_dir, num_iterations, log_path, extra,
                       stoppable=stop_at is not None, stop_after=stop_after)
    if stop_after is not None:
      _wait_until_stopped(proc)
      proc.send_signal(signal.SIGKILL)
    elif attempt < kills:
      # Progress between kills is counted in checkpoints, not seconds, so a
      # fast machine does not finish the run before the last kill.
      _wait_for_new_checkpoints(proc, log_path, int(rng.integers(1, 4)))
      time.sleep(rng.uniform(0.0, 0.3))
      proc.send_signal(signal.SIGKILL)
    code = proc.wait(timeout=600)
    log.close()
    if after_kill is not None and attempt < kills:
      after_kill()
    output = log_path.read_text()
    if attempt > 0:  # Every restart resumes from the last checkpoint.
      match = _RESUMED.search(output)
      assert match, output[-3000:]
      resumed.append(int(match.group(1)))
      assert resumed[-1] == kill_steps[-1]
    if attempt < kills:
      assert code == -signal.SIGKILL, output[-3000:]
    else:
      assert code == 0, output[-3000:]
    step = _latest_step(root_dir)
    assert step >= previous, "a completed checkpoint was lost"
    previous = step
    kill_steps.append(step)
    _assert_artefacts_parse(root_dir, finished=attempt == kills)
  metrics = json.loads((root_dir / "metrics.json").read_text())
  return metrics, kill_steps[:-1], resumed


def _check_finished(metrics, root_dir, num_iterations, resumed):
  assert metrics["global_step"] == num_iterations
  assert _latest_step(root_dir) == num_iterations
  # The history keeps the resumes that were followed by a checkpoint.
  assert set(metrics["resume_history"]) <= set(resumed)
  assert metrics["resume_history"] == sorted(metrics["resume_history"])
  assert metrics["resumed_from_step"] == resumed[-1]
  policy = tf.saved_model.load(str(root_dir / "policy"))
  assert int(policy.get_train_step().numpy()) == num_iterations


def test_one_sigkill_then_resume(tmp_path):
  root_dir = tmp_path / "run"
  metrics, kill_steps, resumed = _kill_and_resume(
      root_dir, 30, 1, 0, tmp_path,
      # Killed right after a checkpoint, so that the run cannot finish
      # first (the slow five-kill test kills at random points of a longer
      # run).
      extra=["train_eval.final_eval_episodes = 16"], stop_at=[15])
  assert resumed == kill_steps and resumed[0] > 0
  _check_finished(metrics, root_dir, 30, resumed)


@pytest.mark.slow
def test_five_sigkills_resume_and_match_an_uninterrupted_run(tmp_path):
  num_iterations = 300
  root_dir = tmp_path / "killed"
  metrics, kill_steps, resumed = _kill_and_resume(root_dir, num_iterations, 5,
                                                  2026, tmp_path)
  assert len(resumed) == 5 and resumed == kill_steps
  assert kill_steps == sorted(kill_steps)
  _check_finished(metrics, root_dir, num_iterations, resumed)

  clean = tmp_path / "uninterrupted"
  out = subprocess.run(_command(clean, num_iterations), cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  reference = json.loads((clean / "metrics.json").read_text())
  assert reference["resume_history"] == []
  # Both evaluate on the same common-random-number episodes; the killed
  # run's policy must be within noise of the uninterrupted one: the two
  # bootstrap 95% intervals of the mean return overlap.
  ours = metrics["policies"]["ahdqn"]
  theirs = reference["policies"]["ahdqn"]
  assert ours["ci_low"] <= theirs["ci_high"]
  assert theirs["ci_low"] <= ours["ci_high"]


@pytest.mark.slow
def test_killed_and_resumed_metrics_hold_the_whole_learning_curve(tmp_path):
  extra = ["train_eval.final_eval_episodes = 16", "train_eval.eval_interval = 4",
           "train_eval.summary_interval = 2"]
  whole, _, _ = _kill_and_resume(tmp_path / "whole", 30, 0, 0, tmp_path,
                                 extra=extra, stop_at=[])
  # Killed right after the checkpoints of steps 10 and 20 (saved every 5):
  # each attempt stops itself there, so it cannot finish before the kill.
  killed, kill_steps, resumed = _kill_and_resume(
      tmp_path / "killed", 30, 2, 1, tmp_path, extra=extra, stop_at=[10, 20])
  assert resumed == kill_steps == [10, 20]
  # Every evaluation and loss record of the run, not only the last process'.
  assert ([row[0] for row in killed["eval_curve"]] ==
          [row[0] for row in whole["eval_curve"]])
  assert ([row[0] for row in killed["loss_history"]] ==
          [row[0] for row in whole["loss_history"]])
  assert killed["train_steps"] == whole["train_steps"] == 30
  # (Environment steps differ a little: a resume restarts the episodes.)
  assert killed["env_steps"] > 0
  seconds = [row[1] for row in killed["eval_curve"]]
  assert seconds == sorted(seconds)  # Wall time carries over resumes.

  # A finished run run again: one line, status 0, not a byte changed.
  def digests(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
  before = digests(tmp_path / "killed")
  again = subprocess.run(_command(tmp_path / "killed", 30, extra,
                                  stoppable=True),
                         cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=600)
  assert again.returncode == 0, again.stderr[-3000:]
  assert "already holds this finished train_agent run" in again.stderr
  assert digests(tmp_path / "killed") == before
  # Other hyperparameters: refused, naming the binding.
  changed = subprocess.run(
      _command(tmp_path / "killed", 30, extra + ["train_eval.gamma = 0.5"],
               stoppable=True),
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
  assert changed.returncode == 2, changed.stderr[-3000:]
  assert "train_eval.gamma: checkpoint 0.9 vs now 0.5" in changed.stderr
  assert digests(tmp_path / "killed") == before


@pytest.mark.slow
def test_training_with_ray_collect_workers_resumes_after_a_kill(tmp_path):
  pytest.importorskip("ray")
  extra = ["train_eval.collect_workers = 2", "train_eval.eval_interval = 10",
           "train_eval.final_eval_episodes = 16"]
  root_dir = tmp_path / "run"
  try:
    # Killed right after the checkpoint of step 10, Ray workers running.
    metrics, kill_steps, resumed = _kill_and_resume(
        root_dir, 20, 1, 0, tmp_path, extra=extra, stop_at=[10],
        after_kill=reap_orphaned_ray)
  finally:
    reap_orphaned_ray()
  assert resumed == kill_steps == [10]
  _check_finished(metrics, root_dir, 20, resumed)
  assert [row[0] for row in metrics["eval_curve"]] == [10, 20]
  assert metrics["env_steps"] > 0 and np.isfinite(metrics["final_loss"])
