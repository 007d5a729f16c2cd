"""Smoke runs of scripts/simulate.py, as a user runs it."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO_ROOT

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration


def _simulate(root_dir, *extra):
  cmd = [sys.executable, "scripts/simulate.py", "--gin_file",
         "configs/simulate.gin", "--num_episodes", "20", "--seed", "0",
         "--root_dir", str(root_dir), *extra]
  return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True,
                        timeout=300)


@pytest.mark.parametrize("policy", ["random", "popularity"])
def test_simulate_writes_episodes_and_metrics(tmp_path, policy):
  out = _simulate(tmp_path, "--policy", policy)
  assert out.returncode == 0, out.stderr
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  for key in ("mean_return", "mean_length", "skip_rate", "termination_counts",
              "consecutive_skip_limit", "max_playlist_length"):
    assert key in metrics
  assert metrics["num_episodes"] == 20
  assert sum(metrics["termination_counts"].values()) == 20
  assert pq.read_table(tmp_path / "episodes.parquet").num_rows > 0
  assert os.path.exists(tmp_path / "operative_config.gin")


def test_simulate_same_seed_same_files(tmp_path):
  for name in ("a", "b"):
    assert _simulate(tmp_path / name).returncode == 0
  for f in ("episodes.parquet", "metrics.json"):
    a = (tmp_path / "a" / f).read_bytes()
    b = (tmp_path / "b" / f).read_bytes()
    if f == "metrics.json":  # Timing figures differ; the rest must not.
      a, b = (json.loads(x) for x in (a, b))
      for m in (a, b):
        m.pop("env_steps_per_s"); m.pop("episodes_path")
    assert a == b


def test_simulate_rejects_unknown_policy_and_binding(tmp_path):
  out = _simulate(tmp_path, "--policy", "telepathy")
  assert out.returncode != 0 and "telepathy" in out.stderr
  out = _simulate(tmp_path, "--gin_bindings", "Nope.x = 1")
  assert out.returncode != 0 and "Nope.x" in out.stderr
