"""The targeted simulator: the listen-logit shift, its solver, the estimates."""

import os

import numpy as np
import pytest

from playlist_sim.common.runs import parse_gin
from playlist_sim.evaluation import estimators, logged, targeted
from playlist_sim.evaluation.evaluate import _world_model
from playlist_sim.evaluation.simulated import held_out_env, run_logged_episodes
from playlist_sim.jobs.log_generation import generate_logs
from playlist_sim.policies.registry import make_policy
from tests.conftest import REPO_ROOT
from user_models.base import AbstractUserModel


def _logit(p):
  return np.log(p) - np.log1p(-p)


def test_shift_listen_moves_the_listen_logit_and_keeps_the_rest_in_proportion():
  rng = np.random.default_rng(0)
  probs = rng.dirichlet(np.ones(5), size=(6, 3))
  shifted = targeted.shift_listen(probs, 0.8, listen_level=4)
  np.testing.assert_allclose(shifted.sum(-1), 1.0, atol=1e-12)
  np.testing.assert_allclose(_logit(shifted[..., 4]),
                             _logit(probs[..., 4]) + 0.8, atol=1e-9)
  # The other levels share what is left in their old proportions.
  np.testing.assert_allclose(shifted[..., :4] / shifted[..., :1],
                             probs[..., :4] / probs[..., :1], rtol=1e-9)
  np.testing.assert_allclose(targeted.shift_listen(probs, 0.0, 4), probs,
                             atol=1e-12)


def test_the_solver_recovers_a_known_shift():
  rng = np.random.default_rng(1)
  pi = rng.dirichlet(np.ones(20), size=500)
  model = rng.uniform(0.05, 0.95, size=(500, 20))
  for delta in (-1.3, 0.0, 0.45):
    rate = (pi * targeted.shift_listen(
        np.stack([1 - model, model], -1), delta, 1)[..., 1]).sum(1).mean()
    assert targeted.listen_logit_shift(pi, model, rate) == pytest.approx(
        delta, abs=1e-6)
  # A rate no shift reaches (DR is not bounded to [0, 1]) takes the bound.
  assert targeted.listen_logit_shift(pi, model, 1.2) == targeted.MAX_SHIFT
  assert targeted.listen_logit_shift(pi, model, -0.1) == -targeted.MAX_SHIFT


class _Recorder(AbstractUserModel):
  """Fixed level probabilities; records what it is told."""
  response_levels = ("skip", "listen")

  def __init__(self):
    self.calls = []

  def begin_sessions(self, rows, user_ids):
    self.calls.append(("begin", list(rows)))

  def observe(self, rows, track_ids, responses):
    self.calls.append(("observe", list(rows)))

  def leave_probability(self, context):
    return np.full(2, 0.25)

  def predict(self, context, track_ids):
    return np.tile([0.4, 0.6], track_ids.shape + (1,))


def test_the_shifted_model_wraps_its_base():
  base = _Recorder()
  model = targeted.ListenShiftedModel(base, -0.5)
  model.begin_sessions(np.array([0, 1]), np.array([3, 4]))
  model.observe(np.array([1]), np.array([[7]]), np.array([[1]]))
  assert base.calls == [("begin", [0, 1]), ("observe", [1])]
  np.testing.assert_array_equal(model.leave_probability(None), [0.25, 0.25])
  probs = model.predict(None, np.zeros((2, 3), np.int64))
  assert probs.shape == (2, 3, 2)
  np.testing.assert_allclose(_logit(probs[..., 1]), _logit(0.6) - 0.5)
  assert model.listen_level == 1


def test_targeted_estimates_simulate_at_the_shifts_of_dr_and_its_interval():
  rng = np.random.default_rng(2)
  pi = rng.dirichlet(np.ones(10), size=300)
  model = rng.uniform(0.1, 0.9, size=(300, 10))
  true_shift = -0.4
  true_rate = float((pi / (1 + np.exp(-(_logit(model) + true_shift)))).sum(
      1).mean())
  dr = {"t": {"estimate": true_rate, "ci_low": true_rate - 0.01,
              "ci_high": true_rate + 0.01}}
  calls = []

  def simulate(name, delta):
    calls.append((name, delta))
    value = 10.0 + 5.0 * delta  # The return rises with the listen rate.
    return value, value - 0.1, value + 0.1

  out = targeted.targeted_estimates({"t": pi}, model, dr, {"t": 8.0},
                                    simulate)["t"]
  assert out["listen_logit_shift"] == pytest.approx(true_shift, abs=1e-6)
  assert out["estimate"] == pytest.approx(10.0 + 5.0 * true_shift, abs=1e-5)
  assert out["relative_error"] == pytest.approx(0.0, abs=1e-5)
  # DR's interval moves the shift both ways; the Monte-Carlo error adds.
  assert out["ci_low"] < out["estimate"] - 0.1 < out["estimate"] + 0.1 < (
      out["ci_high"])
  assert len(calls) == 3 and calls[1][1] < calls[0][1] < calls[2][1]
  assert out["quantity"] == "session return"


def test_anchored_estimates_put_the_logging_policy_on_its_logged_return():
  targeted_out = {
      "logging": {"estimate": 5.0, "ci_low": 4.8, "ci_high": 5.2},
      "cold": {"estimate": 6.0, "ci_low": 5.7, "ci_high": 6.3}}
  out = targeted.anchored_estimates(targeted_out, "logging",
                                    (4.5, 4.4, 4.6), {"logging": 4.5,
                                                      "cold": None})
  assert out["logging"]["estimate"] == pytest.approx(4.5)
  assert (out["logging"]["ci_low"], out["logging"]["ci_high"]) == (
      pytest.approx(4.4), pytest.approx(4.6))
  assert out["logging"]["relative_error"] == pytest.approx(0.0)
  # The simulator's relative error on the logging policy (+11%) comes off.
  assert out["cold"]["estimate"] == pytest.approx(6.0 * 4.5 / 5.0)
  assert out["cold"]["relative_error"] is None
  # Three relative half-widths in quadrature: 5%, 2.2% and 4%.
  spread = np.sqrt(0.05**2 + (0.1 / 4.5)**2 + 0.04**2)
  assert out["cold"]["ci_high"] == pytest.approx(5.4 * (1 + spread))
  assert out["cold"]["ci_low"] == pytest.approx(5.4 * (1 - spread))
  with pytest.raises(KeyError):
    targeted.anchored_estimates(targeted_out, "other", (4.5, 4.4, 4.6), {})
  zero = {"logging": {"estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0}}
  with pytest.raises(ValueError, match="positive return"):
    targeted.anchored_estimates(zero, "logging", (4.5, 4.4, 4.6), {})


@pytest.mark.slow
def test_targeting_recovers_the_world_from_a_model_off_by_a_logit_shift(
    tmp_path):
  parse_gin([os.path.join(REPO_ROOT, "configs/world.gin")],
            ["SyntheticWorld.num_tracks = 500"])
  logs = str(tmp_path / "logs")
  generate_logs(logs, num_sessions=200, seed=0, progress=False)
  world = _world_model()
  # A "learned" model that overrates every listen by 0.6 in the logit.
  model = targeted.ListenShiftedModel(world, 0.6)
  decisions = logged.log_decisions(world, logs, num_sessions=400, seed=3,
                                   batch_size=32)
  env = held_out_env(world, logs, seed=0, batch_size=1)
  target = make_policy("softmax_t0.08", env)
  probs = target.probabilities(decisions.observations)
  model_listen = logged.candidate_listen_probabilities(model, decisions)
  rows = np.arange(len(decisions.slots))
  dr = estimators.DR().estimate_policy_value(
      rewards=decisions.rewards, logging_propensities=decisions.propensities,
      target_probabilities=probs[rows, decisions.slots],
      predicted_rewards=model_listen[rows, decisions.slots],
      expected_predicted_rewards=(probs * model_listen).sum(axis=1))
  delta = targeted.listen_logit_shift(probs, model_listen, dr)
  assert delta == pytest.approx(-0.6, abs=0.15)

  def mean_return(user_model):
    run = run_logged_episodes(
        user_model, logs, lambda e: make_policy("softmax_t0.08", e), 300,
        seed=5, batch_size=32)
    return float(np.mean(run.stats.returns))
  truth = mean_return(world)
  # The biased model overstates the session; the targeted one is close.
  assert mean_return(model) > 1.1 * truth
  assert mean_return(targeted.ListenShiftedModel(model, delta)) == (
      pytest.approx(truth, rel=0.08))
