"""Tests of the Gymnasium adapter (`simulator.gym_adapter`)."""

import ast
import importlib
import pathlib
import subprocess
import sys
import warnings

import gin
import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from gymnasium.utils.env_checker import check_env  # noqa: E402

import simulator  # noqa: E402
from simulator import gym_adapter  # noqa: E402
from simulator.gym_adapter import PlaylistGymEnv, make_gym_env  # noqa: E402
from simulator.tracker import TERMINATION_REASONS  # noqa: E402

_REPO = pathlib.Path(__file__).resolve().parents[2]
_GIN = _REPO / "configs" / "simulate.gin"
_CONTINUOUS = "EnvironmentBuilder.track_sampler = @ContinuousTrackSampler()"
_SLATE = "DiscreteTrackSampler.slate_size = 3"


@pytest.fixture(autouse=True)
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _check_env_strictly(env: PlaylistGymEnv) -> None:
  # check_env reports most problems as warnings: fail on any.
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    check_env(env, skip_render_check=True)
  assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("bindings, space_type", [
    ((), gymnasium.spaces.Discrete),
    ((_SLATE,), gymnasium.spaces.MultiDiscrete),
    ((_CONTINUOUS,), gymnasium.spaces.Box),
])
def test_check_env_passes(bindings, space_type):
  env = make_gym_env(_GIN, gin_bindings=bindings)
  assert isinstance(env.action_space, space_type)
  _check_env_strictly(env)


def test_spaces_mirror_specs():
  env = make_gym_env(_GIN)
  specs = env.environment.observation_space
  assert set(env.observation_space.spaces) == set(specs)
  for name, spec in specs.items():
    space = env.observation_space[name]
    assert space.shape == tuple(spec.shape), name
    if name == "candidate_mask":
      assert isinstance(space, gymnasium.spaces.MultiBinary)
    else:
      assert space.dtype == spec.dtype, name
      if hasattr(spec, "minimum"):
        np.testing.assert_array_equal(space.low, spec.minimum)
        np.testing.assert_array_equal(space.high, spec.maximum)
  assert env.action_space == gymnasium.spaces.Discrete(100)

  gin.clear_config()
  env = make_gym_env(_GIN, gin_bindings=[_CONTINUOUS])
  spec = env.environment.action_space
  assert env.action_space.shape == spec.shape
  np.testing.assert_array_equal(env.action_space.low, -1.0)
  np.testing.assert_array_equal(env.action_space.high, 1.0)
  # [-1, 1] maps linearly onto the catalog's feature bounds.
  for unit, want in ((-1.0, spec.minimum), (1.0, spec.maximum),
                     (0.0, (spec.minimum + spec.maximum) / 2)):
    got = env.spaces.to_env_action(np.full(spec.shape, unit), None)[0]
    np.testing.assert_allclose(got, np.broadcast_to(want, spec.shape),
                               rtol=1e-6, atol=1e-6)
  # Unbounded float specs get finite boxes.
  box = env.observation_space["user_features"]
  assert np.isfinite(box.low).all() and np.isfinite(box.high).all()


@pytest.mark.parametrize("bindings", [(), (_SLATE,), (_CONTINUOUS,)])
def test_random_rollout_never_repeats_a_track(bindings):
  env = make_gym_env(_GIN, gin_bindings=bindings)
  listen = len(env.environment.response_levels) - 1
  env.action_space.seed(0)
  for episode in range(3):
    obs, info = env.reset(seed=episode)
    assert set(info) == {"action_mask"} and obs["position"] == 0
    played, listens, total_reward = [], 0, 0.0
    terminated = False
    while not terminated:
      previous = int(obs["position"])
      obs, reward, terminated, truncated, info = env.step(
          env.action_space.sample())
      assert obs in env.observation_space
      assert not truncated
      heard = int(obs["position"]) - previous
      assert heard >= 1
      # Tracks heard this step are the newest entries of the history.
      new_ids = obs["history_ids"][-heard:].tolist()
      listens += int((obs["history_responses"][-heard:] == listen).sum())
      played += new_ids
      total_reward += reward
    assert len(played) == len(set(played)), "a track repeated"
    assert set(played) <= set(obs["candidate_ids"].tolist())
    assert total_reward == listens
    assert info["termination_reason"] in TERMINATION_REASONS[1:]


@pytest.mark.parametrize("bindings, reason", [
    (["LogisticUserModel.bias = -30.0"], "consecutive_skips"),
    (["LogisticUserModel.bias = 30.0",
      "PlaylistEnvironment.max_playlist_length = 4"], "max_length"),
    (["LogisticUserModel.bias = 30.0",
      "RandomEpisodeSampler.max_pool_size = 5"], "pool_exhausted"),
])
def test_termination_reason(bindings, reason):
  env = make_gym_env(_GIN, gin_bindings=bindings)
  env.reset(seed=0)
  steps, terminated = 0, False
  while not terminated:
    _, _, terminated, _, info = env.step(0)
    steps += 1
  assert info["termination_reason"] == reason
  assert steps == {"consecutive_skips": 3, "max_length": 4,
                   "pool_exhausted": 5}[reason]


def test_step_needs_reset():
  env = make_gym_env(_GIN, gin_bindings=["LogisticUserModel.bias = -30.0"])
  with pytest.raises(RuntimeError, match="reset"):
    env.step(0)
  env.reset(seed=0)
  terminated = False
  while not terminated:
    _, _, terminated, _, _ = env.step(0)
  with pytest.raises(RuntimeError, match="reset"):
    env.step(0)
  obs, _ = env.reset()
  assert obs["position"] == 0


def test_actions_are_checked():
  env = make_gym_env(_GIN)
  env.reset(seed=0)
  env.step(np.array([3]))  # A one-element array is a Discrete action.
  with pytest.raises(simulator.ActionError):
    env.step(np.array([1, 2]))
  with pytest.raises(simulator.ActionError):
    env.step(100)
  with pytest.raises(simulator.ActionError):
    env.step(1.5)


def test_batch_size_above_one_raises():
  with pytest.raises(ValueError, match="batch_size 1"):
    make_gym_env(_GIN, batch_size=2)
  gin.clear_config()
  gin.parse_config_file(str(_GIN))
  batched = simulator.EnvironmentBuilder().build(batch_size=3)
  with pytest.raises(ValueError, match="batch_size=3"):
    PlaylistGymEnv(batched)


def test_same_seed_same_episodes():
  env = make_gym_env(_GIN)
  first, _ = env.reset(seed=42)
  env.reset(seed=7)
  again, _ = env.reset(seed=42)
  for name in first:
    np.testing.assert_array_equal(first[name], again[name])
  other, _ = env.reset(seed=43)
  assert not np.array_equal(first["candidate_ids"], other["candidate_ids"])

  def rollout(seed):
    obs, _ = env.reset(seed=seed)
    trace, terminated = [obs], False
    while not terminated:
      obs, reward, terminated, _, _ = env.step(int(obs["position"]) % 100)
      trace += [obs, reward]
    obs, _ = env.reset()  # Unseeded resets continue the seeded generator.
    return trace + [obs]

  a, b = rollout(5), rollout(5)
  assert len(a) == len(b)
  for x, y in zip(a, b):
    if isinstance(x, dict):
      for name in x:
        np.testing.assert_array_equal(x[name], y[name])
    else:
      assert x == y


def test_seed_matches_environment_seed():
  # reset(seed=s) replays a fresh environment built with seed=s, and without
  # a seed the environment's own seed applies.
  env = make_gym_env(_GIN, seed=11)
  assert env.np_random_seed == 11
  unseeded, _ = env.reset()
  seeded, _ = make_gym_env(seed=0).reset(seed=11)
  raw = simulator.EnvironmentBuilder().build(seed=11).reset().observation
  for name in raw:
    np.testing.assert_array_equal(unseeded[name], raw[name][0])
    np.testing.assert_array_equal(seeded[name], raw[name][0])


def test_flatten_observation_wrapper():
  # The route for libraries that need a flat Box observation.
  env = gymnasium.wrappers.FlattenObservation(make_gym_env(_GIN))
  obs, _ = env.reset(seed=0)
  assert obs in env.observation_space
  obs, *_ = env.step(env.action_space.sample())
  assert obs.shape == env.observation_space.shape


def test_import_error_without_gymnasium(monkeypatch):
  monkeypatch.setitem(sys.modules, "gymnasium", None)
  monkeypatch.delitem(sys.modules, "simulator.gym_adapter")
  with pytest.raises(ImportError, match=r'pip install -e "\.\[gym\]"'):
    importlib.import_module("simulator.gym_adapter")
  monkeypatch.undo()
  assert sys.modules["simulator.gym_adapter"] is gym_adapter


@pytest.mark.integration
def test_importing_simulator_does_not_import_gymnasium():
  # A fresh interpreter: this test module has imported gymnasium already.
  code = ("import sys, simulator; "
          "assert 'gymnasium' not in sys.modules, 'gymnasium was imported'")
  result = subprocess.run([sys.executable, "-c", code], cwd=_REPO,
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr[-2000:]


def test_registered_id_makes_env_without_warnings():
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    env = gymnasium.make(gym_adapter.ENV_ID, gin_file=str(_GIN))
    # gymnasium.make adds the passive checker, which checks as it runs.
    obs, info = env.reset(seed=0)
    for _ in range(5):
      action = int(np.flatnonzero(info["action_mask"])[0])
      obs, _, terminated, _, info = env.step(action)
      if terminated:
        obs, info = env.reset()
    check_env(env.unwrapped, skip_render_check=True)
  assert [str(w.message) for w in caught] == []
  assert isinstance(env.unwrapped, PlaylistGymEnv)


def test_action_mask_in_info():
  env = make_gym_env(_GIN)
  obs, info = env.reset(seed=3)
  np.testing.assert_array_equal(info["action_mask"], obs["candidate_mask"])
  np.testing.assert_array_equal(env.action_masks(),
                                obs["candidate_mask"].astype(bool))
  assert info["action_mask"].all()  # A fresh pool: every candidate.
  obs, _, terminated, _, info = env.step(4)
  if not terminated:
    assert info["action_mask"][4] == 0 and info["action_mask"].sum() == 99
  np.testing.assert_array_equal(info["action_mask"], obs["candidate_mask"])


def test_our_modules_do_not_import_gym():
  # TF-Agents imports the unmaintained `gym` (and its warning) itself; no
  # module of ours adds another import of it.
  offenders = []
  for package in ("simulator", "agents", "user_models", "scripts"):
    for path in (_REPO / package).rglob("*.py"):
      for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names]
                 if isinstance(node, ast.Import) else
                 [node.module or ""] if isinstance(node, ast.ImportFrom)
                 else [])
        if any(n == "gym" or n.startswith("gym.") for n in names):
          offenders.append(str(path))
  assert offenders == []
