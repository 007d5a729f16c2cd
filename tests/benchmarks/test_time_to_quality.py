"""`scripts/benchmark.py --only time_to_quality` on a tiny listener world.

The agent trains in the listener world itself (no learned-simulator files:
`--ttq_world_dir ''` and a config that names none), so the test checks the
plumbing: the curve's points on the same episodes as the references, the
bar from the world's oracles, the reason when there is no time to quality,
the plot and the run loop's phase times.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration

_CONFIG = """
include '{repo}/configs/world.gin'
import agents.train_eval
SyntheticWorld.num_tracks = 300
SyntheticWorld.num_users = 60
RandomEpisodeSampler.max_pool_size = 12
PlaylistEnvironment.max_playlist_length = 8
train_eval.num_iterations = 4
train_eval.env_batch_size = 4
train_eval.eval_batch_size = 4
train_eval.initial_collect_steps = 8
train_eval.collect_steps_per_iteration = 4
train_eval.replay_buffer_capacity = 64
train_eval.batch_size = 8
train_eval.embedding_dim = 4
train_eval.state_layers = (8,)
train_eval.head_layers = (8,)
train_eval.user_model_scores = True
"""


def test_time_to_quality_part_writes_curve_bar_and_plot(tmp_path):
  config = tmp_path / "tiny.gin"
  config.write_text(_CONFIG.format(repo=REPO_ROOT))
  root = tmp_path / "bench"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.run(
      [sys.executable, os.path.join(REPO_ROOT, "scripts", "benchmark.py"),
       "--root_dir", str(root), "--only", "time_to_quality",
       "--ttq_world_dir", "", "--ttq_agent_config", str(config),
       "--ttq_eval_interval", "2", "--ttq_eval_episodes", "12"],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
      check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads((root / "benchmark.json").read_text())
  ttq = result["time_to_quality"]
  assert [row["train_steps"] for row in ttq["curve"]] == [2, 4]
  walls = [row["wall_s"] for row in ttq["curve"]]
  assert 0 < walls[0] < walls[1]
  assert set(ttq["references"]) == {"greedy_user_model", "greedy_oracle",
                                    "lookahead_oracle"}
  # The last point and the final comparison ran the same policy on the same
  # 12 episodes, as greedy-by-model did: the same paired difference.
  last, final = ttq["curve"][-1], ttq["final"]
  assert final["episodes"] == 12
  assert last["difference"] == pytest.approx(final["difference"])
  assert 0.0 <= ttq["bar"]["required_lift"] <= 0.05
  seconds = result["time_to_quality_s"]
  assert (seconds is None) == (ttq["reason"] is not None)
  if seconds is not None:
    assert seconds in walls
  assert set(ttq["loop_seconds"]) == {"collect", "train", "summaries",
                                      "evaluation", "checkpoint"}
  assert (root / "time_to_quality.png").stat().st_size > 1000
  assert "time_to_quality_s" in proc.stdout
