"""train_user_model with selection weights: on by default for selected logs,
recorded in metrics.json with weighted held-out metrics; off on request
(exactly the unweighted fit); a clear error when asked for on logs that are
not selected."""

import json
import os

import gin
import pytest

from playlist_sim.data.selection import SelectionError
from playlist_sim.jobs.log_generation import generate_logs
from tests.conftest import REPO_ROOT
from user_models import training


def _metrics(model_path):
  with open(os.path.join(os.path.dirname(model_path), "metrics.json"),
            encoding="utf-8") as f:
    return json.load(f)


@pytest.mark.parametrize("kind", ["cwm", "swm"])
def test_selected_logs_train_with_row_weights_by_default(tiny_trained, kind):
  info = _metrics(tiny_trained[kind])["selection_weighting"]
  assert info["enabled"] and info["requested"] is None
  # The fixture's logs come from the job function, which writes no summary
  # file: the selection is detected (no session shorter than 10).
  assert (info["min_session_length"], info["selection_source"]) == (
      10, "detected")
  assert info["consecutive_skip_limit"] >= 1
  assert 0.0 < info["survival_min"] <= info["survival_mean"] < 1.0
  assert info["weight_max"] <= info["cap"] + 1e-12
  assert info["weight_mean"] == pytest.approx(1.0, abs=0.1)
  assert 0.0 < info["effective_sample_share"] <= 1.0
  held = info["held_out"]
  assert 0.0 < held["auc"] < 1.0 and 0.0 <= held["ece"] < 1.0
  assert held["log_loss"] > 0.0


def test_weighting_off_on_request_and_an_error_on_unselected_logs(
    tiny_trained, tmp_path):
  metrics = training.train_user_model(
      str(tmp_path / "off"), tiny_trained["logs"], max_epochs=1,
      selection_weighting=False, progress=False)
  info = metrics["selection_weighting"]
  assert not info["enabled"] and "turned off" in info["reason"]
  assert "held_out" not in info
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config("SyntheticWorld.num_tracks = 400")
  logs_dir = str(tmp_path / "all_logs")
  generate_logs(logs_dir, num_sessions=200, min_session_length=1,
                progress=False)
  gin.clear_config()
  with pytest.raises(SelectionError, match="not selected on length"):
    training.train_user_model(str(tmp_path / "on"), logs_dir, max_epochs=1,
                              selection_weighting=True, progress=False)
