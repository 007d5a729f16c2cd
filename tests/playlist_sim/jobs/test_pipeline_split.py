"""Every stage of the pipeline sees the split of its spec.

The stages run on tiny sizes, as `run_pipeline` runs them; the agent stage
parses the real agent config (configs/ahdqn.gin) and builds the agent's
train and eval environments as `train_eval` does, without training.
"""

import json
import os

import gin
import pytest

from agents.environments import scoped_builder
from playlist_sim.jobs import pipeline
from playlist_sim.jobs.pipeline_spec import PipelineSpec
from tests.conftest import REPO_ROOT

# Whole (tiny) trainings, quantisation and evaluation: the integration tier.
pytestmark = pytest.mark.integration

_TINY = {"num_sessions": 300, "num_episodes": 16, "num_logged_sessions": 24,
         "quantize_episodes": 8, "max_epochs": 1}


def _agent_environments(seen):
  """Stands in for `train_eval`: builds its environments, records them."""
  def train_eval(root_dir, **kwargs):
    seen["baselines"] = kwargs["baselines"]
    for scope in ("train", "eval"):
      builder = scoped_builder(scope)
      env = builder.get_py_env(batch_size=1, seed=0)
      seen[scope] = {
          "split": builder.episode_sampler.split,
          "settings": builder.episode_sampler.split_settings,
          "skip_limit": env.environment.consecutive_skip_limit}
    return {"final_eval_return": 0.0, "wall_time_s": 0.0, "global_step": 0}
  return train_eval


@pytest.mark.parametrize("split_by", ["session", "user"])
def test_every_stage_sees_the_same_split(tmp_path, monkeypatch, split_by):
  # The edge: world config and tiny sizes, as the command parses them.
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config("SyntheticWorld.num_tracks = 500")
  gin.parse_config("evaluate_policies.n_bootstrap = 20")
  gin.parse_config("evaluate_policies.report = False")
  spec = PipelineSpec.build(str(tmp_path), quick=True, split_by=split_by,
                            quick_sizes=_TINY, agents=("ahdqn",))
  split = spec.split.as_kwargs()
  pipeline.logs_stage(spec)
  model = pipeline.user_model_stage(spec)
  pipeline.quantize_stage(spec, model["model_path"])
  limit = pipeline.skip_limit(spec)
  seen = {}
  # pylint: disable-next=protected-access
  monkeypatch.setattr(pipeline._train_eval, "train_eval",
                      _agent_environments(seen))
  pipeline.train_agent_stage(spec, "ahdqn", limit)
  evaluation = pipeline.evaluate_stage(spec, {}, limit)

  assert model["split"] == split
  # The pipeline's user model: propensity-weighted, one CWM in quick sizes.
  assert model["propensity_weighting"]["window"] == spec.propensity_window
  assert model["propensity_weighting"]["enabled"]
  assert model["ensemble_size"] == spec.sizes["ensemble_size"] == 1
  with open(os.path.join(spec.quantize_dir,
                         "quantization_report.json")) as f:
    quantization = json.load(f)
  assert quantization["split"] == split
  # Quantisation replays the sessions the model held out, no others.
  assert quantization["eval_rows"] == model["num_held_out_rows"]
  assert seen["train"]["settings"] == seen["eval"]["settings"] == split
  # The evaluate stage compares the baselines: the agent stage does not.
  assert seen["baselines"] == ()
  assert (seen["train"]["split"], seen["eval"]["split"]) == ("train", "test")
  assert evaluation["split"] == split
  with open(spec.evaluation_path) as f:
    assert json.load(f)["split"] == split
  # One skip limit for the agents' and the evaluation's environments.
  assert (seen["train"]["skip_limit"] == seen["eval"]["skip_limit"] ==
          evaluation["consecutive_skip_limit"] == limit)
  # The agent config's bindings ended with its stage.
  with pytest.raises(ValueError):
    gin.query_parameter("LogEpisodeSampler.split_by")
