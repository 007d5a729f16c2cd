"""Model files are data: crafted `.keras` archives are refused unread."""

import json
import zipfile

import pytest

import user_models
from tests.user_models import crafted_models as crafted
from user_models import _keras2  # noqa: F401  (before TensorFlow)
from user_models import features, keras_models
from user_models.features import FeatureTables
from user_models.keras_user_model import load_user_model, save_user_model
from user_models.model_files import check_keras_archive

import tensorflow as tf  # pylint: disable=g-import-not-at-top,g-bad-import-order

LoadErr = user_models.UserModelLoadError


@pytest.fixture(scope="module")
def spec():
  world = user_models.SyntheticWorld(num_tracks=20, num_users=5, seed=0)
  return FeatureTables(world.catalog).spec(8, features.HISTORY_WINDOW)


def test_the_crafted_attack_writes_a_file_through_plain_tf_keras(tmp_path):
  # Shows the attack is real: Keras' own safe mode lets it write the file.
  target = tmp_path / "owned.pth"
  path = crafted.write_archive(tmp_path / "m.keras", crafted.with_layers(
      crafted.write_file_layer(str(target))))
  with pytest.raises(Exception):
    tf.keras.models.load_model(path, compile=False, safe_mode=True)
  assert target.read_text() == "import os\n"


@pytest.mark.parametrize("layer,names", [
    (lambda t: crafted.write_file_layer(str(t / "owned.pth")),
     "tf.io.write_file.*TFOpLambda"),
    (lambda t: crafted.lambda_layer(), "sneaky.*Lambda"),
    (lambda t: crafted.unknown_class(), "backdoor.*Backdoor"),
], ids=["tfoplambda_write_file", "lambda", "unknown_class"])
def test_crafted_layers_are_refused_and_run_nothing(tmp_path, layer, names):
  path = crafted.write_archive(tmp_path / "m.keras",
                               crafted.with_layers(layer(tmp_path)))
  with pytest.raises(LoadErr, match=names):
    load_user_model(path)
  assert not (tmp_path / "owned.pth").exists()


def test_a_nested_model_hiding_the_attack_is_refused(tmp_path):
  target = tmp_path / "owned.pth"
  path = crafted.write_archive(tmp_path / "m.keras", crafted.nested_model(
      crafted.write_file_layer(str(target))))
  with pytest.raises(LoadErr, match="inner/tf.io.write_file.*TFOpLambda"):
    load_user_model(path)
  assert not target.exists()


def test_a_constant_inbound_node_on_an_allowed_layer_is_refused(tmp_path):
  layer = crafted.write_file_layer(str(tmp_path / "owned.pth"))
  layer.update(class_name="Dense", registered_name=None)
  del layer["config"]["function"]
  path = crafted.write_archive(tmp_path / "m.keras",
                               crafted.with_layers(layer))
  with pytest.raises(LoadErr, match="_CONSTANT_VALUE"):
    load_user_model(path)


def test_an_allowed_class_from_a_foreign_module_is_refused(tmp_path):
  config = crafted.plain_config()
  config["config"]["layers"][1]["module"] = "evil.layers"
  path = crafted.write_archive(tmp_path / "m.keras", config)
  with pytest.raises(LoadErr, match="cwm/probs'.*Dense.*evil.layers"):
    load_user_model(path)


def test_unexpected_archive_entries_are_refused(tmp_path):
  path = crafted.write_archive(tmp_path / "m.keras", crafted.plain_config())
  with zipfile.ZipFile(path, "a") as archive:
    archive.writestr("payload.py", "import os")
  with pytest.raises(LoadErr, match="payload.py"):
    check_keras_archive(path)


@pytest.mark.parametrize("kind", ["cwm", "swm"])
def test_the_package_models_pass_the_allowlist(tmp_path, spec, kind):
  build = keras_models.build_cwm if kind == "cwm" else keras_models.build_swm
  kwargs = dict(state_dropout=0.1, sequence_l2=0.01) if kind == "swm" else {}
  model = build(spec, user_vocab=5, hidden_units=(4,), **kwargs)
  path = save_user_model(model, tmp_path / "m.keras")
  check_keras_archive(path)
  assert load_user_model(path).name == kind
  config = json.loads(zipfile.ZipFile(path).read("config.json"))
  assert config["config"]["name"] == kind
