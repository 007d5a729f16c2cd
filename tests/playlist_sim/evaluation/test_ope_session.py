"""Session-level additions: clipped sequential DR and marginalised weights."""

import numpy as np
import pytest

from playlist_sim import evaluation as ev
from playlist_sim.evaluation import marginal
from tests.playlist_sim.evaluation.test_estimators import SESSIONS


def test_clipped_sequential_dr_by_hand():
  # rho = [2, 2 | 2 | 1, 0.5, 1] clipped at 1.5; rho_{t-1} likewise:
  # a: (1.2 + 1.5 (1 - 1.5)) + (1.5 * 0.6 + 1.5 (1 - 0.8)) = 1.65
  # b: 0.4 + 1.5 (0 - 0.5) = -0.35
  # c: 0.9 + (0.3 + 0.5 (0 - 0.5)) + (0.5 * 0.7 + 1 (1 - 0.6)) = 1.7
  value = ev.SequentialDR(max_weight=1.5).estimate_policy_value(**SESSIONS)
  assert value == pytest.approx(1.0, abs=1e-12)
  assert ev.SequentialDR(max_weight=1e9).estimate_policy_value(
      **SESSIONS) == pytest.approx(ev.SequentialDR().estimate_policy_value(
          **SESSIONS), abs=1e-12)
  with pytest.raises(ev.EstimatorInputError, match="max_weight"):
    ev.SequentialDR(max_weight=0.0)


def _session_inputs(with_model=False):
  keys = ["rewards", "logging_propensities", "target_probabilities",
          "positions", "session_ids"]
  inputs = {k: SESSIONS[k] for k in keys}
  if with_model:
    inputs["predicted_rewards"] = np.zeros(6)
    inputs["expected_predicted_rewards"] = np.zeros(6)
  return inputs


def test_mis_by_hand_with_one_state():
  # One state per position: omega_2 = (1*2 + 1*1) / 2 = 1.5 (sessions a, c),
  # omega_3 = 1.5 * 0.5 = 0.75 (c). Terms omega w r:
  # a: 2 + 1.5; b: 0; c: 1 + 0 + 0.75 * 2 -> 6 / 3.
  value = marginal.MIS().estimate_policy_value(**_session_inputs(),
                                               state_ids=np.zeros(6, int))
  assert value == pytest.approx(2.0, abs=1e-12)


def test_mis_with_a_state_per_session_is_pdis():
  inputs = _session_inputs()
  states = np.array([0, 0, 1, 2, 2, 2])
  assert marginal.MIS().estimate_policy_value(
      **inputs, state_ids=states) == pytest.approx(
          ev.PDIS().estimate_policy_value(**inputs), abs=1e-12)
  assert marginal.MDR().estimate_policy_value(
      **_session_inputs(with_model=True), state_ids=states) == pytest.approx(
          ev.PDIS().estimate_policy_value(**inputs), abs=1e-12)


def test_mis_interval_and_bad_states():
  inputs = _session_inputs()
  interval = marginal.MIS().estimate_interval(
      **inputs, state_ids=np.zeros(6, int), n_bootstrap=50, seed=1)
  assert interval["ci_low"] <= interval["ci_high"]
  for bad in (None, np.zeros(5, int), np.zeros(6)):
    with pytest.raises(ev.EstimatorInputError) as raised:
      marginal.MIS().estimate_policy_value(**inputs, state_ids=bad)
    assert raised.value.argument == "state_ids"
