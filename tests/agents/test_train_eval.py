"""train_eval smoke runs (outputs, finite loss, resume), policy export, gin
scopes, and the greedy-by-user-model baseline."""

import json
import os
import types

import gin
import numpy as np
import pytest
import tensorflow as tf
from tf_agents.drivers import dynamic_step_driver
from tf_agents.environments import tf_py_environment
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.trajectories import time_step as ts

import agents
import simulator
import user_models
from agents import environments as agent_envs
from agents import train_eval as train_eval_lib
from playlist_sim.policies.oracle import OraclePolicy
from agents.ppo import create_ppo_agent
from tests.conftest import REPO_ROOT, make_env

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration

TINY_WORLD = [
    "SyntheticWorld.num_tracks = 300",
    "SyntheticWorld.num_users = 60",
    "RandomEpisodeSampler.max_pool_size = 12",
    "PlaylistEnvironment.max_playlist_length = 8",
]
TINY_RUN = dict(
    env_batch_size=4, eval_batch_size=4, initial_collect_steps=8,
    collect_steps_per_iteration=4, replay_buffer_capacity=64, batch_size=8,
    embedding_dim=4, state_layers=(8,), head_layers=(8,), fc_layer_params=(16,),
    eval_interval=2, num_eval_episodes=4, final_eval_episodes=4,
    checkpoint_interval=2, summary_interval=1, progress=False,
    baselines=("random", "greedy_oracle"))


def _parse_tiny_world():
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config(TINY_WORLD)


@pytest.mark.parametrize("agent_name,extra", [
    ("ahdqn", dict(n_step_update=2, double_dqn=False)),
    ("dqn", dict()),
])
def test_train_eval_writes_outputs_and_resumes(tmp_path, agent_name, extra):
  _parse_tiny_world()
  metrics = train_eval_lib.train_eval(str(tmp_path), agent_name=agent_name,
                                      num_iterations=3, **TINY_RUN, **extra)
  assert np.isfinite(metrics["final_loss"])
  assert metrics["global_step"] == 3 and metrics["resumed_from_step"] == 0
  written = json.loads((tmp_path / "metrics.json").read_text())
  for key in ("final_eval_return", "best_eval_return", "global_step",
              "wall_time_s", "train_steps_per_s", "resumed_from_step"):
    assert key in written
  assert set(written["policies"]) == {agent_name, "random", "greedy_oracle"}
  assert set(written["differences"]) == {"random", "greedy_oracle"}
  for diff in written["differences"].values():
    assert diff["ci95"][0] <= diff["difference"] <= diff["ci95"][1]
  assert (tmp_path / "policy" / "saved_model.pb").exists()
  assert any(f.startswith("ckpt-") for f in os.listdir(tmp_path /
                                                       "checkpoint"))
  assert os.listdir(tmp_path / "train") and os.listdir(tmp_path / "eval")
  assert "train_eval.gamma" in (tmp_path /
                                     "operative_config.gin").read_text()

  # More iterations change the operative config (and the learning-rate
  # schedule): refused, listing the binding, unless allowed.
  _parse_tiny_world()
  with pytest.raises(agents.CheckpointError,
                     match="train_eval.num_iterations: checkpoint 3 vs now 5"):
    train_eval_lib.train_eval(str(tmp_path), agent_name=agent_name,
                              num_iterations=5, **TINY_RUN, **extra)
  # So does another world (same shapes): its bindings are operative too.
  _parse_tiny_world()
  gin.parse_config(["ParametricListener.bias = -1.0"])
  with pytest.raises(agents.CheckpointError,
                     match="ParametricListener.bias: checkpoint -1.5 vs now "
                           "-1.0"):
    train_eval_lib.train_eval(str(tmp_path), agent_name=agent_name,
                              num_iterations=3, **TINY_RUN, **extra)
  _parse_tiny_world()
  resumed = train_eval_lib.train_eval(str(tmp_path), agent_name=agent_name,
                                      num_iterations=5, **TINY_RUN, **extra,
                                      allow_config_change=True)
  assert resumed["resumed_from_step"] == 3
  assert resumed["global_step"] == 5 and resumed["train_steps"] == 5
  assert resumed["train_steps_this_process"] == 2
  # The curve and the loss history cover the whole run, not the resume only.
  assert [row[0] for row in resumed["eval_curve"]][:len(
      metrics["eval_curve"])] == [row[0] for row in metrics["eval_curve"]]
  assert resumed["eval_curve"][-1][0] == 5
  first = metrics["loss_history"]
  assert first and resumed["loss_history"][:len(first)] == first
  assert resumed["loss_history"][-1][0] == 5
  assert resumed["wall_time_s"] > metrics["wall_time_s"]


def _ppo_run(root_dir, num_iterations, bindings=(), **kwargs):
  _parse_tiny_world()
  gin.parse_config(["EnvironmentBuilder.track_sampler = "
                    "@ContinuousTrackSampler()",
                    "ContinuousTrackSampler.clip_actions = True",
                    # Epochs are unrolled in the traced train step.
                    "train_ppo.num_epochs = 1",
                    "train_ppo.actor_layers = (8,)",
                    "train_ppo.value_layers = (8,)", *bindings])
  return train_eval_lib.train_eval(
      root_dir, agent_name="ppo", num_iterations=num_iterations,
      env_batch_size=4, eval_batch_size=4, eval_interval=1,
      num_eval_episodes=4, final_eval_episodes=4, checkpoint_interval=1,
      progress=False, baselines=("random",), **kwargs)


def test_ppo_train_eval_smoke_run(tmp_path):
  metrics = _ppo_run(str(tmp_path), 2)
  assert np.isfinite(metrics["final_loss"])
  assert metrics["iterations"] == 2 and len(metrics["eval_curve"]) == 2
  for key in ("final_eval_return", "best_eval_return", "global_step",
              "loss_history", "env_steps", "wall_time_s", "iterations_per_s",
              "resumed_from_iteration", "train_iterations", "resume_history"):
    assert key in metrics, key
  assert set(metrics["policies"]) == {"ppo", "random"}
  assert (tmp_path / "policy" / "saved_model.pb").exists()
  assert json.loads((tmp_path / "metrics.json").read_text())["agent"] == "ppo"
  # PPO's checkpoint carries a fingerprint too: another agent refuses it.
  _parse_tiny_world()
  with pytest.raises(agents.CheckpointError, match="another run"):
    train_eval_lib.train_eval(str(tmp_path), agent_name="ahdqn",
                              num_iterations=3, **TINY_RUN)


class _Interrupted(Exception):
  """Stands for a kill: raised in the middle of a run."""


def test_ppo_interrupted_run_resumes_with_its_whole_curve(tmp_path,
                                                          monkeypatch):
  evaluate = agent_envs.RunEvaluation.evaluate
  calls = []

  def interrupted_at_the_third(self, num_episodes):
    calls.append(num_episodes)
    if len(calls) == 3:  # Iteration 3: iterations 1 and 2 are checkpointed.
      raise _Interrupted()
    return evaluate(self, num_episodes)
  monkeypatch.setattr(agent_envs.RunEvaluation, "evaluate",
                      interrupted_at_the_third)
  with pytest.raises(_Interrupted):
    _ppo_run(str(tmp_path), 4)
  monkeypatch.setattr(agent_envs.RunEvaluation, "evaluate", evaluate)

  # Another hyperparameter: refused, naming the binding.
  with pytest.raises(agents.CheckpointError,
                     match="train_ppo.entropy_regularization: checkpoint "
                           "0.0 vs now 0.1"):
    _ppo_run(str(tmp_path), 4, ["train_ppo.entropy_regularization = 0.1"])

  resumed = _ppo_run(str(tmp_path), 4)
  assert resumed["resumed_from_iteration"] == 2
  assert resumed["resume_history"] == [2]  # Global steps (one epoch each).
  assert resumed["iterations"] == 4 and resumed["train_iterations"] == 2
  # The evaluations and losses of the interrupted process are kept.
  assert [row[0] for row in resumed["eval_curve"]] == [1, 2, 3, 4]
  assert [row[0] for row in resumed["loss_history"]] == [1, 2, 3, 4]
  seconds = [row[1] for row in resumed["eval_curve"]]
  assert seconds == sorted(seconds)
  assert resumed["env_steps"] > 0 and np.isfinite(resumed["final_loss"])


def test_ppo_needs_a_continuous_action_spec(small_world):
  tf_env = tf_py_environment.TFPyEnvironment(simulator.TFAgtPyEnvironment(
      make_env(small_world, batch_size=2, max_pool_size=5)))
  with pytest.raises(ValueError, match="ContinuousTrackSampler"):
    create_ppo_agent(tf_env.time_step_spec(), tf_env.action_spec(),
                     small_world.catalog.features,
                     tf.keras.optimizers.Adam(1e-3))


def test_the_calibrated_world_ahdqn_settings_train_and_export(tmp_path):
  # configs/ahdqn.gin's network and targets (residual head over the scores
  # and the model's lookahead, shortlist, score-greedy targets with the
  # expected reward), in a tiny world without log files.
  _parse_tiny_world()
  gin.parse_config([
      "scored_env.lookahead_shortlist = 4",
      "create_ahdqn_agent.score_residual = True",
      "create_ahdqn_agent.lookahead_weight = 1.0",
      "create_ahdqn_agent.head_candidate_inputs = "
      "('similarity', 'scores', 'lookahead')",
      "create_ahdqn_agent.shortlist_size = 3",
      "create_ahdqn_agent.bootstrap = 'score_greedy'",
      "create_ahdqn_agent.expected_reward = True"])
  metrics = train_eval_lib.train_eval(
      str(tmp_path), agent_name="ahdqn", num_iterations=3,
      user_model_scores=True, n_step_update=1, gamma=1.0, **TINY_RUN)
  assert np.isfinite(metrics["final_loss"]) and metrics["global_step"] == 3
  assert (tmp_path / "policy" / "saved_model.pb").exists()
  config = (tmp_path / "operative_config.gin").read_text()
  assert "create_ahdqn_agent.bootstrap = 'score_greedy'" in config
  assert "scored_env.lookahead_shortlist = 4" in config


def test_missing_learned_simulator_names_the_commands(tmp_path):
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "ahdqn.gin"))
  gin.parse_config([f"USER_MODEL_PATH = '{tmp_path}/none.int8.tflite'"])
  with pytest.raises(user_models.UserModelLoadError,
                     match="quantize_user_model.py"):
    agent_envs.make_env("train", 2, 0)


def test_unknown_agent_is_named(tmp_path):
  with pytest.raises(ValueError, match="telepathy"):
    train_eval_lib.train_eval(str(tmp_path), agent_name="telepathy")


def test_train_and_eval_environments_come_from_their_gin_scopes():
  _parse_tiny_world()
  gin.parse_config(["train/RandomEpisodeSampler.max_pool_size = 7",
                    "eval/RandomEpisodeSampler.max_pool_size = 9"])
  train_env = agent_envs.make_env("train", 2, 0)
  eval_env = agent_envs.make_env("eval", 3, 1)
  assert train_env.action_spec().maximum == 6
  assert eval_env.action_spec().maximum == 8
  assert eval_env.batch_size == 3


def _trained_ppo_agent(tf_env, catalog):
  tf.random.set_seed(0)
  agent = create_ppo_agent(tf_env.time_step_spec(), tf_env.action_spec(),
                           catalog.features, tf.keras.optimizers.Adam(1e-2),
                           actor_layers=(8,), value_layers=(8,), num_epochs=2)
  buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
      agent.collect_data_spec, batch_size=tf_env.batch_size, max_length=16)
  dynamic_step_driver.DynamicStepDriver(
      tf_env, agent.collect_policy, observers=[buffer.add_batch],
      num_steps=8 * tf_env.batch_size).run()
  agent.train(buffer.gather_all())
  return agent


def _trained_agent(name, tf_env, catalog):
  if name == "ppo":
    return _trained_ppo_agent(tf_env, catalog)
  tf.random.set_seed(0)
  create = (agents.create_ahdqn_agent if name == "ahdqn" else
            agents.create_dqn_agent)
  kwargs = (dict(embedding_dim=4, state_layers=(8,), head_layers=(8,))
            if name == "ahdqn" else dict(fc_layer_params=(16,)))
  agent = create(tf_env.time_step_spec(), tf_env.action_spec(),
                 catalog.features,
                 tf.keras.optimizers.Adam(1e-2), epsilon_greedy=0.5,
                 **kwargs)
  buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
      agent.collect_data_spec, batch_size=tf_env.batch_size, max_length=32)
  dynamic_step_driver.DynamicStepDriver(
      tf_env, agent.collect_policy, observers=[buffer.add_batch],
      num_steps=64).run()
  experience, _ = next(iter(buffer.as_dataset(sample_batch_size=16,
                                              num_steps=2)))
  for _ in range(3):
    agent.train(experience)
  return agent


def test_a_simulator_trained_on_another_split_is_reported():
  def builder(split, **settings):
    sampler = types.SimpleNamespace(split=split, split_settings={
        "split_by": "user", "holdout_fraction": 0.2, "split_seed": 0,
        **settings})
    return types.SimpleNamespace(episode_sampler=sampler)
  model = types.SimpleNamespace(training_split={
      "split_by": "session", "holdout_fraction": 0.2, "split_seed": 0})
  message = agents.split_mismatch(model, builder("test"))
  assert "'split_by': 'session'" in message and "'split_by': 'user'" in message
  same = builder("test", split_by="session")
  assert agents.split_mismatch(model, same) is None
  assert agents.split_mismatch(model, builder("train")) is None
  assert agents.split_mismatch(types.SimpleNamespace(), builder("test")) is None


def test_an_export_killed_between_its_renames_is_undone(tmp_path):
  path = tmp_path / "policy"
  (tmp_path / "policy.old").mkdir()
  (tmp_path / "policy.old" / "saved_model.pb").write_bytes(b"previous")
  (tmp_path / "policy.tmp").mkdir()
  assert agents.recover_interrupted_export(str(path))
  assert (path / "saved_model.pb").read_bytes() == b"previous"
  assert not (tmp_path / "policy.old").exists()
  assert not agents.recover_interrupted_export(str(path))  # Nothing to do.


@pytest.mark.parametrize("name", ["ahdqn", "dqn", "ppo"])
def test_exported_policy_acts_like_the_trained_agent(tmp_path, small_world,
                                                     name):
  env = make_env(small_world, batch_size=8, max_pool_size=15,
                 sampler="continuous" if name == "ppo" else "discrete")
  # PPO's policies do not clip to the action spec (as configs/ppo.gin).
  env.track_sampler.clip_actions = name == "ppo"
  tf_env = tf_py_environment.TFPyEnvironment(simulator.TFAgtPyEnvironment(
      env))
  agent = _trained_agent(name, tf_env, small_world.catalog)
  path = train_eval_lib.export_policy(agent, str(tmp_path / "policy"),
                                      tf.Variable(3, dtype=tf.int64))
  loaded = tf.saved_model.load(path)
  time_step = tf_env.reset()
  for _ in range(5):
    expected = agent.policy.action(time_step).action
    actual = loaded.action(time_step).action
    if name == "ppo":  # A point in feature space: float round-off only.
      np.testing.assert_allclose(actual.numpy(), expected.numpy(), atol=1e-5)
    else:
      np.testing.assert_array_equal(actual.numpy(), expected.numpy())
    time_step = tf_env.step(expected)
  assert int(loaded.get_train_step().numpy()) == 3


def test_context_from_observation_matches_the_environment(small_world):
  listener = user_models.ParametricListener(small_world)
  env = make_env(small_world, user_model=listener, batch_size=6,
                 max_pool_size=30, consecutive_skip_limit=4)
  py_env = simulator.TFAgtPyEnvironment(env)
  rng = np.random.default_rng(0)
  time_step = py_env.reset()
  for _ in range(25):
    context = agents.context_from_observation(
        time_step.observation, user_ids=env.session_context().user_ids)
    truth = env.session_context()
    for field in ("user_ids", "position", "history_ids", "history_responses",
                  "consecutive_skips"):
      np.testing.assert_array_equal(getattr(context, field),
                                    getattr(truth, field), err_msg=field)
    # The window sees at most the session's skips.
    assert (context.num_skips <= truth.num_skips).all()
    time_step = py_env.step(rng.integers(0, 30, 6).astype(np.int32))


def test_greedy_by_user_model_matches_the_greedy_oracle(small_world):
  listener = user_models.ParametricListener(small_world)
  env = make_env(small_world, user_model=listener, batch_size=5,
                 max_pool_size=20)
  py_env = simulator.TFAgtPyEnvironment(env)
  greedy = agents.GreedyUserModelPolicy(
      py_env.time_step_spec(), py_env.action_spec(), listener,
      user_ids_fn=lambda: env.session_context().user_ids)
  oracle = OraclePolicy(env, listener)
  time_step = py_env.reset()
  for _ in range(30):
    action = greedy.action(time_step).action
    running = time_step.step_type != ts.StepType.LAST
    np.testing.assert_array_equal(action[running],
                                  oracle.action(time_step).action[running])
    time_step = py_env.step(action)


def _folder_bytes(path):
  return sum(os.path.getsize(os.path.join(d, f))
             for d, _, files in os.walk(path) for f in files)


def test_checkpoint_without_replay_buffer_is_smaller_and_resumes(tmp_path):
  sizes = {}
  for keep in (True, False):
    root = tmp_path / str(keep)
    _parse_tiny_world()
    train_eval_lib.train_eval(str(root), agent_name="dqn", num_iterations=3,
                              checkpoint_replay_buffer=keep, **TINY_RUN)
    sizes[keep] = _folder_bytes(root / "checkpoint")
  assert sizes[False] < sizes[True]
  _parse_tiny_world()
  # A longer run is another config (its learning-rate schedule changes).
  resumed = train_eval_lib.train_eval(
      str(tmp_path / "False"), agent_name="dqn", num_iterations=5,
      checkpoint_replay_buffer=False, allow_config_change=True, **TINY_RUN)
  assert resumed["resumed_from_step"] == 3 and resumed["global_step"] == 5
  assert np.isfinite(resumed["final_loss"])
