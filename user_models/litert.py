"""LiteRT (TF Lite) conversion and serving of Keras user models on the CPU.

Variants written by `convert_keras_model`:

* `fp32`: plain conversion;
* `int8`: dynamic-range quantisation (`Optimize.DEFAULT`, no calibration):
  int8 weights, activations quantised on the fly, which XNNPack runs on the
  CPU's int8 dot-product units;
* `fp16`: float16 weights. On x86 XNNPack computes such models in fp32, so
  the gain is the file size (half), not speed;
* `int8_full`: full-integer quantisation calibrated on representative
  inputs (float input/output, int8 inside).

`LiteRTRunner` serves a flatbuffer with `ai_edge_litert` (XNNPack is its
default delegate): it checks the file before handing it to the interpreter,
allocates buffers once and resizes them only when the batch size changes.
"""

import os
from typing import Iterable, Sequence

import numpy as np

from user_models.base import UserModelLoadError

__all__ = ["LITERT_VARIANTS", "LiteRTRunner", "convert_keras_model"]

LITERT_VARIANTS = ("fp32", "int8", "fp16", "int8_full")
_FLATBUFFER_ID = b"TFL3"


def convert_keras_model(model, variant: str,
                        representative_inputs: Sequence[np.ndarray] | None = None,
                        num_calibration_batches: int = 64) -> bytes:
  """Converts a tf-keras model to a LiteRT flatbuffer.

  Args:
    model: a `tf.keras.Model` with float32 inputs.
    variant: one of `LITERT_VARIANTS`.
    representative_inputs: for `int8_full`, arrays shaped like the model's
      inputs (one per input, same leading dimension) to calibrate on.
    num_calibration_batches: calibration batches of one row drawn from them.

  Returns:
    The flatbuffer bytes.

  Raises:
    ValueError: for an unknown variant or missing calibration data.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if variant not in LITERT_VARIANTS:
    raise ValueError(f"unknown LiteRT variant {variant!r}; choose one of "
                     f"{LITERT_VARIANTS}")
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  if variant != "fp32":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if variant == "fp16":
    converter.target_spec.supported_types = [tf.float16]
  if variant == "int8_full":
    if not representative_inputs:
      raise ValueError("int8_full needs representative_inputs to calibrate")
    inputs = [np.asarray(x, np.float32) for x in representative_inputs]
    n = len(inputs[0])
    rng = np.random.default_rng(0)
    picks = rng.choice(n, size=min(num_calibration_batches, n), replace=False)

    def dataset() -> Iterable[list[np.ndarray]]:
      for i in picks:
        yield [x[i:i + 1] for x in inputs]
    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  return converter.convert()


class LiteRTRunner:
  """Runs a LiteRT flatbuffer on NumPy batches."""

  def __init__(self, model_path: str | os.PathLike | None = None,
               model_content: bytes | None = None, num_threads: int = 1,
               preserve_all_tensors: bool = False):
    """Loads and checks the flatbuffer.

    Args:
      model_path: a `.tflite` file.
      model_content: the flatbuffer bytes (instead of a path).
      num_threads: interpreter threads (>= 1).
      preserve_all_tensors: give every intermediate tensor its own memory
        instead of letting the arena reuse buffers. The SWM's parts need it:
        with buffer reuse, XNNPack computes the unrolled GRU step right on
        the first invoke after `allocate_tensors` but wrong (|Δstate| up to
        ~1) on later invokes at the same batch size, depending on the
        flatbuffer's memory layout (ai-edge-litert 2.3.0). The cost is a
        little memory, no measurable speed.

    Raises:
      UserModelLoadError: if the file is missing, not a LiteRT flatbuffer,
        truncated or otherwise rejected by the interpreter, or fails when
        run once on a zero batch.
    """
    from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
    name = os.fspath(model_path) if model_path is not None else "<bytes>"
    if model_content is None:
      if model_path is None or not os.path.isfile(model_path):
        raise UserModelLoadError(f"LiteRT model file {name!r} does not exist")
      with open(model_path, "rb") as f:
        model_content = f.read()
    if len(model_content) < 16 or model_content[4:8] != _FLATBUFFER_ID:
      raise UserModelLoadError(
          f"{name!r} is not a LiteRT flatbuffer (no 'TFL3' identifier; "
          f"{len(model_content)} bytes)")
    if int(num_threads) < 1:
      raise UserModelLoadError(f"num_threads must be >= 1, got {num_threads}")
    try:
      self._interpreter = Interpreter(
          model_content=model_content, num_threads=int(num_threads),
          experimental_preserve_all_tensors=bool(preserve_all_tensors))
      self._interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
      raise UserModelLoadError(
          f"LiteRT could not load {name!r} (truncated or corrupt?): {e}") from e
    self.path = name
    self.num_bytes = len(model_content)
    self._inputs = self._interpreter.get_input_details()
    self._outputs = self._interpreter.get_output_details()
    # Per-call work is kept to the interpreter's own: indices and bound
    # methods are looked up once here.
    self._input_index = [int(d["index"]) for d in self._inputs]
    self._output_index = [int(d["index"]) for d in self._outputs]
    self._set_tensor = self._interpreter.set_tensor
    self._get_tensor = self._interpreter.get_tensor
    self._invoke = self._interpreter.invoke
    self._batch = None
    self._staging = []
    self._invoke_once()

  def _invoke_once(self) -> None:
    """Runs a one-row zero batch, so a file that fails only when invoked
    (an op the interpreter can allocate but not run) fails at load."""
    zeros = [np.zeros((1,) + shape, np.float32) for shape in self.input_shapes]
    try:
      self(*zeros)
    except (ValueError, RuntimeError) as e:
      raise UserModelLoadError(
          f"LiteRT model {self.path!r} loads but fails when run on a zero "
          f"batch (corrupt, or not a user model?): {e}") from e

  def embedding_rows(self, layer: str = "user_embedding") -> int:
    """Rows of the table a GATHER op reads from `layer`, 0 if none.

    Raises:
      UserModelLoadError: if several tables of that layer differ in rows.
    """
    # pylint: disable=protected-access
    tensors = {int(t["index"]): t for t in
               self._interpreter.get_tensor_details()}
    rows = set()
    for op in self._interpreter._get_ops_details():
      if op["op_name"] == "GATHER" and len(op["inputs"]):
        table = tensors.get(int(op["inputs"][0]))
        if table is not None and layer in str(table["name"]):
          rows.add(int(table["shape"][0]))
    if len(rows) > 1:
      raise UserModelLoadError(f"{self.path}: {layer} tables of different "
                               f"sizes {sorted(rows)}")
    return rows.pop() if rows else 0

  @property
  def input_names(self) -> list[str]:
    """The flatbuffer's input tensor names, in its input order."""
    return [str(x["name"]) for x in self._inputs]

  def order_inputs(self, names: Sequence[str]) -> list[int]:
    """For each flatbuffer input, the index in `names` whose name it holds.

    Converters may reorder inputs (and decorate names, e.g.
    'serving_default_state:0'), so callers match them by name.

    Raises:
      UserModelLoadError: if an input matches none or several names.
    """
    order = []
    for tensor_name in self.input_names:
      hits = [i for i, n in enumerate(names) if f"_{n}:" in tensor_name or
              tensor_name == n]
      if len(hits) != 1:
        raise UserModelLoadError(
            f"{self.path}: cannot match input {tensor_name!r} to one of "
            f"{list(names)}")
      order.append(hits[0])
    return order

  @property
  def dequantized_outputs(self) -> list[bool]:
    """For each output, whether a DEQUANTIZE op makes it (int8 inside, as
    in full-integer models), so that it carries int8 rounding."""
    # pylint: disable=protected-access
    ops = self._interpreter._get_ops_details()
    return [any(op["op_name"] == "DEQUANTIZE" and index in op["outputs"]
                for op in ops) for index in self._output_index]

  @property
  def input_shapes(self) -> list[tuple[int, ...]]:
    """Shapes of the inputs without the batch dimension."""
    return [tuple(int(d) for d in x["shape"][1:]) for x in self._inputs]

  @property
  def output_shapes(self) -> list[tuple[int, ...]]:
    """Shapes of the outputs without the batch dimension."""
    return [tuple(int(d) for d in x["shape"][1:]) for x in self._outputs]

  def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
    """Runs one batch.

    Args:
      *inputs: float32 arrays [N, ...], in the model's input order.

    Returns:
      The outputs (copies), in the model's output order.

    Raises:
      UserModelLoadError: if the number or shapes of inputs do not fit.
    """
    if len(inputs) != len(self._inputs):
      raise UserModelLoadError(f"{self.path} takes {len(self._inputs)} "
                               f"input(s), got {len(inputs)}")
    batch = int(inputs[0].shape[0])
    # An environment's running rows change by a few from step to step:
    # rather than resize and re-allocate the interpreter each time, run a
    # smaller batch padded to the allocated one (rows are computed
    # independently) unless it would waste more than half of it.
    if self._batch is None or not self._batch // 2 < batch <= self._batch:
      for detail, x in zip(self._inputs, inputs):
        if tuple(x.shape[1:]) != tuple(detail["shape"][1:]):
          raise UserModelLoadError(
              f"{self.path}: input {detail['name']!r} has shape "
              f"{tuple(int(d) for d in detail['shape'][1:])} per row, got "
              f"{tuple(x.shape[1:])}")
        self._interpreter.resize_tensor_input(detail["index"], x.shape)
      self._interpreter.allocate_tensors()
      self._batch = batch
      self._staging = [np.zeros(x.shape, np.float32) for x in inputs]
    for detail, index, x, staged in zip(self._inputs, self._input_index,
                                        inputs, self._staging):
      if x.shape[1:] != staged.shape[1:]:
        raise UserModelLoadError(
            f"{self.path}: input {detail['name']!r} has shape "
            f"{staged.shape[1:]} per row, got {tuple(x.shape[1:])}")
      if batch == self._batch:
        staged = np.ascontiguousarray(x, np.float32)
      else:
        staged[:batch] = x
      self._set_tensor(index, staged)
    self._invoke()
    return [self._get_tensor(index)[:batch] for index in self._output_index]

