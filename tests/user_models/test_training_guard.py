"""User-model training fails loudly on a non-finite loss or a bad ensemble,
and saves an ensemble as one CWM."""

import json
import os

import gin
import pytest

from playlist_sim.jobs.log_generation import generate_logs
from tests.conftest import REPO_ROOT
from user_models import keras_models, keras_user_model, training


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


@pytest.mark.parametrize("size, model_type, match", [
    (0, "cwm", "ensemble_size"), (2.5, "cwm", "ensemble_size"),
    (17, "cwm", "ensemble_size"), (2, "swm", "needs model_type 'cwm'")])
def test_a_bad_ensemble_is_refused_before_anything_is_written(
    small_logs, tmp_path, size, model_type, match):
  root = tmp_path / "model"
  with pytest.raises(ValueError, match=match):
    training.train_user_model(str(root), small_logs, model_type=model_type,
                              ensemble_size=size, progress=False)
  assert not os.path.exists(root)


@pytest.mark.integration
def test_an_ensemble_is_saved_as_one_cwm_with_its_members_metrics(
    small_logs, tmp_path):
  metrics = training.train_user_model(
      str(tmp_path / "ens"), small_logs, ensemble_size=2, max_epochs=1,
      hidden_units=(8,), progress=False)
  assert metrics["ensemble_size"] == 2
  assert metrics["ensemble_member_seeds"] == [0, 1]
  loaded = keras_user_model.load_user_model(metrics["model_path"])
  assert keras_models.model_kind(loaded) == "cwm"
  assert len(keras_models.ensemble_members(loaded)) == 2
  assert not os.path.exists(tmp_path / "ens" / "fit_backup")
