"""The run loop's pieces that need no training: intervals, the resume config,
counters, and the refusal of settings that cannot train (whole runs are in
test_train_eval.py)."""

import types

import gin
import pytest

from agents import q_learning
from agents import run_loop
from agents.train_eval import train_eval


@pytest.mark.parametrize("interval,previous,step,crossed", [
    (4, 0, 2, False), (4, 2, 4, True), (4, 3, 5, True),  # 2 steps an iter.
    (4, 4, 6, False), (4, 6, 7, True),  # The run's end (7) always counts.
    (1, 0, 1, True), (0, 0, 1, True)])
def test_intervals_count_multiples_jumped_over_and_the_end(interval, previous,
                                                           step, crossed):
  assert run_loop._crossed(interval, previous, step, end=7) is crossed  # pylint: disable=protected-access


def test_run_config_holds_the_arguments_but_not_how_a_run_is_shown():
  gin.clear_config()
  config = run_loop.run_config("train_ppo", {
      "root_dir": "/x", "progress": False, "allow_config_change": True,
      "ray_address": "ray://head:10001", "learning_rate": 1e-3,
      "actor_layers": (8,)})
  assert config == {"train_ppo.learning_rate": "0.001",
                    "train_ppo.actor_layers": "(8,)"}


def test_counter_keys_name_each_unit():
  assert run_loop.STEP_COUNTERS.total == "train_steps"
  assert run_loop.STEP_COUNTERS.resumed_from == "resumed_from_step"
  assert run_loop.ITERATION_COUNTERS.total == "iterations"
  assert run_loop.ITERATION_COUNTERS.this_process == "train_iterations"


def _arguments(**changes):
  arguments = dict(agent_name="ahdqn", collect_workers=0,
                   train_steps_per_iteration=2, initial_collect_steps=256,
                   collect_steps_per_iteration=256, env_batch_size=256,
                   n_step_update=1)
  arguments.update(changes)
  return types.SimpleNamespace(**arguments)


@pytest.mark.parametrize("changes,message", [
    (dict(collect_workers=-1), "collect_workers = -1"),
    (dict(collect_workers=2, agent_name="dqn"), "needs agent_name = 'ahdqn'"),
    (dict(train_steps_per_iteration=0), "at least one train step"),
    (dict(initial_collect_steps=0, n_step_update=3), "3-step returns need 4"),
])
def test_settings_that_cannot_train_are_refused(changes, message):
  with pytest.raises(ValueError, match=message):
    q_learning.check_q_learning_arguments(_arguments(**changes))
  q_learning.check_q_learning_arguments(_arguments())  # The defaults train.


def test_train_eval_refuses_workers_for_dqn_before_building_anything(
    tmp_path):
  gin.clear_config()
  with pytest.raises(ValueError, match="collect_workers = 2 needs"):
    train_eval(str(tmp_path / "run"), agent_name="dqn", collect_workers=2)
  assert not (tmp_path / "run").exists()
