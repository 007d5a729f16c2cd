"""Model files are data, never code: the `.keras` archive allowlist.

Keras' safe mode refuses `Lambda` layers, but tf-keras still rebuilds a
functional graph by *calling* each layer on its inbound nodes, and an op
layer (`TFOpLambda`) whose node is a `_CONSTANT_VALUE` runs any TensorFlow
op eagerly while the model loads: `tf.io.write_file` writes any file before
the loader notices anything wrong. So before Keras sees a `.keras` file,
`check_keras_archive` opens the zip itself, reads `config.json` as plain
JSON and walks it, nested models included. Every object in it (layers,
models, initialisers, regularisers) must be one of the classes the
package's own CWM and SWM are built from (`user_models.keras_models`), from
the Keras module that defines it; every inbound node must name another
layer (no constants, no keyword arguments). Anything else is refused with
a `UserModelLoadError` that names the layer and its class, and no byte of
the file has been handed to Keras.

Our models use no op layers (`TFOpLambda`, `SlicingOpLambda`): columns are
cut with `Reshape` + `Cropping` layers, so op layers are refused outright.
"""

import json
import os
import zipfile

from user_models.base import UserModelLoadError

__all__ = ["ALLOWED_LAYERS", "ALLOWED_MODELS", "ALLOWED_OBJECTS",
           "check_keras_archive"]

#: Layer classes `build_cwm`/`build_swm` create (Dropout: `state_dropout`;
#: Average: `build_cwm_ensemble`).
ALLOWED_LAYERS = frozenset({
    "Activation", "Add", "Average", "Concatenate", "Cropping1D", "Cropping2D",
    "Dense", "Dropout", "Embedding", "GRU", "InputLayer", "Multiply",
    "Reshape"})
#: Model classes: a functional model (nesting one is allowed; its layers
#: are checked in turn).
ALLOWED_MODELS = frozenset({"Functional"})
#: Plain-data objects inside layer configs, by the module tf-keras writes.
ALLOWED_OBJECTS = {
    "keras.initializers": frozenset({
        "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform",
        "Ones", "Orthogonal", "RandomNormal", "RandomUniform",
        "TruncatedNormal", "Zeros"}),
    "keras.regularizers": frozenset({"L1", "L1L2", "L2"}),
    # The training optimiser, in `compile_config` (never deserialised: we
    # load with compile=False, but it is checked like the rest).
    "keras.optimizers": frozenset({"Adam"}),
}
_LAYER_MODULE = "keras.layers"
_MODEL_MODULES = frozenset({"tf_keras.src.engine.functional",
                            "keras.src.engine.functional"})
_ARCHIVE_ENTRIES = frozenset({"metadata.json", "config.json",
                              "model.weights.h5"})
#: Keys that carry code in Keras configs (Lambda's bytecode, op names).
_CODE_KEYS = frozenset({"function", "function_type", "output_shape_type",
                        "output_shape_module"})
_MAX_CONFIG_BYTES = 16 << 20


def _refuse(path: str, where: str, what: str) -> UserModelLoadError:
  return UserModelLoadError(
      f"user model {path!r} is refused: {where} {what}. Model files are "
      "checked data: only the layers the package's CWM/SWM are built from "
      "may appear (see docs/security.md); rebuild the model with "
      "scripts/train_user_model.py")


def _read_config(path: str) -> dict:
  """config.json of the archive, as JSON (nothing is deserialised)."""
  try:
    with zipfile.ZipFile(path) as archive:
      names = set(archive.namelist())
      extra = sorted(names - _ARCHIVE_ENTRIES)
      if extra:
        raise _refuse(path, "the archive holds", f"unexpected entries {extra}")
      if "config.json" not in names:
        raise UserModelLoadError(
            f"could not load the Keras user model {path!r}: it is truncated, "
            "not a saved Keras model (no config.json in the archive)")
      if archive.getinfo("config.json").file_size > _MAX_CONFIG_BYTES:
        raise _refuse(path, "its config.json", "is larger than 16 MiB")
      config = json.loads(archive.read("config.json"))
  except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
    raise UserModelLoadError(
        f"could not load the Keras user model {path!r}: it is truncated, "
        f"not a saved Keras model ({type(e).__name__}: {e})") from e
  if not isinstance(config, dict):
    raise _refuse(path, "its config.json", "is not a JSON object")
  return config


def _check_object(path: str, where: str, obj: dict) -> None:
  """One serialised object (a dict with `class_name`)."""
  name, module = obj.get("class_name"), obj.get("module")
  registered = obj.get("registered_name")
  if name in ALLOWED_MODELS:
    ok = module in _MODEL_MODULES and registered in (None, name)
  elif name in ALLOWED_LAYERS:
    ok = module == _LAYER_MODULE and registered in (None, name)
  else:
    ok = name in ALLOWED_OBJECTS.get(module, ()) and registered in (None,
                                                                     name)
  if not ok:
    raise _refuse(path, where, f"has class {name!r} (module {module!r}, "
                  f"registered name {registered!r}), which is not allowed")


def _check_nodes(path: str, where: str, nodes) -> None:
  """Inbound nodes: [[layer name, node index, tensor index, {}], ...]."""
  if not isinstance(nodes, list):
    raise _refuse(path, where, "has malformed inbound_nodes")
  for node in nodes:
    if not isinstance(node, list):
      raise _refuse(path, where, "has a malformed inbound node")
    for entry in node:
      ok = (isinstance(entry, list) and len(entry) in (3, 4) and
            isinstance(entry[0], str) and entry[0] != "_CONSTANT_VALUE" and
            all(isinstance(i, int) and not isinstance(i, bool)
                for i in entry[1:3]) and
            (len(entry) == 3 or entry[3] == {}))
      if not ok:
        raise _refuse(path, where, f"has an inbound node {entry!r}: only "
                      "links to other layers are allowed (no constants, no "
                      "call arguments)")


def _walk(path: str, value, where: str) -> None:
  """Checks every object and inbound node below `value`, depth first."""
  if isinstance(value, list):
    for item in value:
      _walk(path, item, where)
    return
  if not isinstance(value, dict):
    return
  if "class_name" in value:
    config = value.get("config")
    layer = value.get("name") or (config.get("name") if isinstance(
        config, dict) else None)
    if layer is not None:
      where = f"{where}/{layer}" if where else str(layer)
    _check_object(path, f"layer {where!r}" if layer is not None else
                  f"an object in layer {where!r}", value)
  for key, item in value.items():
    if key in _CODE_KEYS:
      raise _refuse(path, f"layer {where!r}", f"holds code ({key!r})")
    if key == "inbound_nodes":
      _check_nodes(path, f"layer {where!r}", item)
    else:
      _walk(path, item, where)


def check_keras_archive(path: str | os.PathLike) -> None:
  """Refuses a `.keras` file holding anything but our models' layers.

  Args:
    path: a `.keras` archive.

  Raises:
    UserModelLoadError: if the archive cannot be read, holds unexpected
      entries, or its config holds a class, module, code or inbound node
      our models never hold; the message names the layer and its class.
  """
  path = os.fspath(path)
  config = _read_config(path)
  if config.get("class_name") not in ALLOWED_MODELS:
    raise _refuse(path, "its top-level object",
                  f"has class {config.get('class_name')!r}, not a Functional "
                  "model")
  _walk(path, config, "")
