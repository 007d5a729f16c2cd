"""Smoke runs of the main job and the world scripts, as a user runs them."""

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT


def _run(*args):
  return subprocess.run([sys.executable, *args], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=600)


def test_pipeline_quick(tmp_path):
  out = _run("scripts/pipeline.py", "--quick", "--root_dir", str(tmp_path),
             "--gin_bindings", "run_pipeline.quick_num_episodes = 40",
             "--gin_bindings", "run_pipeline.quick_num_sessions = 300",
             "--gin_bindings", "train_user_model.max_epochs = 1",
             "--gin_bindings", "SyntheticWorld.num_tracks = 500")
  assert out.returncode == 0, out.stderr
  summary = json.loads((tmp_path / "pipeline.json").read_text())
  assert set(summary["policies"]) >= {"random", "popularity", "cosine",
                                      "greedy"}
  for policy in summary["policies"].values():
    for env_name in ("simulator", "world"):
      m = policy[env_name]
      assert m["ci_low"] <= m["mean_return"] <= m["ci_high"]
  assert "int8" in summary["quantization"]
  assert "random" in out.stdout and "->" in out.stdout
  assert (tmp_path / "logs" / "sessions.parquet").exists()


def test_order_matters_small(tmp_path):
  out = _run("scripts/order_matters.py", "--root_dir", str(tmp_path),
             "--num_episodes", "40", "--batch_size", "16", "--gin_bindings",
             "SyntheticWorld.num_tracks = 500")
  assert out.returncode == 0, out.stderr
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  assert metrics["difference_ci95"][0] <= metrics["difference_ci95"][1]
  assert "lookahead vs greedy" in out.stdout
