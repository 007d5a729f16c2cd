"""LiteRT conversion and serving: variants agree with Keras; bad files fail
clearly."""

import numpy as np
import pytest

import user_models
from user_models.litert import LITERT_VARIANTS, LiteRTRunner, convert_keras_model


@pytest.fixture(scope="module")
def mlp():
  import tensorflow as tf
  # Seeded initialisers: the global seed alone gives weights that depend on
  # what ran before in the process (tests share xdist workers).
  init = tf.keras.initializers.GlorotUniform
  inputs = tf.keras.Input((16,))
  x = tf.keras.layers.Dense(32, activation="relu",
                            kernel_initializer=init(seed=0))(inputs)
  outputs = tf.keras.layers.Dense(4, activation="softmax",
                                  kernel_initializer=init(seed=1))(x)
  return tf.keras.Model(inputs, outputs)


@pytest.mark.parametrize("variant", LITERT_VARIANTS)
def test_variants_match_keras(mlp, variant, tmp_path):
  x = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
  content = convert_keras_model(mlp, variant, representative_inputs=[x])
  path = tmp_path / f"m.{variant}.tflite"
  path.write_bytes(content)
  runner = LiteRTRunner(path)
  assert runner.input_shapes == [(16,)] and runner.output_shapes == [(4,)]
  expected = mlp(x).numpy()
  for batch in (1, 7, 300):  # Resizes between batch sizes.
    got = runner(x[:batch])[0]
    error = np.abs(got - expected[:batch])
    # Full int8 quantises the softmax output too: over ten initialisations
    # its worst row erred up to 0.16, its mean at most 0.0025.
    max_error, mean_error = {"fp32": (1e-5, 2e-6), "fp16": (5e-3, 1e-3),
                             "int8": (0.05, 0.01),
                             "int8_full": (0.25, 0.01)}[variant]
    assert error.max() <= max_error
    assert error.mean() <= mean_error


def test_bad_files_give_clear_errors(mlp, tmp_path):
  with pytest.raises(user_models.UserModelLoadError, match="does not exist"):
    LiteRTRunner(tmp_path / "missing.tflite")
  (tmp_path / "text.tflite").write_text("hello, I am not a model")
  with pytest.raises(user_models.UserModelLoadError, match="not a LiteRT"):
    LiteRTRunner(tmp_path / "text.tflite")
  content = convert_keras_model(mlp, "fp32")
  (tmp_path / "cut.tflite").write_bytes(content[:len(content) // 2])
  with pytest.raises(user_models.UserModelLoadError):
    LiteRTRunner(tmp_path / "cut.tflite")


def test_wrong_input_width_is_named(mlp):
  runner = LiteRTRunner(model_content=convert_keras_model(mlp, "int8"))
  with pytest.raises(user_models.UserModelLoadError, match=r"\(16,\)"):
    runner(np.zeros((3, 15), np.float32))


def test_unknown_variant(mlp):
  with pytest.raises(ValueError, match="int4"):
    convert_keras_model(mlp, "int4")


def test_serving_benchmark_measures_each_backend_in_process():
  from benchmarks import serving as serving_benchmark
  for backend in ("keras", "int8_bare"):
    result = serving_benchmark.measure_backend(backend, [4], seconds=0.01)
    assert result["rows_per_s"]["4"] > 0
    assert result["flops_per_row"] == 2 * (128 * 256 + 256 * 256 +
                                           256 * 128 + 128 * 3)


def test_only_outputs_dequantised_from_int8_are_renormalised(mlp):
  from user_models.litert_user_model import probability_fn
  x = np.random.default_rng(1).normal(size=(50, 16)).astype(np.float32)
  for variant, dequantised in (("fp32", False), ("int8", False),
                               ("int8_full", True)):
    runner = LiteRTRunner(model_content=convert_keras_model(
        mlp, variant, representative_inputs=[x]))
    assert runner.dequantized_outputs == [dequantised]
    probs = probability_fn(runner)(x)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    if not dequantised:  # Passed through as the interpreter gives them.
      np.testing.assert_array_equal(probs, runner(x)[0])


def test_repeated_invokes_at_one_batch_size_agree(mlp):
  runner = LiteRTRunner(model_content=convert_keras_model(mlp, "fp32"),
                        preserve_all_tensors=True)
  x = np.random.default_rng(2).normal(size=(20, 16)).astype(np.float32)
  first = runner(x)[0]
  for _ in range(3):
    np.testing.assert_array_equal(runner(x)[0], first)
