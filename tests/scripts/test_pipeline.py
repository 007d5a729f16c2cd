"""Smoke runs of the world scripts, as a user runs them.

The main job (scripts/pipeline.py) is tested in test_evaluate.py.
"""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration


def _run(*args):
  return subprocess.run([sys.executable, *args], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=600)


def test_order_matters_small(tmp_path):
  out = _run("scripts/order_matters.py", "--root_dir", str(tmp_path),
             "--num_episodes", "40", "--batch_size", "16", "--gin_bindings",
             "SyntheticWorld.num_tracks = 500")
  assert out.returncode == 0, out.stderr
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  assert metrics["difference_ci95"][0] <= metrics["difference_ci95"][1]
  assert "lookahead vs greedy" in out.stdout
