"""Every shipped .gin file parses, and bad bindings give a clear error."""

import glob
import os

import gin
import pytest

import simulator
from playlist_sim.common import runs
from tests.conftest import REPO_ROOT

GIN_FILES = sorted(glob.glob(os.path.join(REPO_ROOT, "configs", "*.gin")))


def test_there_are_configs():
  assert any(f.endswith("simulate.gin") for f in GIN_FILES)


@pytest.mark.parametrize("path", GIN_FILES, ids=os.path.basename)
def test_gin_file_parses(path):
  gin.clear_config()
  gin.parse_config_file(path)


def test_simulate_gin_builds_default_environment_with_no_argument():
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "simulate.gin"))
  env = simulator.EnvironmentBuilder().get_py_env()
  assert env.batch_size == 1
  assert env.reset().observation["candidate_ids"].shape == (1, 100)


@pytest.mark.parametrize("binding,match", [
    ("NoSuchThing.size = 3", "NoSuchThing"),
    ("PlaylistEnvironment.no_such_parameter = 3", "no_such_parameter"),
    ("PlaylistEnvironment.batch_size = ", "batch_size"),
])
def test_bad_gin_binding_is_named(binding, match):
  with pytest.raises(runs.ConfigError, match=match):
    runs.parse_gin([], [binding])


def test_missing_gin_file_is_named(tmp_path):
  with pytest.raises(runs.ConfigError, match="nope.gin"):
    runs.parse_gin([str(tmp_path / "nope.gin")], [])
