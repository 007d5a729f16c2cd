"""The pipeline's spec: one set of values for every stage, checked once;
and the agent config's bindings live only inside the agent stage."""

import os

import gin
import pytest

from playlist_sim.common import runs
from playlist_sim.data.sessions import LogSplit
from playlist_sim.jobs import pipeline
from playlist_sim.jobs.pipeline import agent_gin_bindings
from playlist_sim.jobs.pipeline import check_no_overridden_bindings
from playlist_sim.jobs.pipeline import run_pipeline
from playlist_sim.jobs.pipeline_spec import DEFAULT_PROPENSITY_WINDOW
from playlist_sim.jobs.pipeline_spec import DEFAULT_SIZES, QUICK_SIZES
from playlist_sim.jobs.pipeline_spec import PipelineSpec
from tests.conftest import REPO_ROOT


def test_build_takes_the_sizes_and_the_split_of_the_arguments(tmp_path):
  spec = PipelineSpec.build(str(tmp_path), quick=True, seed=3,
                            split_by="session", holdout_fraction=0.3,
                            quick_sizes={"num_sessions": 300})
  assert spec.split == LogSplit("session", 0.3, 0)
  assert spec.sizes["num_sessions"] == 300
  assert spec.sizes["max_epochs"] == QUICK_SIZES["max_epochs"]
  assert spec.logs_dir == os.path.join(str(tmp_path), "logs")
  assert spec.int8_path == os.path.join(
      str(tmp_path), "quantized", "user_model.int8.tflite")
  assert spec.policy_dir("dqn") == os.path.join(str(tmp_path), "dqn",
                                                "policy")
  # Defaults leave the stage hash as runs made before the spec had it.
  default = PipelineSpec.build(str(tmp_path))
  assert set(default.stage_config()) == {"sizes", "seed", "split_by"}
  assert spec.stage_config()["holdout_fraction"] == 0.3


def test_the_spec_cannot_be_changed_by_a_stage(tmp_path):
  spec = PipelineSpec.build(str(tmp_path))
  with pytest.raises(TypeError):
    spec.sizes["num_sessions"] = 1
  with pytest.raises(AttributeError):
    spec.seed = 1


@pytest.mark.parametrize("kwargs, match", [
    ({"split_by": "users"}, "split_by must be 'session' or 'user'"),
    ({"holdout_fraction": 1.0}, "holdout_fraction must be"),
    ({"holdout_fraction": "0.2"}, "holdout_fraction must be"),
    ({"split_seed": -1}, "split_seed must be"),
])
def test_a_bad_split_is_refused_before_any_stage_runs(tmp_path, kwargs,
                                                      match):
  with pytest.raises(ValueError, match=match):
    PipelineSpec.build(str(tmp_path), **kwargs)


def test_sizes_must_all_be_given(tmp_path):
  sizes = {k: v for k, v in DEFAULT_SIZES.items() if k != "max_epochs"}
  with pytest.raises(ValueError, match=r"lack \['max_epochs'\]"):
    PipelineSpec(str(tmp_path), sizes=sizes)


@pytest.mark.parametrize("kwargs, match", [
    ({"sizes": {"ensemble_size": 0}}, r"sizes\['ensemble_size'\] must be"),
    ({"quick": True, "quick_sizes": {"ensemble_size": 17}},
     r"sizes\['ensemble_size'\] must be"),
    ({"propensity_window": -1}, "propensity_window must be"),
    ({"sizes": {"ensemble_size": 1, "distill": True}},
     r"sizes\['distill'\] needs sizes\['ensemble_size'\] >= 2"),
])
def test_a_bad_user_model_setting_is_refused_before_any_stage_runs(
    tmp_path, kwargs, match):
  with pytest.raises(ValueError, match=match):
    PipelineSpec.build(str(tmp_path), **kwargs)


def test_the_default_user_model_is_one_cwm_distilled_from_three(tmp_path):
  default = PipelineSpec.build(str(tmp_path))
  assert (default.sizes["ensemble_size"], default.sizes["distill"],
          default.propensity_window) == (3, True, DEFAULT_PROPENSITY_WINDOW)
  # The leaving model's slope and the training seed's luck need 60,000
  # logged sessions (docs/model_bias.md); --quick keeps 20,000.
  assert default.sizes["num_sessions"] == 60000
  assert PipelineSpec.build(str(tmp_path), quick=True).sizes[
      "num_sessions"] == 20000
  assert PipelineSpec.build(str(tmp_path), quick=True).sizes["distill"] is (
      False)
  one = PipelineSpec.build(str(tmp_path), sizes={"ensemble_size": 1,
                                                 "distill": False})
  assert (one.sizes["ensemble_size"], one.sizes["distill"]) == (1, False)
  unweighted = PipelineSpec.build(str(tmp_path), propensity_window=0)
  assert unweighted.stage_config()["propensity_window"] == 0


def test_the_user_model_stage_trains_what_the_sizes_say(tmp_path,
                                                        monkeypatch):
  seen = {}
  monkeypatch.setattr(pipeline, "train_user_model",
                      lambda *args, **kwargs: seen.update(kwargs))
  pipeline.user_model_stage(PipelineSpec.build(str(tmp_path)))
  assert (seen["ensemble_size"], seen["distill"]) == (3, True)
  pipeline.user_model_stage(PipelineSpec.build(str(tmp_path), quick=True))
  assert (seen["ensemble_size"], seen["distill"]) == (1, False)


def test_bindings_the_pipeline_would_ignore_are_refused(tmp_path):
  gin.parse_config("train_user_model.ensemble_size = 1")
  gin.parse_config("train_user_model.patience = 5")  # read: allowed
  with pytest.raises(ValueError, match=r"train_user_model.ensemble_size "
                     r"\(set run_pipeline.sizes = \{'ensemble_size': N\}"):
    run_pipeline(str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()
  gin.clear_config()
  check_no_overridden_bindings()


def test_agents_must_be_a_tuple_of_names(tmp_path):
  with pytest.raises(TypeError, match="tuple of names"):
    PipelineSpec(str(tmp_path), agents="ahdqn")


def test_bindings_inside_an_isolated_config_are_gone_after_it(tmp_path):
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config("SyntheticWorld.num_tracks = 500")
  before = gin.config_str()
  logs_dir = str(tmp_path / "logs")
  with runs.isolated_gin_config():
    runs.parse_gin([os.path.join(REPO_ROOT, "configs", "ahdqn.gin")],
                   agent_gin_bindings(logs_dir, "m.tflite", "user", 0.3, 2,
                                      consecutive_skip_limit=5))
    assert gin.query_parameter("LogEpisodeSampler.split_by") == "user"
    assert gin.query_parameter("LogEpisodeSampler.holdout_fraction") == 0.3
    assert gin.query_parameter(
        "PlaylistEnvironment.consecutive_skip_limit") == 5
  assert gin.config_str() == before
  assert gin.query_parameter("SyntheticWorld.num_tracks") == 500
  with pytest.raises(ValueError):
    gin.query_parameter("LogEpisodeSampler.split_by")


def test_an_isolated_config_is_restored_after_an_error():
  gin.parse_config("SyntheticWorld.num_tracks = 500")
  with pytest.raises(RuntimeError):
    with runs.isolated_gin_config():
      gin.parse_config("SyntheticWorld.num_tracks = 7")
      raise RuntimeError("the stage failed")
  assert gin.query_parameter("SyntheticWorld.num_tracks") == 500


def test_each_agent_trains_with_its_own_shipped_config_unless_one_is_given(
    tmp_path):
  spec = PipelineSpec.build(str(tmp_path))
  assert spec.agent_config_for("ahdqn") == "configs/ahdqn.gin"
  assert spec.agent_config_for("dqn") == "configs/dqn.gin"
  # DQN's own config differs from AH-DQN's where DQN reads it.
  gammas = {}
  for agent in spec.agents:
    with gin.unlock_config():
      gin.clear_config()
    runs.parse_gin([spec.agent_config_for(agent)], agent_gin_bindings(
        spec.logs_dir, spec.int8_path, "user"))
    gammas[agent] = gin.query_parameter("train_eval.gamma")
  gin.clear_config()
  assert gammas["dqn"] != gammas["ahdqn"]
  given = PipelineSpec.build(str(tmp_path), agent_config="my.gin")
  assert given.agent_config_for("dqn") == "my.gin"
