"""Smoke tests of scripts/benchmark.py, run as a subprocess like a user would.

The script defines absl flags at import time, so it is not imported here (a
second script with the same flag names in this process would clash).
"""

import json
import os
import subprocess
import sys

_REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_SCRIPT = os.path.join(_REPO_DIR, "scripts", "benchmark.py")


def _run(*args: str) -> subprocess.CompletedProcess:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, _SCRIPT, *args], cwd=_REPO_DIR,
                        env=env, capture_output=True, text=True, timeout=120)


def test_env_part_writes_rates_machine_and_gin_config(tmp_path):
  root = tmp_path / "bench"
  proc = _run("--root_dir", str(root), "--only", "env", "--seconds", "0.05",
              "--warmup_seconds", "0.01", "--batch_sizes", "1,4", "--seed",
              "3", "--gin_file", os.path.join(_REPO_DIR, "configs",
                                              "simulate.gin"))
  assert proc.returncode == 0, proc.stderr[-3000:]

  result = json.loads((root / "benchmark.json").read_text())
  rates = result["env_steps_per_s"]
  assert sorted(rates) == ["1", "4"]
  for row in rates.values():
    for key in ("batched", "list", "ratio"):
      assert isinstance(row[key], float) and row[key] > 0, (key, row)
    assert abs(row["ratio"] - row["batched"] / row["list"]) < 1e-9
  for key in ("cpu_count", "platform", "python", "numpy", "tensorflow"):
    assert result["machine"][key], key
  assert result["settings"]["batch_sizes"] == [1, 4]
  assert result["settings"]["seed"] == 3

  operative = (root / "operative_config.gin").read_text()
  assert "PlaylistEnvironment.max_playlist_length = 30" in operative
  assert "EnvironmentBuilder.user_model" in operative
  config = (root / "config.gin").read_text()
  assert "RandomEpisodeSampler.max_pool_size = 100" in config
  assert not [p for p in os.listdir(root) if p.endswith(".tmp")]

  assert "batched steps/s" in proc.stdout
  assert "env B=4 list" in proc.stderr  # One progress line per measurement.


def test_bad_batch_sizes_is_a_usage_error(tmp_path):
  proc = _run("--root_dir", str(tmp_path), "--batch_sizes", "1,0")
  assert proc.returncode != 0
  assert "--batch_sizes must be positive" in proc.stderr
  assert not (tmp_path / "benchmark.json").exists()
