"""The run's bookkeeping: phase times, the curve and the episode returns."""

import json
import time

import numpy as np
import pytest

from agents.run_record import (EPISODE_RETURNS_FILE, LOOP_PHASES, RunRecord,
                               read_episode_returns)


def test_phases_add_up_and_carry_over_in_the_state():
  record = RunRecord({})
  assert set(record.phase_seconds) == set(LOOP_PHASES)
  with record.timed("collect"):
    time.sleep(0.01)
  with record.timed("collect"):
    time.sleep(0.01)
  assert record.phase_seconds["collect"] >= 0.02
  assert record.phase_seconds["train"] == 0.0
  state = record.state()
  resumed = RunRecord(state)
  assert resumed.phase_seconds == state["loop_seconds"]
  assert resumed.seconds() >= state["wall_time_s"]


def test_evaluations_go_to_the_curve_and_the_returns_file(tmp_path):
  record = RunRecord({}, str(tmp_path))
  before = record.seconds()
  time.sleep(0.01)  # The evaluation's time.
  mean = record.add_evaluation(10, np.array([1.0, 2.0, 4.0]), before)
  assert mean == pytest.approx(7 / 3)
  assert record.curve[0][0] == 10 and record.curve[0][2] == mean
  record.add_evaluation(20, np.array([3.0, 3.0, 3.0]), record.seconds())
  # A resume evaluates step 20 again: the last line counts.
  RunRecord(record.state(), str(tmp_path)).add_evaluation(
      20, np.array([5.0, 5.0, 5.0]), record.seconds())
  rows = read_episode_returns(str(tmp_path))
  assert [row["progress"] for row in rows] == [10, 20]
  np.testing.assert_array_equal(rows[1]["returns"], [5.0, 5.0, 5.0])
  assert rows[0]["seconds"] == pytest.approx(before, abs=1e-3)
  assert rows[0]["eval_seconds"] >= 0.009
  lines = (tmp_path / EPISODE_RETURNS_FILE).read_text().splitlines()
  assert len(lines) == 3 and json.loads(lines[0])["progress"] == 10


def test_no_evaluation_yet_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="has not evaluated yet"):
    read_episode_returns(str(tmp_path))
