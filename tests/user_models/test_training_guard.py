"""User-model training fails loudly on a non-finite loss or a bad ensemble,
saves an ensemble as one CWM, and distils one into a plain CWM."""

import json
import os

import gin
import numpy as np
import pytest

from playlist_sim.jobs.log_generation import generate_logs
from tests.conftest import REPO_ROOT
from user_models import features, fitting, keras_models, keras_user_model
from user_models import training

import tensorflow as tf  # pylint: disable=g-bad-import-order


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


def test_distilling_without_an_ensemble_is_refused_before_anything_is_written(
    small_logs, tmp_path):
  root = tmp_path / "model"
  with pytest.raises(ValueError, match="distill = True needs ensemble_size"):
    training.train_user_model(str(root), small_logs, distill=True,
                              progress=False)
  assert not os.path.exists(root)


def test_a_distilled_cwm_fits_its_teachers_probabilities(small_logs,
                                                         tmp_path):
  # A teacher that says the same thing of every row: the student must learn
  # those probabilities, not the logged levels.
  inputs = training.prepare_inputs(small_logs, "session", 0.2, 0.1, 0, True,
                                   0.05)
  target = np.array([0.1, 0.15, 0.05, 0.2, 0.5], np.float32)
  assert len(target) == features.NUM_LEVELS
  width = training.model_inputs(inputs, "cwm")["x"].shape[1]
  teacher = tf.keras.Sequential([
      tf.keras.Input((width,)),
      tf.keras.layers.Dense(
          len(target), activation="softmax", kernel_initializer="zeros",
          bias_initializer=tf.keras.initializers.Constant(
              np.log(target)))])
  student = fitting.train_cwm(
      inputs, str(tmp_path), 0, dict(max_epochs=25, patience=25,
                                     lr_patience=25, verbose=0),
      learning_rate=3e-2, batch_size=512, teacher=teacher, embedding_dim=4,
      user_l2=0.0, tower_units=8, hidden_units=(8,))
  assert np.abs(student.probs.mean(axis=0) - target).max() < 0.03
  logged = np.bincount(inputs.data.levels, minlength=len(target)) / len(
      inputs.data.levels)
  assert np.abs(logged - target).max() > 0.1  # The labels would not do.


@pytest.mark.integration
def test_a_distilled_ensemble_is_saved_as_one_plain_cwm(small_logs, tmp_path):
  metrics = training.train_user_model(
      str(tmp_path / "dist"), small_logs, ensemble_size=2, distill=True,
      max_epochs=1, hidden_units=(8,), progress=False)
  loaded = keras_user_model.load_user_model(metrics["model_path"])
  assert keras_models.model_kind(loaded) == "cwm"
  assert keras_models.ensemble_members(loaded) == []
  record = metrics["distillation"]
  assert record["ensemble_member_seeds"] == [0, 1]
  assert 0.0 <= record["teacher_auc"] <= 1.0
  assert record["student_epochs"] == 1
  assert metrics["epochs"] == 1  # The saved model's own: the student's.
