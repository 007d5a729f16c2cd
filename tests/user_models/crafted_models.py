"""Crafted `.keras` archives for the model-file allowlist tests.

Each helper writes a `.keras` zip that looks like a real tf-keras save
(`metadata.json`, `config.json`, `model.weights.h5`) but whose
`config.json` carries something our own models never hold. The
`io.write_file` one is built exactly as the attack in issue #18: a
`TFOpLambda` layer whose only inbound node is a `_CONSTANT_VALUE`, which
tf-keras runs eagerly while it rebuilds the graph, even in safe mode.
"""

import json
import zipfile

__all__ = ["lambda_layer", "nested_model", "plain_config", "unknown_class",
           "with_layers", "write_archive", "write_file_layer"]


def plain_config(width: int = 4) -> dict:
  """A harmless Functional config: Input -> Dense(2), named "cwm"."""
  return {
      "module": "tf_keras.src.engine.functional", "class_name": "Functional",
      "registered_name": "Functional",
      "config": {
          "name": "cwm", "trainable": True,
          "layers": [
              {"module": "keras.layers", "class_name": "InputLayer",
               "registered_name": None, "name": "features",
               "config": {"batch_input_shape": [None, width],
                          "dtype": "float32", "sparse": False,
                          "ragged": False, "name": "features"},
               "inbound_nodes": []},
              {"module": "keras.layers", "class_name": "Dense",
               "registered_name": None, "name": "probs",
               "config": {"name": "probs", "trainable": True,
                          "dtype": "float32", "units": 2,
                          "activation": "softmax", "use_bias": True},
               "inbound_nodes": [[["features", 0, 0, {}]]]}],
          "input_layers": [["features", 0, 0]],
          "output_layers": [["probs", 0, 0]]}}


def with_layers(*layers: dict, config: dict | None = None) -> dict:
  """`config` (default `plain_config()`) with `layers` added before output."""
  config = config or plain_config()
  config["config"]["layers"][1:1] = list(layers)
  return config


def write_file_layer(target: str, contents: str = "import os\n") -> dict:
  """The attack: a TFOpLambda that calls tf.io.write_file(target, ...)."""
  return {"module": "keras.layers", "class_name": "TFOpLambda",
          "registered_name": "TFOpLambda", "name": "tf.io.write_file",
          "config": {"name": "tf.io.write_file", "trainable": True,
                     "dtype": "float32", "function": "io.write_file"},
          "inbound_nodes": [["_CONSTANT_VALUE", -1, target,
                             {"contents": contents}]]}


def lambda_layer() -> dict:
  """A Lambda layer (its function is serialised Python bytecode)."""
  return {"module": "keras.layers", "class_name": "Lambda",
          "registered_name": None, "name": "sneaky",
          "config": {"name": "sneaky", "trainable": True, "dtype": "float32",
                     "function": ["4wEAAAAAAAAA", None, None],
                     "function_type": "lambda", "module": "builtins",
                     "output_shape": None, "output_shape_type": "raw",
                     "output_shape_module": None, "arguments": {}},
          "inbound_nodes": [[["features", 0, 0, {}]]]}


def unknown_class() -> dict:
  """A layer of a class no package model uses, from a foreign module."""
  return {"module": "evil.layers", "class_name": "Backdoor",
          "registered_name": "evil>Backdoor", "name": "backdoor",
          "config": {"name": "backdoor"},
          "inbound_nodes": [[["features", 0, 0, {}]]]}


def nested_model(inner_layer: dict) -> dict:
  """A Functional whose one inner layer is a model hiding `inner_layer`."""
  inner = plain_config()
  inner["config"]["name"] = "inner"
  inner["name"] = "inner"
  inner["inbound_nodes"] = [[["features", 0, 0, {}]]]
  inner = with_layers(inner_layer, config=inner)
  outer = plain_config()
  outer["config"]["layers"].insert(1, inner)
  return outer


def write_archive(path, config: dict, weights: bytes = b"") -> str:
  """Writes a `.keras` zip holding `config` as its config.json."""
  metadata = {"keras_version": "2.21.0", "date_saved": "2026-01-01@00:00:00"}
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("metadata.json", json.dumps(metadata))
    archive.writestr("config.json", json.dumps(config))
    archive.writestr("model.weights.h5", weights)
  return str(path)
