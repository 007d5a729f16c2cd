"""scripts/selection_check.py on tiny selected and unselected logs of one
world: the weights move the kept sessions' early skip rate towards the
unselected logs', and an unselected log passed as the selected one is named."""

import json
import os
import subprocess
import sys

import gin
import pytest

from playlist_sim.jobs.log_generation import generate_logs
from tests.conftest import REPO_ROOT

# Runs a script in a subprocess: the integration tier.
pytestmark = pytest.mark.integration


def _logs(root, min_session_length):
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config("SyntheticWorld.num_tracks = 400")
  generate_logs(root, num_sessions=1500, min_session_length=min_session_length,
                progress=False)
  gin.clear_config()
  return root


def _run(*args):
  return subprocess.run(
      [sys.executable, "scripts/selection_check.py", *args], cwd=REPO_ROOT,
      capture_output=True, text=True, check=False, timeout=600)


def test_weights_bring_the_kept_rows_towards_all_sessions(tmp_path):
  kept = _logs(str(tmp_path / "kept"), 10)
  everyone = _logs(str(tmp_path / "all"), 1)
  out = str(tmp_path / "check.json")
  done = _run("--selected_logs", kept, "--all_logs", everyone, "--json_out",
              out)
  assert done.returncode == 0, done.stderr
  with open(out, encoding="utf-8") as f:
    result = json.load(f)
  assert result["min_session_length"] == 10
  raw = result["kept_unweighted"]["by_position"]["mean"]
  weighted = result["variants"]["prior=0,cap=0.999"]["by_position"]["mean"]
  assert weighted < raw
  done = _run("--selected_logs", everyone, "--all_logs", everyone)
  assert done.returncode != 0 and "not selected on length" in done.stderr
