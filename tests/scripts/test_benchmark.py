"""Smoke tests of scripts/benchmark.py, run as a subprocess like a user would.

The script defines absl flags at import time, so it is not imported here (a
second script with the same flag names in this process would clash).
"""

import json
import os
import subprocess
import sys

import pytest

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration

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


def test_agent_parts_write_their_keys(tmp_path):
  root = tmp_path / "bench"
  proc = _run("--root_dir", str(root), "--only", "ahdqn,train,replay",
              "--pool_sizes", "5,20", "--decision_calls", "3",
              "--train_steps", "2", "--train_batch_size", "8",
              "--replay_pool_size", "50", "--gin_bindings",
              "SyntheticWorld.num_tracks = 300", "--gin_bindings",
              "RandomEpisodeSampler.max_pool_size = 20")
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads((root / "benchmark.json").read_text())
  assert sorted(result["ahdqn_decision_ms"]) == ["20", "5"]
  assert all(ms > 0 for ms in result["ahdqn_decision_ms"].values())
  assert result["train_steps_per_s"] > 0
  assert result["train_measurements"]["num_steps"] == 2
  replay = result["replay_measurements"]
  # Ids, not features: doubling the feature width costs nothing.
  assert replay["stored_at_double_feature_width"] == \
      result["replay_bytes_per_transition"]
  assert replay["spec"] <= result["replay_bytes_per_transition"]
  assert result["settings"]["parts"] == ["ahdqn", "train", "replay"]
  assert "AH-DQN greedy decision" in proc.stdout


def test_unknown_part_is_a_usage_error(tmp_path):
  proc = _run("--root_dir", str(tmp_path), "--only", "env,nope")
  assert proc.returncode != 0
  assert "unknown parts ['nope']" in proc.stderr


@pytest.mark.slow  # Starts Ray: ~30-60 s.
def test_ray_part_reports_speedup_and_identical_returns(tmp_path):
  root = tmp_path / "bench"
  proc = _run("--root_dir", str(root), "--only", "ray", "--ray_episodes",
              "8", "--ray_collection_steps", "2",
              "--ray_collection_batch_size", "3", "--gin_bindings",
              "SyntheticWorld.num_tracks = 300")
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads((root / "benchmark.json").read_text())
  assert result["ray_speedup"] > 0
  assert result["ray_measurements"]["identical"] is True
  assert result["ray_measurements"]["ray_startup_seconds"] > 0
  assert result["ray_measurements"]["collection_identical"] is True
  assert result["ray_measurements"]["collection_speedup"] > 0


def test_read_logs_part_reports_seconds_and_peak_memory(tmp_path):
  root = tmp_path / "bench"
  proc = _run("--root_dir", str(root), "--only", "read_logs", "--read_rows",
              "300", "--read_tracks", "50", "--read_large_rows", "0")
  assert proc.returncode == 0, proc.stderr[-3000:]
  measured = json.loads((root / "benchmark.json").read_text())["read_logs"]
  assert list(measured) == ["300"]
  m = measured["300"]
  assert (m["rows"], m["columns"], m["tracks"]) == (300, 21, 50)
  assert m["read_seconds"] > 0
  assert m["peak_rss_mib"] >= m["rss_after_imports_mib"] > 0
  assert "log_mini's size in < 10 s" in proc.stdout
  assert not os.listdir(root / "read_logs")  # Generated files removed.


def test_collect_workers_part_writes_rates_per_worker_count(tmp_path):
  root = tmp_path / "bench"
  proc = _run("--root_dir", str(root), "--only", "collect_workers",
              "--collect_workers", "0", "--collect_workers_steps", "2",
              "--collect_workers_batch_size", "4")
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads((root / "benchmark.json").read_text())
  assert list(result["collect_workers_row_steps_per_s"]) == ["0"]
  assert result["collect_workers_row_steps_per_s"]["0"] > 0
  measured = result["collect_workers_measurements"]
  assert measured["batch_size"] == 4 and measured["steps_per_row"] == 2
  assert measured["ratio_to_in_process"] == {"0": 1.0}


def test_negative_collect_workers_is_a_usage_error(tmp_path):
  proc = _run("--root_dir", str(tmp_path), "--only", "collect_workers",
              "--collect_workers", "0,-1")
  assert proc.returncode != 0
  assert "--collect_workers must be >= 0" in proc.stderr
  assert not (tmp_path / "benchmark.json").exists()
