"""Routes `tf.keras` to Keras 2 (tf-keras) before TensorFlow is first used.

TF-Agents 0.19 and TensorFlow Probability break under Keras 3, which is what
TensorFlow 2.21 gives by default. TensorFlow picks the Keras version lazily, on
the first access to `tf.keras`, from the `TF_USE_LEGACY_KERAS` variable. Every
package of this project imports this module first, so the variable is set in
time; if `tf.keras` was already resolved to Keras 3 we say so and stop, since
TensorFlow cannot switch afterwards.
"""

import os
import sys

__all__ = ["ensure_legacy_keras", "LegacyKerasError"]


class LegacyKerasError(ImportError):
  """TensorFlow's Keras was resolved to Keras 3 before this package loaded."""


def _resolved_keras(keras_attr) -> str | None:
  """Which Keras `tf.keras` resolved to, or None if not resolved yet."""
  if keras_attr is None:
    return None
  initialized = getattr(keras_attr, "_tfll_initialized", None)
  if initialized is False:  # TensorFlow's lazy loader, not touched yet.
    return None
  if initialized:
    return getattr(keras_attr, "_tfll_keras_version", None)
  # The loader replaced itself with the module it loaded.
  name = getattr(keras_attr, "__name__", "")
  # TF-Agents may re-bind tf.keras to a module named "tensorflow.keras" that
  # is tf-keras's (its file says so); that is Keras 2, not Keras 3.
  path = getattr(keras_attr, "__file__", None) or ""
  if name.startswith("tf_keras") or f"{os.sep}tf_keras{os.sep}" in path:
    return "tf_keras"
  return name


def ensure_legacy_keras() -> None:
  """Sets `TF_USE_LEGACY_KERAS=1`, or raises if it is too late to take effect.

  Raises:
    LegacyKerasError: if `tf.keras` already resolved to Keras 3 in this
      process.
  """
  tf_module = sys.modules.get("tensorflow")
  if tf_module is not None:
    version = _resolved_keras(vars(tf_module).get("keras"))
    if version is not None and version != "tf_keras":
      raise LegacyKerasError(
          "TensorFlow was imported and tf.keras resolved to Keras 3 "
          f"({version!r}) before this package was imported. TF-Agents needs "
          "Keras 2: set TF_USE_LEGACY_KERAS=1 in the environment (e.g. "
          "`export TF_USE_LEGACY_KERAS=1`) or import simulator/agents/"
          "user_models before anything touches tf.keras, and make sure the "
          "`tf-keras` package is installed.")
  os.environ["TF_USE_LEGACY_KERAS"] = "1"


ensure_legacy_keras()
