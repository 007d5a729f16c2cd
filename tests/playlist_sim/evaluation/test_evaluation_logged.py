"""The logging run and the estimator check, with the world as the model."""

import os

import numpy as np
import pytest

from playlist_sim.evaluation import logged
from playlist_sim.evaluation.evaluate import _world_model
from playlist_sim.policies.registry import make_policy
from playlist_sim.evaluation.simulated import held_out_env
from playlist_sim.jobs.log_generation import generate_logs
from playlist_sim.common.runs import parse_gin
from tests.conftest import REPO_ROOT


def test_logged_check_is_exact_with_the_true_model(tmp_path):
  parse_gin([os.path.join(REPO_ROOT, "configs/world.gin")],
            ["SyntheticWorld.num_tracks = 500"])
  logs = str(tmp_path / "logs")
  generate_logs(logs, num_sessions=200, seed=0, progress=False)
  world = _world_model()
  decisions = logged.log_decisions(world, logs, num_sessions=30, seed=3,
                                   batch_size=8)
  assert decisions.num_sessions == 30
  # Sessions are contiguous, positions run 1..T.
  starts = np.r_[True, decisions.session_ids[1:] != decisions.session_ids[:-1]]
  assert starts.sum() == 30
  np.testing.assert_array_equal(
      decisions.positions,
      np.arange(len(starts)) - np.flatnonzero(starts)[np.cumsum(starts) - 1]
      + 1)
  env = held_out_env(world, logs, seed=0, batch_size=1)
  names = ("logging", "softmax_t0.08")
  targets = {n: make_policy(n, env) for n in names}
  rows = np.arange(len(decisions.slots))
  # The logged propensities are the logging policy's exact probabilities.
  np.testing.assert_allclose(
      targets["logging"].probabilities(decisions.observations)[
          rows, decisions.slots], decisions.propensities, rtol=1e-6)
  true_probs = logged.candidate_listen_probabilities(world, decisions,
                                                     chunk=7)
  assert true_probs.shape == decisions.observations["candidate_ids"].shape
  assert ((true_probs > 0) & (true_probs < 1)).all()
  estimates, info = logged.check_estimators(
      decisions, targets, true_probs, true_probs,
      session_truth={n: 5.0 for n in names},
      model_return_to_go={n: np.zeros(32) for n in names},
      consecutive_skip_limit=env.environment.consecutive_skip_limit,
      n_bootstrap=10)
  for name in names:
    # DM with the true model is the bandit truth itself.
    dm = estimates["dm"][name]
    assert dm["estimate"] == pytest.approx(dm["truth"])
    assert estimates["pdis"][name]["truth"] == 5.0
  # On-policy: every weight is 1, IPS is the mean logged reward.
  assert estimates["ips"]["logging"]["estimate"] == pytest.approx(
      decisions.rewards.mean())
  assert info["logging"]["kl_from_logging"] == pytest.approx(0.0, abs=1e-9)
  assert info["softmax_t0.08"]["kl_from_logging"] > 0
  # Probabilities the caller already has give the same results.
  given = logged.check_estimators(
      decisions, targets, true_probs, true_probs,
      session_truth={n: 5.0 for n in names},
      model_return_to_go={n: np.zeros(32) for n in names},
      consecutive_skip_limit=env.environment.consecutive_skip_limit,
      n_bootstrap=10,
      candidate_probabilities=logged.target_probabilities(decisions, targets))
  assert given == (estimates, info)
