"""Rows per second of one user-model backend, measured in its own process.

Runtimes' thread pools fight over two cores when several live in one
process, so `scripts/benchmark.py --only user_model` starts

    python -m benchmarks.serving --backend int8 --batches 1,32,256

once per backend and reads the JSON line it prints. Backends: `keras`
(`model(x)`), `tf_function`, LiteRT `fp32`, `int8` (dynamic range),
`int8_full`, `fp16` through the very function `LiteRTUserModel` calls per
step (`user_models.litert_user_model.probability_fn` over a `LiteRTRunner`),
and `int8_bare` (the bare interpreter: set_tensor, invoke, get_tensor) to
price that wrapper.

The model is the reference MLP of the quantisation issue by default, or a
single-input `.keras` file (`--model_path`, e.g. a trained CWM: its user
index column is then filled with valid indices).
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# pylint: disable=g-import-not-at-top,wrong-import-position
from user_models import _keras2  # noqa: F401
from user_models.model_files import check_keras_archive
import numpy as np
# pylint: enable=g-import-not-at-top,wrong-import-position

__all__ = ["BACKENDS", "reference_mlp", "measure_backend", "dense_flops"]

BACKENDS = ("keras", "tf_function", "fp32", "int8", "int8_full", "fp16",
            "int8_bare")


def reference_mlp(input_dim: int = 128, seed: int = 0):
  """The reference user-model shape: 128-256-256-128-3 MLP, softmax out."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.keras.utils.set_random_seed(seed)
  inputs = tf.keras.Input((input_dim,))
  x = inputs
  for width in (256, 256, 128):
    x = tf.keras.layers.Dense(width, activation="relu")(x)
  outputs = tf.keras.layers.Dense(3, activation="softmax")(x)
  return tf.keras.Model(inputs, outputs)


def dense_flops(model) -> int:
  """Multiply-adds x 2 per row over the model's Dense layers."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return int(sum(2 * layer.kernel.shape[0] * layer.kernel.shape[1]
                 for layer in model.layers
                 if isinstance(layer, tf.keras.layers.Dense)))


def _call_fn(backend: str, model, x_calibration: np.ndarray):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from user_models.litert import LiteRTRunner, convert_keras_model  # pylint: disable=g-import-not-at-top
  if backend == "keras":
    return lambda x: model(x, training=False).numpy()
  if backend == "tf_function":
    fn = tf.function(lambda x: model(x, training=False))
    return lambda x: fn(x).numpy()
  from user_models.litert_user_model import probability_fn  # pylint: disable=g-import-not-at-top
  variant = "int8" if backend == "int8_bare" else backend
  content = convert_keras_model(model, variant, [x_calibration])
  runner = LiteRTRunner(model_content=content, num_threads=1)
  if backend != "int8_bare":
    return probability_fn(runner)
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  interpreter = Interpreter(model_content=content, num_threads=1)
  inp = interpreter.get_input_details()[0]["index"]
  out = interpreter.get_output_details()[0]["index"]
  state = {"batch": None}

  def bare(x):
    if x.shape[0] != state["batch"]:
      interpreter.resize_tensor_input(inp, x.shape)
      interpreter.allocate_tensors()
      state["batch"] = x.shape[0]
    interpreter.set_tensor(inp, x)
    interpreter.invoke()
    return interpreter.get_tensor(out)
  return bare


def _inputs(model, batch: int, rng: np.random.Generator) -> np.ndarray:
  """Random rows for `model`; a user model's user-index column (its last,
  with a user embedding) gets valid indices."""
  from user_models.keras_models import user_vocab_size  # pylint: disable=g-import-not-at-top
  width = int(model.inputs[0].shape[-1])
  x = rng.normal(size=(batch, width)).astype(np.float32)
  vocab = user_vocab_size(model)
  if vocab:
    x[:, -1] = rng.integers(0, vocab, batch)
  return x


def measure_backend(backend: str, batches: list[int], seconds: float = 1.0,
                    model_path: str | None = None) -> dict:
  """Rows/s of `backend` at each batch size, in this process.

  Args:
    backend: one of `BACKENDS`.
    batches: batch sizes.
    seconds: wall time per batch size (after a short warm-up).
    model_path: a single-input `.keras` model; default `reference_mlp()`.

  Returns:
    {"rows_per_s": {batch: rows/s}, "gops": {batch: Gop/s}, "flops_per_row"}.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:  # One thread, as LiteRT gets; only possible before TF starts.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
  except RuntimeError:
    pass
  if model_path:
    check_keras_archive(model_path)  # Before Keras reads anything.
    model = tf.keras.models.load_model(model_path, safe_mode=True,
                                       compile=False)
  else:
    model = reference_mlp()
  rng = np.random.default_rng(0)
  call = _call_fn(backend, model, _inputs(model, 512, rng))
  flops = dense_flops(model)
  rows, gops = {}, {}
  for batch in batches:
    x = _inputs(model, batch, rng)
    for _ in range(3):
      call(x)
    calls, start = 0, time.perf_counter()
    while True:
      call(x)
      calls += 1
      elapsed = time.perf_counter() - start
      if elapsed >= seconds:
        break
    rows[str(batch)] = calls * batch / elapsed
    gops[str(batch)] = rows[str(batch)] * flops / 1e9
  return {"rows_per_s": rows, "gops": gops, "flops_per_row": flops}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--backend", choices=BACKENDS, required=True)
  parser.add_argument("--batches", default="1,32,256,4096")
  parser.add_argument("--seconds", type=float, default=1.0)
  parser.add_argument("--model_path", default=None)
  args = parser.parse_args()
  result = measure_backend(args.backend,
                           [int(b) for b in args.batches.split(",")],
                           args.seconds, args.model_path)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
