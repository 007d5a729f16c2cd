"""The pipeline's gin bindings are built from values, never pasted paths."""

import os

import gin
import pytest

from playlist_sim.common import runs
from playlist_sim.jobs.pipeline import agent_gin_bindings, agent_stage_config
from playlist_sim.jobs.pipeline import gin_binding
from playlist_sim.jobs.pipeline_spec import PipelineSpec
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize("folder", ["it's here", 'say "hi"', "a'b\"c",
                                    "plain"])
def test_a_quote_in_root_dir_reaches_the_agent_config(tmp_path, folder):
  logs_dir = str(tmp_path / folder / "logs")
  int8 = str(tmp_path / folder / "quantized" / "user_model.int8.tflite")
  runs.parse_gin([os.path.join(REPO_ROOT, "configs", "ahdqn.gin")],
                 agent_gin_bindings(logs_dir, int8, "session"))
  assert gin.query_parameter("LiteRTUserModel.model_path") == int8
  assert gin.query_parameter("LiteRTUserModel.catalog") == os.path.join(
      logs_dir, "tracks.parquet")
  assert gin.query_parameter("LogEpisodeSampler.split_by") == "session"
  assert gin.query_parameter("SESSIONS/gin.macro.value") == os.path.join(
      logs_dir, "sessions.parquet")


def test_a_crafted_folder_name_cannot_inject_a_binding(tmp_path):
  folder = str(tmp_path / "x'\nPlaylistEnvironment.batch_size = 7\n'")
  runs.parse_gin([], [gin_binding("LiteRTUserModel.model_path", folder)])
  assert gin.query_parameter("LiteRTUserModel.model_path") == folder
  with pytest.raises(ValueError):
    gin.query_parameter("PlaylistEnvironment.batch_size")


def test_only_literals_become_bindings():
  with pytest.raises(TypeError, match="gin literal"):
    gin_binding("X.y", object())


def test_an_edited_agent_config_is_another_agent_stage(tmp_path):
  shipped = os.path.join(REPO_ROOT, "configs", "ahdqn.gin")
  edited = tmp_path / "ahdqn_edited.gin"
  with open(shipped) as f:
    edited.write_text(f.read() + "\ntrain_eval.learning_rate = 0.0123\n")

  def stage_config(agent_config):
    spec = PipelineSpec.build(str(tmp_path / "run"), quick=True,
                              agents=("ahdqn",), agent_config=agent_config)
    return agent_stage_config(spec, "ahdqn")

  before = gin.config_str()
  shipped_text = stage_config(None)
  assert shipped_text == stage_config(shipped)
  assert "0.0123" in stage_config(str(edited))
  assert "0.0123" not in shipped_text
  # Reading the config leaves the run's own gin as it was.
  assert gin.config_str() == before
