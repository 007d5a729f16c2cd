"""Serving a quantised (LiteRT) CWM or SWM as an environment's user model.

    EnvironmentBuilder.user_model = @LiteRTUserModel()
    LiteRTUserModel.model_path = 'runs/quantized/user_model.int8.tflite'
    LiteRTUserModel.catalog = 'runs/logs/tracks.parquet'

`scripts/quantize_user_model.py` writes, per variant, `user_model.<v>.tflite`
(the CWM, or the SWM's head) and for an SWM `user_model.<v>.step.tflite` (its
one-step cell), plus `user_model.meta.json` (model kind, user-embedding
size, feature widths, each flatbuffer's SHA-256; checked against the
flatbuffers by `user_models.litert_meta`). `LiteRTUserModel` is
`KerasUserModel` with the TensorFlow calls replaced by `LiteRTRunner`s
(XNNPack, `num_threads` threads): the same features, the same per-row SWM
state, so gin picks the precision with one binding.
"""

import os

import gin
import numpy as np

from user_models import features
from user_models import keras_models
from user_models.base import UserModelLoadError
from user_models.keras_user_model import KerasUserModel, _as_catalog
from user_models.litert import LiteRTRunner
from user_models.litert_meta import META_FILE, check_flatbuffer, read_meta

__all__ = ["LiteRTUserModel", "META_FILE", "probability_fn", "step_path"]


def _normalised(probs: np.ndarray) -> np.ndarray:
  probs = np.maximum(probs, 0.0)
  return probs / np.maximum(probs.sum(axis=-1, keepdims=True), 1e-12)


def probability_fn(runner: LiteRTRunner, order=None):
  """The per-call function `LiteRTUserModel` serves a flatbuffer with.

  Float softmax outputs (fp32, fp16 and dynamic-range int8 models, whose
  activations are float) sum to 1 to float precision and are returned as
  the interpreter gives them; outputs dequantised from int8 (full-integer
  models) can miss a sum of 1 by more than the environment's tolerance and
  are renormalised.

  Args:
    runner: the loaded flatbuffer.
    order: for several inputs, `runner.order_inputs(...)`: the caller's
      inputs are passed in this order; None for one input.

  Returns:
    f(*inputs) -> float32 [N, levels].
  """
  renormalise = runner.dequantized_outputs[0]
  if order is None:
    if renormalise:
      return lambda x: _normalised(runner(x)[0])
    return lambda x: runner(x)[0]

  def call(*inputs):
    probs = runner(*(inputs[i] for i in order))[0]
    return _normalised(probs) if renormalise else probs
  return call


def step_path(model_path: str) -> str:
  """The SWM step file beside a head file: x.tflite -> x.step.tflite."""
  return model_path[:-len(".tflite")] + ".step.tflite"


@gin.configurable
class LiteRTUserModel(KerasUserModel):
  """A LiteRT flatbuffer (fp32, int8, fp16, int8_full) as a user model."""

  def __init__(self, model_path: str = gin.REQUIRED,
               catalog=gin.REQUIRED, user_feature_dim: int = 8,
               history_window: int = features.HISTORY_WINDOW,
               num_threads: int = 1):
    """Loads and checks the flatbuffer(s).

    Args:
      model_path: `user_model.<variant>.tflite` from quantize_user_model.py.
      catalog: the environment's catalog (see `KerasUserModel`).
      user_feature_dim: width of the environment's user features.
      history_window: the CWM's history window, as in training.
      num_threads: interpreter threads.

    Raises:
      UserModelLoadError: for a missing, corrupt or mismatched file, or a
        missing or malformed `user_model.meta.json`, or one that does not
        match the flatbuffer (hash, user vocabulary).
    """
    # pylint: disable=super-init-not-called  (no Keras model to load)
    self.model_path = os.fspath(model_path)
    meta = read_meta(self.model_path)
    self.kind, self.user_vocab = meta["kind"], meta["user_vocab"]
    self.training_split = meta.get("training_split")
    self.catalog = _as_catalog(catalog)
    self.tables = features.FeatureTables(self.catalog)
    self.spec = self.tables.spec(user_feature_dim, history_window)
    index = 1 if self.user_vocab else 0
    if self.kind == keras_models.CWM_NAME:
      runner = LiteRTRunner(self.model_path, num_threads=num_threads)
      check_flatbuffer(meta, self.model_path, runner.embedding_rows())
      self._check(runner, [(self.spec.cwm_dim + index,)],
                  (features.NUM_LEVELS,))
      self._cwm = probability_fn(runner)
      return
    # Buffer reuse breaks XNNPack's GRU step on repeated invokes (see
    # LiteRTRunner): the SWM's parts keep every tensor.
    head = LiteRTRunner(self.model_path, num_threads=num_threads,
                        preserve_all_tensors=True)
    step = LiteRTRunner(step_path(self.model_path), num_threads=num_threads,
                        preserve_all_tensors=True)
    check_flatbuffer(meta, self.model_path, head.embedding_rows())
    check_flatbuffer(meta, step_path(self.model_path), None)
    head_order = head.order_inputs(["state", "candidates"])
    step_order = step.order_inputs(["step", "state"])
    units = meta["state_units"]
    self._check(step, [((self.spec.swm_step_dim,), (units,))[i]
                       for i in step_order], (units,))
    width = meta["candidate_dim"]
    self._check(head, [((units,), (width,))[i] for i in head_order],
                (features.NUM_LEVELS,))

    def run_step(x, state):
      inputs = (x, state)
      return step(*(inputs[i] for i in step_order))[0]

    self._set_swm_backend(run_step, probability_fn(head, head_order), units)

  def _check(self, runner: LiteRTRunner, expected, output) -> None:
    if runner.input_shapes != list(expected):
      raise UserModelLoadError(
          f"LiteRT user model {runner.path!r} takes inputs of widths "
          f"{runner.input_shapes}, but the environment's features need "
          f"{list(expected)}; was it converted from a model trained with "
          "another catalog, user-feature width or history window?")
    if runner.output_shapes != [output]:
      raise UserModelLoadError(
          f"LiteRT user model {runner.path!r} outputs "
          f"{runner.output_shapes}, expected [{output}]")
