"""Fixtures shared by the user-model tests: tiny logs and models, once."""

import os

import gin
import pytest

from playlist_sim.jobs.log_generation import generate_logs
from tests.conftest import REPO_ROOT
from user_models import training


@pytest.fixture(scope="session")
def tiny_trained(tmp_path_factory):
  """Tiny logs (300 sessions, 400 tracks) and a CWM and an SWM trained on
  them for one epoch (per stage), shared by the serving and quantisation
  tests.

  Returns:
    {"logs", "sessions", "tracks": paths, "cwm", "swm": .keras paths}.
  """
  root = tmp_path_factory.mktemp("tiny_user_models")
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
