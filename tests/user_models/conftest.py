"""Fixtures shared by the user-model tests: tiny logs and models, once."""

import json
import os

import filelock
import gin
import pytest

from playlist_sim.jobs.log_generation import generate_logs
from tests.conftest import REPO_ROOT
from user_models import training


@pytest.fixture(scope="session")
def tiny_trained(tmp_path_factory, worker_id):
  """Tiny logs (300 sessions, 400 tracks) and a CWM and an SWM trained on
  them for one epoch (per stage), shared by the serving and quantisation
  tests.

  Built once per test run: under pytest-xdist the first worker to need them
  builds them in the run's shared temporary folder, under a file lock, and
  the others read them (the pattern of pytest-xdist's docs, "Making
  session-scoped fixtures execute only once").

  Returns:
    {"logs", "sessions", "tracks": paths, "cwm", "swm": .keras paths}.
  """
  if worker_id == "master":
    return _build_tiny(tmp_path_factory.mktemp("tiny_user_models"))
  root = tmp_path_factory.getbasetemp().parent / "tiny_user_models"
  with filelock.FileLock(str(root) + ".lock"):
    done = root / "paths.json"
    if done.is_file():
      return json.loads(done.read_text())
    paths = _build_tiny(root)
    done.write_text(json.dumps(paths))
  return paths


def _build_tiny(root) -> dict:
  logs_dir = str(root / "logs")
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config("SyntheticWorld.num_tracks = 400")
  generate_logs(logs_dir, num_sessions=300, progress=False)
  gin.clear_config()
  paths = {"logs": logs_dir,
           "sessions": os.path.join(logs_dir, "sessions.parquet"),
           "tracks": os.path.join(logs_dir, "tracks.parquet")}
  for kind in ("cwm", "swm"):
    metrics = training.train_user_model(str(root / kind), logs_dir,
                                        model_type=kind, max_epochs=1,
                                        progress=False)
    paths[kind] = metrics["model_path"]
  gin.clear_config()
  return paths
