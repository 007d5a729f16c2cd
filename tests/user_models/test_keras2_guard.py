"""The packages route tf.keras to Keras 2, or say clearly why they cannot."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def _run(code: str) -> subprocess.CompletedProcess:
  env = dict(os.environ)
  env.pop("TF_USE_LEGACY_KERAS", None)
  env["TF_CPP_MIN_LOG_LEVEL"] = "3"
  return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=120)


@pytest.mark.integration
def test_importing_a_package_selects_keras_2():
  out = _run("import agents, tensorflow as tf; print(tf.keras.Model.__module__)")
  assert out.returncode == 0, out.stderr
  assert out.stdout.strip().startswith("tf_keras")


@pytest.mark.integration
def test_keras_3_already_loaded_gives_clear_error():
  out = _run("import tensorflow as tf; tf.keras.layers; import simulator")
  assert out.returncode != 0
  assert "LegacyKerasError" in out.stderr
  assert "TF_USE_LEGACY_KERAS=1" in out.stderr
