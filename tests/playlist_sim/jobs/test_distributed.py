"""Ray evaluation gives the same returns as the serial run, and leaves no
files in the home folder."""

import os

import gin
import numpy as np
import pytest

from playlist_sim.jobs.distributed import evaluate_policies
from tests.conftest import REPO_ROOT

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration

ray = pytest.importorskip("ray")


def test_ray_and_serial_results_are_identical():
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config("SyntheticWorld.num_tracks = 500\n"
                   "SyntheticWorld.num_users = 100")
  home = os.path.expanduser("~")
  before = set(os.listdir(home))
  serial = evaluate_policies(["random", "cosine"], 40, shards_per_policy=2,
                             batch_size=8, seed=3)
  on_ray = evaluate_policies(["random", "cosine"], 40, shards_per_policy=2,
                             batch_size=8, seed=3, use_ray=True)
  for policy in ("random", "cosine"):
    assert serial["returns"][policy].shape == (40,)
    np.testing.assert_array_equal(serial["returns"][policy],
                                  on_ray["returns"][policy])
  assert set(os.listdir(home)) == before
  assert "SyntheticWorld.num_tracks = 500" in gin.config_str()


def test_bad_shard_count():
  with pytest.raises(ValueError, match="shards_per_policy"):
    evaluate_policies(["random"], 2, shards_per_policy=3)
