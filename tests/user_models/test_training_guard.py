"""User-model training fails loudly on a non-finite loss."""

import json
import os

import gin
import pytest

from playlist_sim.jobs.log_generation import generate_logs
from tests.conftest import REPO_ROOT
from user_models import training


@pytest.fixture(scope="module")
def small_logs(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("guard_logs"))
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config("SyntheticWorld.num_tracks = 100")
  generate_logs(root, num_sessions=40, progress=False)
  gin.clear_config()
  return root


def test_a_diverging_fit_raises_and_writes_no_metrics(small_logs, tmp_path):
  root = tmp_path / "cwm"
  with pytest.raises(training.NonFiniteLossError, match="loss.*learning_rate"):
    training.train_user_model(str(root), small_logs, model_type="cwm",
                              max_epochs=1, learning_rate=1e38,
                              progress=False)
  assert not os.path.exists(root / "metrics.json")


def test_no_json_the_package_writes_holds_nan(tmp_path):
  from playlist_sim.common.io_utils import write_json
  import numpy as np
  write_json(tmp_path / "m.json", {"auc": float("nan"), "curve": np.array(
      [1.0, np.inf]), "n": np.int64(3)})
  text = (tmp_path / "m.json").read_text()
  assert "NaN" not in text and "Infinity" not in text
  assert json.loads(text) == {"auc": None, "curve": [1.0, None], "n": 3}
