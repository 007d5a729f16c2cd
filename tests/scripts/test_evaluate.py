"""Smoke runs of scripts/evaluate.py and the pipeline, and the report files."""

import json
import os
import subprocess
import sys

import gin
import matplotlib.image
import pytest

from playlist_sim.policies.softmax import DEFAULT_STOCHASTIC
from simulator.tracker import TERMINATION_REASONS
from tests.conftest import REPO_ROOT

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration

_TINY_WORLD = "SyntheticWorld.num_tracks = 500"


def _run(*args):
  return subprocess.run([sys.executable, *args], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=900)


def _check_evaluation(root, policies, estimator_targets):
  """evaluation.json keys per the contract, and valid PNG plots."""
  evaluation = json.loads((root / "evaluation.json").read_text())
  assert set(evaluation["policies"]) == set(policies)
  for by_env in evaluation["policies"].values():
    for env_name in ("simulator", "world"):
      m = by_env[env_name]
      assert m["ci_low"] <= m["mean_return"] <= m["ci_high"]
      for metric in ("listens_per_session", "skip_rate", "session_length"):
        assert m[metric]["ci_low"] <= m[metric]["mean"] <= m[metric]["ci_high"]
      assert set(m["termination"]) == set(TERMINATION_REASONS[1:])
  for name in ("ips", "snips", "dm", "dr", "pdis", "wpdis", "sequential_dr",
               "clipped_sequential_dr", "targeted_simulator",
               "anchored_simulator"):
    assert set(evaluation["estimators"][name]) == set(estimator_targets)
    for r in evaluation["estimators"][name].values():
      assert {"estimate", "ci_low", "ci_high", "truth",
              "relative_error"} <= set(r)
      assert r["relative_error"] >= 0
    assert -1 <= evaluation["agreement"][name]["spearman"] <= 1
    assert evaluation["agreement"][name]["max_relative_error"] == max(
        r["relative_error"] for r in evaluation["estimators"][name].values())
  assert evaluation["agreement"]["simulator"]["num_policies"] == len(policies)
  from playlist_sim.evaluation.report import PLOTS  # pylint: disable=g-import-not-at-top
  for plot in PLOTS:
    data = (root / plot).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(str(root / plot)).ndim == 3
    assert plot in (root / "report.md").read_text()
  return evaluation


@pytest.fixture(scope="module")
def tiny_logs_and_model(tmp_path_factory):
  # pylint: disable=g-import-not-at-top
  from playlist_sim.jobs.log_generation import generate_logs
  from playlist_sim.common.runs import parse_gin
  from user_models.training import train_user_model
  root = tmp_path_factory.mktemp("tiny")
  gin.clear_config()
  parse_gin([os.path.join(REPO_ROOT, "configs/world.gin")], [_TINY_WORLD])
  generate_logs(str(root / "logs"), num_sessions=300, seed=0, progress=False)
  model = train_user_model(str(root / "cwm"), str(root / "logs"),
                           model_type="cwm", max_epochs=1)["model_path"]
  gin.clear_config()
  return root / "logs", model


def test_evaluate_script_tiny(tiny_logs_and_model, tmp_path):
  logs, model = tiny_logs_and_model
  out = _run("scripts/evaluate.py", "--root_dir", str(tmp_path),
             "--logs_dir", str(logs), "--user_model", model,
             "--gin_bindings", _TINY_WORLD,
             "--gin_bindings", "evaluate_policies.num_episodes = 24",
             "--gin_bindings", "evaluate_policies.num_logged_sessions = 24",
             "--gin_bindings", "evaluate_policies.n_bootstrap = 20",
             "--gin_bindings", "evaluate_policies.baselines = "
             "('random', 'greedy')",
             "--gin_bindings", "evaluate_policies.stochastic = "
             "('logging', 'softmax_t0.08', 'softmax_t0.6')")
  assert out.returncode == 0, out.stderr
  evaluation = _check_evaluation(
      tmp_path, ["random", "greedy", "logging", "softmax_t0.08",
                 "softmax_t0.6"], ["logging", "softmax_t0.08", "softmax_t0.6"])
  assert evaluation["notes"] == []
  assert "report ->" in out.stdout and "agreement simulator" in out.stdout
  # The simulator's listeners leave with the model saved beside the CWM.
  with open(os.path.join(os.path.dirname(model), "leaving_model.json"),
            encoding="utf-8") as f:
    assert evaluation["leaving_model"] == json.load(f)


def test_evaluate_refuses_a_bad_policy_before_running(tiny_logs_and_model,
                                                      tmp_path):
  logs, model = tiny_logs_and_model
  for flag, message in (
      (f"missing={tmp_path / 'no_such_policy'}", "no folder"),
      (f"random={tmp_path}", "already a built-in policy"),
      (str(tmp_path), "must be name=folder")):
    out = _run("scripts/evaluate.py", "--root_dir", str(tmp_path / "out"),
               "--logs_dir", str(logs), "--user_model", model,
               "--policy", flag)
    assert out.returncode != 0 and message in out.stderr, out.stderr
    assert not (tmp_path / "out" / "evaluation.json").exists()


@pytest.mark.slow
def test_evaluate_script_without_report(tiny_logs_and_model, tmp_path):
  logs, model = tiny_logs_and_model
  out = _run("scripts/evaluate.py", "--root_dir", str(tmp_path),
             "--logs_dir", str(logs), "--user_model", model,
             "--gin_bindings", _TINY_WORLD,
             "--gin_bindings", "evaluate_policies.num_episodes = 8",
             "--gin_bindings", "evaluate_policies.num_logged_sessions = 0",
             "--gin_bindings", "evaluate_policies.baselines = ('random',)",
             "--gin_bindings", "evaluate_policies.stochastic = ()",
             "--gin_bindings", "evaluate_policies.report = False")
  assert out.returncode == 0, out.stderr
  evaluation = json.loads((tmp_path / "evaluation.json").read_text())
  assert evaluation["report"] is None
  assert not (tmp_path / "report.md").exists()


def _quick_args(tmp_path, *extra):
  return ("scripts/pipeline.py", "--quick", "--root_dir", str(tmp_path),
          "--gin_bindings", _TINY_WORLD,
          "--gin_bindings", "run_pipeline.quick_sizes = {"
          "'num_sessions': 300, 'num_episodes': 24, 'num_logged_sessions': 24,"
          " 'quantize_episodes': 8, 'ahdqn_iterations': 2,"
          " 'dqn_iterations': 2, 'initial_collect_steps': 64,"
          " 'agent_eval_episodes': 8, 'max_epochs': 1}",
          "--gin_bindings", "evaluate_policies.n_bootstrap = 20",
          "--gin_bindings", "train_eval.env_batch_size = 8",
          "--gin_bindings", "train_eval.eval_batch_size = 8",
          "--gin_bindings", "train_eval.batch_size = 16", *extra)


@pytest.mark.slow
def test_pipeline_quick_with_agents(tmp_path):
  out = _run(*_quick_args(tmp_path))
  assert out.returncode == 0, out.stderr
  policies = ["random", "popularity", "cosine", "greedy", "ahdqn", "dqn"]
  _check_evaluation(tmp_path, policies + [
      *DEFAULT_STOCHASTIC], list(DEFAULT_STOCHASTIC))
  for name in policies:
    assert name in out.stdout
  assert (tmp_path / "ahdqn" / "policy" / "saved_model.pb").exists()
  assert "report  ->" in out.stdout
  # Each agent against greedy-by-model, episode by episode, in both worlds.
  paired = json.loads((tmp_path / "evaluation.json").read_text())["paired"]
  assert set(paired) == {"ahdqn", "dqn"}
  for by_env in paired.values():
    assert set(by_env) == {"simulator", "world"}


def test_pipeline_quick_without_agents(tmp_path):
  out = _run(*_quick_args(
      tmp_path, "--gin_bindings", "run_pipeline.agents = ()",
      "--gin_bindings", "evaluate_policies.stochastic = "
      "('logging', 'softmax_t0.08', 'softmax_t0.6')"))
  assert out.returncode == 0, out.stderr
  _check_evaluation(tmp_path, ["random", "popularity", "cosine", "greedy",
                               "logging", "softmax_t0.08", "softmax_t0.6"],
                    ["logging", "softmax_t0.08", "softmax_t0.6"])
  summary = json.loads((tmp_path / "pipeline.json").read_text())
  assert "agreement" in summary and "int8" in summary["quantization"]
  # The int8 simulator's folder holds the leaving model, and the
  # evaluation's simulator used it.
  evaluation = json.loads((tmp_path / "evaluation.json").read_text())
  assert evaluation["leaving_model"] == json.loads(
      (tmp_path / "quantized" / "leaving_model.json").read_text())
  # Every stage splits by user: the model's metrics are on held-out users.
  assert summary["split_by"] == summary["user_model"]["split_by"] == "user"
  # ... and quantisation and the evaluation held out the same users.
  quantization = json.loads(
      (tmp_path / "quantized" / "quantization_report.json").read_text())
  assert (summary["split"] == summary["user_model"]["split"] ==
          quantization["split"] == evaluation["split"])


def test_pipeline_killed_after_its_stages_reuses_them_and_overwrite_reruns_them(
    tmp_path):
  args = _quick_args(tmp_path, "--gin_bindings",
                     "run_pipeline.agents = ('ahdqn',)",
                     "--gin_bindings", "evaluate_policies.stochastic = ()",
                     "--gin_bindings", "evaluate_policies.report = False")
  first = _run(*args)
  assert first.returncode == 0, first.stderr
  # A SIGKILL after the last stage, before the run was marked finished:
  # the manifest still says running, its process is gone.
  manifest = json.loads((tmp_path / "run.json").read_text())
  manifest.update(status="running", pid=2 ** 22 + 1)
  (tmp_path / "run.json").write_text(json.dumps(manifest))
  policy = tmp_path / "ahdqn" / "policy" / "saved_model.pb"
  trained = policy.stat().st_mtime_ns
  again = _run(*args)
  assert again.returncode == 0, again.stderr
  # The same command in a new process: every stage is the same stage (its
  # hashed config, the agent config's text included), so none runs again.
  for stage in ("logs", "user_model", "quantize", "ahdqn"):
    assert f"{stage}: reusing the finished stage" in again.stderr + again.stdout
  assert policy.stat().st_mtime_ns == trained
  # --overwrite reaches the stages: each runs again, from an empty folder.
  rerun = _run(*args, "--overwrite")
  assert rerun.returncode == 0, rerun.stderr
  assert "reusing the finished stage" not in rerun.stderr + rerun.stdout
  assert policy.stat().st_mtime_ns > trained
  seconds = json.loads((tmp_path / "pipeline.json").read_text())["seconds"]
  assert all(seconds[stage] > 0 for stage in ("logs", "user_model", "ahdqn"))
