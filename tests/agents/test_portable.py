"""Portable policies: a tiny AH-DQN trained on the learned model's scores,
exported, then loaded in fresh Pythons that import nothing of ours."""

import json
import os
import re
import subprocess
import sys
import textwrap

import gin
import numpy as np
import pytest
import tensorflow as tf
from tf_agents.environments import tf_py_environment
from tf_agents.policies import py_tf_eager_policy
from tf_agents.trajectories import time_step as ts

import agents
from agents import graph_scores
from agents import train_eval as train_eval_lib
from tests.conftest import REPO_ROOT
from user_models import features
from user_models import keras_models
from user_models.keras_user_model import KerasUserModel, save_user_model
from playlist_sim.data.world import SyntheticWorld

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration

TINY_RUN = dict(
    env_batch_size=4, eval_batch_size=4, initial_collect_steps=8,
    collect_steps_per_iteration=4, replay_buffer_capacity=64, batch_size=8,
    embedding_dim=4, state_layers=(8,), head_layers=(8,),
    eval_interval=100, num_eval_episodes=4, final_eval_episodes=4,
    checkpoint_interval=100, summary_interval=100, progress=False,
    baselines=("random",))
WORLD = dict(num_tracks=300, num_users=60)


def _tiny_world_gin(cwm_path: str) -> list[str]:
  return [
      f"SyntheticWorld.num_tracks = {WORLD['num_tracks']}",
      f"SyntheticWorld.num_users = {WORLD['num_users']}",
      "RandomEpisodeSampler.max_pool_size = 12",
      "PlaylistEnvironment.max_playlist_length = 8",
      "train/EnvironmentBuilder.user_model = @KerasUserModel()",
      f"KerasUserModel.model_path = '{cwm_path}'",
      "KerasUserModel.catalog = @world/gin.singleton()",
  ]


def _parse(cwm_path):
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config(_tiny_world_gin(cwm_path))


@pytest.fixture(scope="session")
def scored_run(tmp_path_factory):
  """A CWM (untrained weights, with a user embedding) as the learned model,
  and an AH-DQN trained 3 steps on its scores.

  Returns:
    {"root": run folder, "policy": its policy folder, "cwm": .keras path}.
  """
  root = tmp_path_factory.mktemp("portable")
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config([f"SyntheticWorld.{k} = {v}" for k, v in WORLD.items()])
  world = gin.get_configurable("world/gin.singleton")()
  spec = features.FeatureTables(world.catalog).spec(8)
  tf.keras.utils.set_random_seed(3)
  cwm = keras_models.build_cwm(spec, user_vocab=WORLD["num_users"] + 1,
                               hidden_units=(16,), tower_units=8)
  cwm_path = save_user_model(cwm, str(root / "cwm.keras"))
  _parse(cwm_path)
  train_eval_lib.train_eval(str(root / "run"), agent_name="ahdqn",
                            num_iterations=3, user_model_scores=True,
                            **TINY_RUN)
  gin.clear_config()
  return {"root": str(root / "run"), "policy": str(root / "run" / "policy"),
          "cwm": cwm_path}


def _observations(batch: int, seed: int = 0) -> dict:
  """Random valid observations of the tiny environment (NumPy)."""
  rng = np.random.default_rng(seed)
  n, k, h = WORLD["num_tracks"], 12, 10
  responses = rng.integers(-1, 4, (batch, h)).astype(np.int32)
  responses = np.sort(responses, axis=1)  # Empty (-1) slots on the left.
  return {
      "user_features": rng.normal(size=(batch, 8)).astype(np.float32),
      "history_ids": rng.integers(0, n, (batch, h)).astype(np.int32),
      "history_responses": responses,
      "position": rng.integers(0, 8, batch).astype(np.int32),
      "candidate_ids": rng.integers(0, n, (batch, k)).astype(np.int32),
      "candidate_mask": rng.random((batch, k)) < 0.7,
  }


def test_graph_scores_match_numpy(scored_run, small_world):
  del small_world
  gin.clear_config()
  world = SyntheticWorld(**WORLD, seed=0)
  user_model = KerasUserModel(scored_run["cwm"], world)
  obs = _observations(16)
  scorer = graph_scores.GraphScorer(user_model, env_listen_level=3)
  got = scorer({k: tf.constant(v) for k, v in obs.items()}).numpy()
  # The observation has no listener ids: the unknown-user index, -1 ids.
  want = graph_scores.numpy_reference(user_model, 3, obs)
  np.testing.assert_allclose(got, want, atol=1e-5)
  assert (got[~obs["candidate_mask"]] == 0).all()


def test_unsupported_scorer_is_named(small_world):
  with pytest.raises(graph_scores.UnsupportedScorerError, match="CWM"):
    graph_scores.keras_cwm_of(small_world)


def _run_fresh(code: str, env_extra: dict | None = None) -> dict:
  """Runs `code` in a fresh Python outside the repository; its last stdout
  line is JSON."""
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env.update(TF_CPP_MIN_LOG_LEVEL="3", **(env_extra or {}))
  out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                       cwd="/", env=env, capture_output=True, text=True,
                       timeout=300, check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_loads_with_tensorflow_alone(scored_run, tmp_path):
  obs = _observations(32, seed=1)
  np.savez(tmp_path / "obs.npz", **obs)
  result = _run_fresh(f"""
      import json, sys
      import numpy as np
      import tensorflow as tf
      policy = tf.saved_model.load({scored_run["policy"]!r})
      obs = dict(np.load({str(tmp_path / "obs.npz")!r}))
      select = policy.signatures["select_track"]
      slots = select(**{{k: tf.constant(v) for k, v in obs.items()}})["slot"]
      mods = sorted(m.split(".")[0] for m in sys.modules)
      print(json.dumps({{
          "slots": slots.numpy().tolist(), "dtype": slots.dtype.name,
          "inputs": sorted(select.structured_input_signature[1]),
          "ours": [m for m in set(mods) if m in
                   ("agents", "simulator", "user_models", "tf_agents")]}}))
  """)
  assert result["dtype"] == "int32"
  assert result["ours"] == []
  assert result["inputs"] == sorted(obs)
  slots = np.array(result["slots"])
  assert slots.shape == (32,)
  # Every chosen slot is an available candidate.
  assert obs["candidate_mask"][np.arange(32), slots].all()
  # The same actions as the package's policy computes in this process.
  policy = agents.load_policy(scored_run["policy"])
  time_step = _time_step(obs)
  np.testing.assert_array_equal(policy.action(time_step).action.numpy(),
                                slots)


def _time_step(obs):
  b = len(obs["position"])
  return ts.TimeStep(
      step_type=tf.fill([b], ts.StepType.MID), reward=tf.zeros([b]),
      discount=tf.ones([b]),
      observation={k: tf.constant(v) for k, v in obs.items()})


def test_loads_with_tf_agents_wrapper(scored_run, tmp_path):
  obs = _observations(8, seed=2)
  np.savez(tmp_path / "obs.npz", **obs)
  result = _run_fresh(f"""
      import json, sys
      import numpy as np
      import tensorflow as tf
      from tf_agents.policies import py_tf_eager_policy
      from tf_agents.trajectories import time_step as ts
      policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
          {scored_run["policy"]!r}, load_specs_from_pbtxt=True,
          batch_time_steps=False)
      obs = dict(np.load({str(tmp_path / "obs.npz")!r}))
      step = ts.TimeStep(step_type=np.ones(8, np.int32),
                         reward=np.zeros(8, np.float32),
                         discount=np.ones(8, np.float32), observation=obs)
      action = policy.action(step).action
      print(json.dumps({{
          "slots": np.asarray(action).tolist(),
          "keys": sorted(policy.time_step_spec.observation),
          "ours": [m for m in sys.modules if m.split(".")[0] in
                   ("agents", "simulator", "user_models")]}}))
  """, {"TF_USE_LEGACY_KERAS": "1"})
  assert result["ours"] == []
  assert result["keys"] == sorted(obs)  # No candidate_scores needed.
  slots = np.array(result["slots"])
  assert obs["candidate_mask"][np.arange(8), slots].all()


def test_load_policy_runs_in_tf_py_environment(scored_run):
  _parse(scored_run["cwm"])
  py_env = agents.make_env("eval", 3, seed=5)
  gin.clear_config()
  policy = agents.load_policy(scored_run["policy"])
  env = tf_py_environment.TFPyEnvironment(py_env)
  time_step = env.reset()
  for _ in range(10):
    action = policy.action(time_step).action
    mask = time_step.observation["candidate_mask"].numpy()
    assert mask[np.arange(3), action.numpy()].all()
    time_step = env.step(action)
  # And as a PyPolicy on the PyEnvironment.
  py_policy = py_tf_eager_policy.PyTFEagerPolicy(policy,
                                                 batch_time_steps=False)
  step = py_env.reset()
  for _ in range(5):
    step = py_env.step(py_policy.action(step).action)


def test_load_policy_rejects_other_folders(tmp_path):
  with pytest.raises(agents.PolicyLoadError, match="no exported policy"):
    agents.load_policy(str(tmp_path))


def test_docs_policies_examples_run(scored_run):
  # Every Python block of docs/policies.md, in order, on the tiny run.
  text = open(os.path.join(REPO_ROOT, "docs", "policies.md")).read()
  blocks = re.findall(r"```python\n(.*?)```", text, re.S)
  assert len(blocks) >= 4
  namespace = {"RUN": scored_run["root"]}
  for block in blocks:
    gin.clear_config()
    # pylint: disable-next=exec-used
    exec(compile(block, "docs/policies.md", "exec"), namespace)
  assert namespace["slots"].shape == (2,)
  assert namespace["terminated"]
  assert np.isfinite(namespace["listens"])
