"""Smoke runs of scripts/train_user_model.py on tiny logs, as a user runs it."""

import json
import os
import subprocess
import sys

import gin
import pytest

import playlist_sim.data.leaving
import user_models
from playlist_sim.common import runs
from playlist_sim.jobs.log_generation import generate_logs
from tests.conftest import REPO_ROOT
from user_models import training

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration

TINY_WORLD = "SyntheticWorld.num_tracks = 400"


@pytest.fixture(scope="module")
def logs_dir(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("tiny_logs"))
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config(TINY_WORLD)
  generate_logs(root, num_sessions=300, progress=False)
  gin.clear_config()
  return root


def _train(kind, logs, root_dir, *bindings):
  cmd = [sys.executable, "scripts/train_user_model.py", "--gin_file",
         f"configs/user_model_{kind}.gin", "--logs_dir", logs, "--root_dir",
         str(root_dir), "--gin_bindings", TINY_WORLD, "--gin_bindings",
         "train_user_model.max_epochs = 1"]
  for binding in bindings:
    cmd += ["--gin_bindings", binding]
  return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True,
                        timeout=600)


@pytest.mark.parametrize("kind", ["cwm", "swm"])
def test_script_writes_model_metrics_plot_and_config(logs_dir, tmp_path,
                                                     kind):
  out = _train(kind, logs_dir, tmp_path)
  assert out.returncode == 0, out.stderr
  assert f"{kind}: held-out auc" in out.stdout
  for name in ("user_model.keras", "metrics.json", "reliability.png",
               "operative_config.gin", "leaving_model.json"):
    assert (tmp_path / name).is_file(), name
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  for key in ("auc", "log_loss", "ece", "bayes_auc", "bayes_log_loss",
              "bayes_ece", "train_seconds", "epochs"):
    assert key in metrics, key
  # The SWM trains in two stages (its CWM part, then its sequence layers).
  assert metrics["model_type"] == kind
  assert metrics["epochs"] == (1 if kind == "cwm" else 2)
  if kind == "swm":
    assert "cwm_stage_log_loss" in metrics
    # Held out by session, the sequence stage plays known listeners.
    assert metrics["swm_stage_as_unknown_users"] is False
  assert 0.5 < metrics["bayes_auc"] < 1.0
  # The session end of the learned simulator, fitted on the training
  # sessions (positions 10..19 of logs kept at >= 10 tracks, cut at 20).
  leaving = playlist_sim.data.leaving.load_leaving_model(
      str(tmp_path / "leaving_model.json"))
  assert metrics["leaving_model"]["coefficients"] == list(
      leaving.coefficients)
  assert (leaving.min_position, leaving.max_position) == (10, 19)
  # The file serves in the environment as it is.
  user_models.KerasUserModel(str(tmp_path / "user_model.keras"),
                             os.path.join(logs_dir, "tracks.parquet"))
  # The Challenge's scores, and the stand-alone script finds the same
  # held-out sessions from the model's metrics.json.
  assert "skip prediction (held-out second halves)" in out.stdout
  sp = metrics["skip_prediction"]
  assert sp["num_sessions"] == metrics["num_held_out_sessions"]
  evaluated = subprocess.run(
      [sys.executable, "scripts/evaluate_skip_prediction.py", "--logs_dir",
       logs_dir, "--model", str(tmp_path / "user_model.keras"),
       "--root_dir", str(tmp_path / "eval")],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
  assert evaluated.returncode == 0, evaluated.stderr
  assert "repeat last skip" in evaluated.stdout
  again = json.loads((tmp_path / "eval" / "skip_prediction.json").read_text())
  assert (tmp_path / "eval" / "operative_config.gin").is_file()
  for key in ("mean_average_accuracy", "first_prediction_accuracy"):
    assert again[key] == pytest.approx(sp[key], abs=1e-6)
    assert again["repeat_last_skip"][key] == sp["repeat_last_skip"][key]
    assert again["majority_class"][key] == sp["majority_class"][key]


def test_an_swm_held_out_by_user_fits_its_sequence_as_new_listeners(
    logs_dir, tmp_path):
  out = _train("swm_users", logs_dir, tmp_path)
  assert out.returncode == 0, out.stderr
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  assert metrics["swm_stage_as_unknown_users"] is True
  assert metrics["split_by"] == "user"


def test_logs_from_another_world_get_no_bayes_figures(logs_dir, tmp_path):
  other = user_models.ParametricListener(
      user_models.SyntheticWorld(num_tracks=400, seed=3))
  metrics = training.train_user_model(str(tmp_path), logs_dir, max_epochs=1,
                                      progress=False, true_user_model=other)
  assert "bayes_auc" not in metrics
  assert "another world" in metrics["bayes_unavailable"]
  bigger = user_models.ParametricListener(
      user_models.SyntheticWorld(num_tracks=500))
  reason, = training.true_probabilities(
      bigger, training.prepare_inputs(logs_dir).data, None)[1:]
  assert "track ids" in reason


def test_missing_logs_are_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="generate_logs"):
    training.train_user_model(str(tmp_path / "out"), str(tmp_path))


@pytest.mark.parametrize("kind", ["cwm", "swm", "cwm_users", "swm_users"])
def test_configs_parse_and_choose_the_model(kind):
  runs.parse_gin([os.path.join(REPO_ROOT, "configs",
                               f"user_model_{kind}.gin")], [])
  model, _, split = kind.partition("_")
  assert gin.query_parameter("train_user_model.model_type") == model
  if split:
    assert gin.query_parameter("train_user_model.split_by") == "user"
