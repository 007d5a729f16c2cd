"""RunCheckpointer: RNG state and resume history travel with the checkpoint,
a kill in the middle of a save leaves the previous checkpoint usable, and
another run's checkpoint is refused with a message naming the root_dir."""

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from agents import train_eval as train_eval_lib
from agents.checkpointing import (CheckpointError, ConfigChangeError,
                                  RunCheckpointer)
from tests.agents.test_train_eval import TINY_RUN, _parse_tiny_world
from tests.conftest import REPO_ROOT

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration


def _checkpointer(ckpt_dir, width=3, agent="a", seed=0, config=None,
                  allow_config_change=False):
  step = tf.Variable(0, dtype=tf.int64)
  weights = tf.Variable(tf.zeros(width))
  generator = np.random.default_rng(seed)
  checkpointer = RunCheckpointer(
      str(ckpt_dir), seed=seed, generators={"env": generator},
      fingerprint={"agent": agent}, global_step=step,
      config=config, allow_config_change=allow_config_change,
      model=tf.Module(), weights=weights)
  return checkpointer, step, weights, generator


def test_resume_restores_weights_step_generator_and_history(tmp_path):
  ckpt_dir = tmp_path / "run" / "checkpoint"
  checkpointer, step, weights, generator = _checkpointer(ckpt_dir)
  assert checkpointer.restore() == 0
  generator.random(7)
  step.assign(4)
  weights.assign([1.0, 2.0, 3.0])
  checkpointer.save(step)
  expected_draws = generator.random(5)

  checkpointer, step, weights, generator = _checkpointer(ckpt_dir)
  assert checkpointer.restore() == 4
  np.testing.assert_array_equal(weights.numpy(), [1.0, 2.0, 3.0])
  # The stream continues where the saved run was, not from the seed.
  np.testing.assert_array_equal(generator.random(5), expected_draws)
  assert checkpointer.resumed_from_steps == [4]
  step.assign(6)
  checkpointer.save(step)

  checkpointer, step, _, _ = _checkpointer(ckpt_dir)
  assert checkpointer.restore() == 6
  assert checkpointer.resumed_from_steps == [4, 6]
  assert sorted(p.name for p in ckpt_dir.iterdir()) == [
      "checkpoint", "ckpt-6.data-00000-of-00001", "ckpt-6.index"]


def test_run_state_travels_with_the_checkpoint(tmp_path):
  ckpt_dir = tmp_path / "run" / "checkpoint"
  checkpointer, step, _, _ = _checkpointer(ckpt_dir)
  checkpointer.restore()
  assert checkpointer.run_state == {}
  step.assign(2)
  state = {"eval_curve": [[2, 1.5, 3.0]], "loss_history": [[2, 0.5]]}
  checkpointer.save(step, run_state=state)
  checkpointer, _, _, _ = _checkpointer(ckpt_dir)
  checkpointer.restore()
  assert checkpointer.run_state == state


def test_resume_with_another_config_lists_the_differences(tmp_path):
  ckpt_dir = tmp_path / "run" / "checkpoint"
  config = {"train_eval.gamma": "0.9", "SyntheticWorld.num_tracks": "300",
            "train_eval.seed": "0"}
  checkpointer, step, _, _ = _checkpointer(ckpt_dir, config=config)
  checkpointer.restore()
  step.assign(2)
  checkpointer.save(step)
  changed = dict(config, **{"train_eval.gamma": "0.5",
                            "SyntheticWorld.num_tracks": "400"})
  with pytest.raises(ConfigChangeError) as error:
    _checkpointer(ckpt_dir, config=changed)[0].restore()
  message = str(error.value)
  assert "train_eval.gamma: checkpoint 0.9 vs now 0.5" in message
  assert "SyntheticWorld.num_tracks: checkpoint 300 vs now 400" in message
  assert "train_eval.seed" not in message and "--allow_config_change" in message
  # Allowed: it resumes, and the new config is the one saved next.
  allowed, step, _, _ = _checkpointer(ckpt_dir, config=changed,
                                      allow_config_change=True)
  assert allowed.restore() == 2
  step.assign(4)
  allowed.save(step)
  assert _checkpointer(ckpt_dir, config=changed)[0].restore() == 4


@pytest.mark.parametrize("change,expected", [
    (dict(width=5), "float32\\[5\\]"),
    (dict(agent="b"), "agent"),
])
def test_another_runs_checkpoint_is_refused_naming_the_root_dir(
    tmp_path, change, expected):
  ckpt_dir = tmp_path / "run" / "checkpoint"
  checkpointer, step, _, _ = _checkpointer(ckpt_dir)
  checkpointer.restore()
  checkpointer.save(step)
  with pytest.raises(CheckpointError, match=expected) as error:
    _checkpointer(ckpt_dir, **change)[0].restore()
  assert str(tmp_path / "run") in str(error.value)


def test_a_corrupt_checkpoint_is_refused_naming_the_root_dir(tmp_path):
  ckpt_dir = tmp_path / "run" / "checkpoint"
  checkpointer, step, _, _ = _checkpointer(ckpt_dir)
  checkpointer.restore()
  checkpointer.save(step)
  for path in ckpt_dir.glob("ckpt-0.*"):
    path.write_bytes(b"garbage")
  with pytest.raises(CheckpointError, match="cannot be read") as error:
    _checkpointer(ckpt_dir)[0].restore()
  assert str(tmp_path / "run") in str(error.value)


_CHILD = textwrap.dedent("""
    import os, signal, sys
    import numpy as np, tensorflow as tf
    sys.path.insert(0, {repo!r})
    from agents.checkpointing import RunCheckpointer
    ckpt_dir, where = sys.argv[1], sys.argv[2]
    step, weights = tf.Variable(0, dtype=tf.int64), tf.Variable([0.0])
    generator = np.random.default_rng(0)
    ckpt = RunCheckpointer(ckpt_dir, seed=0, generators={{"env": generator}},
                           global_step=step, weights=weights)
    ckpt.restore()
    step.assign_add(1)
    weights.assign(step.numpy().astype(np.float32)[None])
    generator.random(int(step.numpy()))
    manager = tf.train.CheckpointManager
    if where != "none":
      original = getattr(manager, where)
      def die(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
      setattr(manager, where, die)
    ckpt.save(step)
""")


@pytest.mark.parametrize("where,expected_step", [
    ("_record_state", 1),  # Data and index written, state file not yet.
    ("_sweep", 2),  # The new checkpoint is recorded, the old one not swept.
])
def test_a_kill_mid_save_leaves_a_usable_checkpoint(tmp_path, where,
                                                    expected_step):
  ckpt_dir = str(tmp_path / "checkpoint")
  script = tmp_path / "child.py"
  script.write_text(_CHILD.format(repo=REPO_ROOT))

  def run(mode):
    return subprocess.run([sys.executable, str(script), ckpt_dir, mode],
                          capture_output=True, text=True, timeout=300)
  assert run("none").returncode == 0
  killed = run(where)
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

  step, weights = tf.Variable(0, dtype=tf.int64), tf.Variable([0.0])
  generator = np.random.default_rng(0)
  ckpt = RunCheckpointer(ckpt_dir, seed=0, generators={"env": generator},
                         global_step=step, weights=weights)
  assert ckpt.restore() == expected_step
  assert weights.numpy()[0] == expected_step
  # The generator state is the one saved with that checkpoint: it has drawn
  # 1 + ... + expected_step numbers.
  reference = np.random.default_rng(0)
  for k in range(1, expected_step + 1):
    reference.random(k)
  assert generator.random() == reference.random()
  assert ckpt.resumed_from_steps == list(range(1, expected_step + 1))
  # Files of an unrecorded checkpoint are gone; a recorded but unswept one
  # stays until the next save sweeps it.
  names = {p.name.split(".")[0] for p in (tmp_path / "checkpoint").iterdir()}
  assert names == {"checkpoint", "ckpt-1", f"ckpt-{expected_step}"}
  step.assign_add(1)
  ckpt.save(step)
  names = {p.name.split(".")[0] for p in (tmp_path / "checkpoint").iterdir()}
  assert names == {"checkpoint", f"ckpt-{expected_step + 1}"}


def test_train_eval_refuses_a_root_dir_of_another_agent(tmp_path):
  _parse_tiny_world()
  run = dict(TINY_RUN, final_eval_episodes=2, baselines=())
  train_eval_lib.train_eval(str(tmp_path), agent_name="ahdqn",
                            num_iterations=0, **run)
  assert (tmp_path / "checkpoint" / "ckpt-0.index").exists()
  _parse_tiny_world()
  with pytest.raises(CheckpointError, match="agent") as error:
    train_eval_lib.train_eval(str(tmp_path), agent_name="dqn",
                              num_iterations=2, **run)
  assert str(tmp_path) in str(error.value)
  assert error.traceback[-1].path.name == "checkpointing.py"
