"""scripts/train_agent.py as a user runs it, and the shipped agent configs."""

import json
import os
import subprocess
import sys

import gin
import pytest

from tests.conftest import REPO_ROOT

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration

TINY = [
    "SyntheticWorld.num_tracks = 300", "SyntheticWorld.num_users = 60",
    "RandomEpisodeSampler.max_pool_size = 12",
    "PlaylistEnvironment.max_playlist_length = 8",
    "train_eval.num_iterations = 2", "train_eval.env_batch_size = 4",
    "train_eval.eval_batch_size = 4", "train_eval.initial_collect_steps = 8",
    "train_eval.collect_steps_per_iteration = 4", "train_eval.batch_size = 8",
    "train_eval.embedding_dim = 4", "train_eval.state_layers = (8,)",
    "train_eval.head_layers = (8,)", "train_eval.eval_interval = 2",
    "train_eval.num_eval_episodes = 4", "train_eval.final_eval_episodes = 4",
    "train_eval.baselines = ('random',)", "train_eval.progress = False",
]


# PPO in the same tiny world: the continuous sampler and small networks.
TINY_PPO = TINY + [
    "train_eval.agent_name = 'ppo'",
    "EnvironmentBuilder.track_sampler = @ContinuousTrackSampler()",
    "ContinuousTrackSampler.clip_actions = True",
    "train_ppo.num_epochs = 1", "train_ppo.actor_layers = (8,)",
    "train_ppo.value_layers = (8,)",
]


@pytest.mark.parametrize("agent,bindings", [("ahdqn", TINY), ("ppo", TINY_PPO)])
def test_train_agent_script_trains_and_reports(tmp_path, agent, bindings):
  cmd = [sys.executable, "scripts/train_agent.py", "--gin_file",
         "configs/world.gin", "--root_dir", str(tmp_path), "--seed", "1"]
  for binding in bindings:
    cmd += ["--gin_bindings", binding]
  out = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "final eval return" in out.stdout and "random" in out.stdout
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  assert metrics["global_step"] == 2 and metrics["agent"] == agent
  assert (tmp_path / "policy" / "saved_model.pb").exists()
  assert (tmp_path / "operative_config.gin").exists()


def test_train_agent_script_names_a_bad_binding(tmp_path):
  cmd = [sys.executable, "scripts/train_agent.py", "--gin_file",
         "configs/world.gin", "--root_dir", str(tmp_path), "--gin_bindings",
         "train_eval.no_such_knob = 1"]
  out = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode != 0 and "no_such_knob" in out.stderr


@pytest.mark.parametrize("config,agent", [("ahdqn.gin", "ahdqn"),
                                          ("dqn.gin", "dqn")])
def test_agent_configs_train_on_the_train_split_and_evaluate_on_held_out(
    config, agent):
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", config))
  assert gin.query_parameter("train_eval.agent_name") == agent
  assert gin.query_parameter("train/LogEpisodeSampler.split") == "train"
  assert gin.query_parameter("eval/LogEpisodeSampler.split") == "test"
