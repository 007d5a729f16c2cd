"""Same seed, same machine: two agent training runs are identical when
TensorFlow's op determinism is on (TF_DETERMINISTIC_OPS=1).

Logs and simulator episodes are byte-identical without it (see
tests/playlist_sim/jobs/test_log_generation.py and tests/scripts/test_simulate.py).
"""

import hashlib
import json
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT
from tests.test_resume_train_agent import _command

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration


def _network_digest(root_dir) -> str:
  reader = tf.train.load_checkpoint(
      tf.train.latest_checkpoint(str(root_dir / "checkpoint")))
  digest = hashlib.sha256()
  for name in sorted(reader.get_variable_to_shape_map()):
    if name.startswith("agent/") and "_network/" in name:
      digest.update(name.encode())
      digest.update(np.asarray(reader.get_tensor(name)).tobytes())
  return digest.hexdigest()


@pytest.mark.slow
def test_same_seed_same_machine_gives_the_same_agent(tmp_path):
  env = dict(os.environ, TF_DETERMINISTIC_OPS="1")
  results = []
  for name in ("a", "b"):
    root = tmp_path / name
    out = subprocess.run(
        _command(root, 60, ["train_eval.final_eval_episodes = 32"]),
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((root / "metrics.json").read_text())
    results.append((_network_digest(root), metrics["final_eval_return"],
                    metrics["final_loss"]))
  assert results[0] == results[1]
