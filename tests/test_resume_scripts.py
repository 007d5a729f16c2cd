"""generate_logs.py and train_user_model.py killed with SIGKILL and run again.

generate_logs.py restarts a killed run from scratch (same bytes, nothing
appended, no half file), leaves a finished root_dir untouched when run again
(and refuses other sizes there without --overwrite);
train_user_model.py resumes fit from its last finished epoch
(`BackupAndRestore` under root_dir/fit_backup, removed on success).
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import gin
import pyarrow.parquet as pq
import pytest

from playlist_sim.jobs import log_generation
from playlist_sim.jobs.log_generation import LogsExistError, prepare_log_dir
from tests.conftest import REPO_ROOT

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration

_LOG_FILES = ("sessions.parquet", "tracks.parquet")


def _digests(root):
  return {name: hashlib.sha256((root / name).read_bytes()).hexdigest()
          for name in _LOG_FILES}


def _generate_cmd(root, *extra):
  return [sys.executable, "scripts/generate_logs.py", "--root_dir", str(root),
          "--seed", "5", "--gin_bindings", "generate_logs.num_sessions = 3000",
          "--gin_bindings", "SyntheticWorld.num_tracks = 500",
          "--gin_bindings", "generate_logs.progress = False", *extra]


def _kill_when(proc, condition, timeout=300.0):
  """SIGKILLs proc as soon as condition() holds; True if it was killed."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline and proc.poll() is None:
    if condition():
      proc.send_signal(signal.SIGKILL)
      proc.wait()
      return True
    time.sleep(0.01)
  return False


def test_prepare_log_dir_cleans_a_killed_run_and_guards_a_finished_one(
    tmp_path):
  assert not prepare_log_dir(str(tmp_path))  # Empty: a fresh run.
  (tmp_path / ".sessions.parquet.abc.tmp").write_bytes(b"half")
  (tmp_path / "tracks.parquet").write_bytes(b"whole")
  assert prepare_log_dir(str(tmp_path))  # Unfinished: start over.
  assert not (tmp_path / ".sessions.parquet.abc.tmp").exists()
  (tmp_path / "sessions.parquet").write_bytes(b"whole")
  (tmp_path / "metrics.json").write_text("{}")
  with pytest.raises(LogsExistError, match="--overwrite") as error:
    prepare_log_dir(str(tmp_path))
  assert str(tmp_path) in str(error.value)
  # Overwriting makes the folder unfinished until the new run completes.
  assert not prepare_log_dir(str(tmp_path), overwrite=True)
  assert not (tmp_path / "metrics.json").exists()


def test_generate_logs_killed_mid_write_restarts_to_the_same_bytes(tmp_path):
  root = tmp_path / "logs"
  proc = subprocess.Popen(_generate_cmd(root), cwd=REPO_ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  # Kill while a file is being written (its temp file exists), or at the
  # latest once tracks.parquet (written first) is in place.
  killed = _kill_when(proc, lambda: root.is_dir() and any(
      p.name.endswith(".tmp") or p.name == "tracks.parquet"
      for p in root.iterdir()))
  assert killed, "the run ended before it could be killed"
  for name in _LOG_FILES:  # Whatever is there under a final name is whole.
    if (root / name).exists():
      pq.read_table(root / name)
  assert not (root / "metrics.json").exists()

  rerun = subprocess.run(_generate_cmd(root), cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]
  first = _digests(root)
  metrics = json.loads((root / "metrics.json").read_text())
  assert pq.read_table(root / "sessions.parquet").num_rows == metrics[
      "num_rows"]  # Nothing appended.

  # Run again: it says so, succeeds, and changes no byte (run.json included).
  everything = {p.name: p.read_bytes() for p in root.iterdir()}
  rerun = subprocess.run(_generate_cmd(root), cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert "already holds this finished generate_logs run" in rerun.stderr
  assert {p.name: p.read_bytes() for p in root.iterdir()} == everything
  # Other sizes into the finished logs: refused, one line, the package's own.
  refused = subprocess.run(
      _generate_cmd(root, "--gin_bindings",
                    "generate_logs.num_sessions = 3001"), cwd=REPO_ROOT,
      capture_output=True, text=True, timeout=300)
  assert refused.returncode == 2
  assert "RunFolderError" in refused.stderr and str(root) in refused.stderr
  assert "another configuration" in refused.stderr

  again = subprocess.run(_generate_cmd(root, "--overwrite"), cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300)
  assert again.returncode == 0, again.stderr[-3000:]
  assert _digests(root) == first  # An uninterrupted run: the same bytes.


@pytest.fixture(scope="module")
def tiny_logs(tmp_path_factory):
  # The simple world: its 300 sessions give AUCs steady enough for the
  # resumed-vs-uninterrupted comparison (the calibrated world's skips are
  # harder to predict, and two fits of 300 sessions differ by ~0.03 there).
  root = str(tmp_path_factory.mktemp("tiny_logs"))
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs",
                                     "world_simple.gin"))
  gin.parse_config("SyntheticWorld.num_tracks = 400")
  log_generation.generate_logs(root, num_sessions=300, progress=False)
  gin.clear_config()
  return root


def _train_cmd(logs, root_dir):
  cmd = [sys.executable, "-u", "scripts/train_user_model.py", "--gin_file",
         "configs/user_model_cwm.gin", "--logs_dir", logs, "--root_dir",
         str(root_dir), "--seed", "2"]
  for binding in ("SyntheticWorld.num_tracks = 400",
                  "train_user_model.max_epochs = 12",
                  "train_user_model.patience = 100",
                  "train_user_model.batch_size = 64"):
    cmd += ["--gin_bindings", binding]
  return cmd


@pytest.mark.parametrize("compare", [
    False, pytest.param(True, marks=pytest.mark.slow)])
def test_train_user_model_killed_mid_fit_resumes_from_its_backup(
    tiny_logs, tmp_path, compare):
  root = tmp_path / "um"
  log_path = tmp_path / "first.log"
  with open(log_path, "w") as log:
    proc = subprocess.Popen(_train_cmd(tiny_logs, root), cwd=REPO_ROOT,
                            stdout=log, stderr=subprocess.STDOUT)

    def two_epochs_backed_up():  # Keras prints the epoch after its backup.
      return "Epoch 3/12" in log_path.read_text()
    killed = _kill_when(proc, two_epochs_backed_up)
  assert killed, log_path.read_text()[-3000:]
  assert (root / "fit_backup").is_dir()
  assert not (root / "metrics.json").exists()

  resumed = subprocess.run(_train_cmd(tiny_logs, root), cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=600)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "Epoch 1/12" not in resumed.stdout  # It did not start over.
  # Keras deletes the backup on success (its empty folder stays).
  assert not [p for p in (root / "fit_backup").rglob("*") if p.is_file()]
  metrics = json.loads((root / "metrics.json").read_text())
  assert metrics["epochs"] == 12
  if not compare:
    return
  clean = tmp_path / "clean"
  reference = subprocess.run(_train_cmd(tiny_logs, clean), cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=600)
  assert reference.returncode == 0, reference.stderr[-3000:]
  expected = json.loads((clean / "metrics.json").read_text())
  # Same seed: the same model up to the shuffling after the resume.
  assert abs(metrics["auc"] - expected["auc"]) < 0.02
  assert abs(metrics["log_loss"] - expected["log_loss"]) < 0.02
