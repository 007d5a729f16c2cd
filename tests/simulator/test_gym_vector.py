"""Tests of the Gymnasium vector environment (`simulator.gym_vector`)."""

import pathlib
import re
import time
import warnings

import gin
import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from simulator import gym_adapter  # noqa: E402
from simulator.gym_vector import PlaylistVectorEnv  # noqa: E402
from simulator.gym_vector import make_gym_vector_env  # noqa: E402
from simulator.tracker import TERMINATION_REASONS  # noqa: E402

_GIN = pathlib.Path(__file__).resolve().parents[2] / "configs" / "simulate.gin"


@pytest.fixture(autouse=True)
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _masked_random(rng, mask):
  """One available slot per row, uniformly."""
  scores = np.where(mask.astype(bool), rng.random(mask.shape), -1.0)
  return scores.argmax(axis=1)


def test_make_vec_runs_1000_steps_with_autoreset():
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    envs = gymnasium.make_vec(gym_adapter.ENV_ID, num_envs=8,
                              vectorization_mode="vector_entry_point",
                              gin_file=str(_GIN))
  assert isinstance(envs, PlaylistVectorEnv) and envs.num_envs == 8
  assert (envs.metadata["autoreset_mode"] ==
          gymnasium.vector.AutoresetMode.NEXT_STEP)
  rng = np.random.default_rng(0)
  obs, info = envs.reset(seed=0)
  assert obs in envs.observation_space
  ended_before = np.zeros(8, bool)
  episodes, start = 0, time.perf_counter()
  for _ in range(1000):
    actions = _masked_random(rng, info["action_mask"])
    assert actions in envs.action_space
    obs, rewards, terminated, truncated, info = envs.step(actions)
    assert obs in envs.observation_space
    assert not truncated.any()
    np.testing.assert_array_equal(info["action_mask"], obs["candidate_mask"])
    # Next-step autoreset: a row that ended last step starts afresh.
    assert (obs["position"][ended_before] == 0).all()
    assert (rewards[ended_before] == 0).all()
    assert not terminated[ended_before].any()
    if terminated.any():
      np.testing.assert_array_equal(info["_termination_reason"], terminated)
      assert set(info["termination_reason"][terminated]) <= set(
          TERMINATION_REASONS[1:])
    else:
      assert "termination_reason" not in info
    episodes += int(terminated.sum())
    ended_before = terminated
  envs.close()
  assert episodes > 8  # Sessions ended and restarted in every sub-env.
  assert time.perf_counter() - start < 60
  assert [str(w.message) for w in caught] == []


def test_same_seed_same_episodes():
  envs = make_gym_vector_env(4, _GIN)

  def rollout(seed):
    rng = np.random.default_rng(1)
    obs, info = envs.reset(seed=seed)
    trace = [obs["candidate_ids"]]
    for _ in range(30):
      obs, rewards, *_, info = envs.step(
          _masked_random(rng, info["action_mask"]))
      trace += [obs["history_ids"], rewards]
    return trace

  for a, b in zip(rollout(3), rollout(3)):
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(rollout(4)[0], rollout(3)[0])


def test_matches_single_env_spaces_and_masks():
  envs = make_gym_vector_env(3, _GIN)
  single = gym_adapter.make_gym_env()
  assert envs.single_observation_space == single.observation_space
  assert envs.single_action_space == single.action_space
  obs, _ = envs.reset(seed=0)
  np.testing.assert_array_equal(envs.action_masks(),
                                obs["candidate_mask"].astype(bool))


def test_bad_arguments():
  with pytest.raises(ValueError, match="num_envs"):
    make_gym_vector_env(0, _GIN)
  with pytest.raises(ValueError, match="contradicts"):
    make_gym_vector_env(4, _GIN, batch_size=2)
  with pytest.raises(TypeError, match="PlaylistEnvironment"):
    PlaylistVectorEnv(object())
  envs = make_gym_vector_env(2, _GIN)
  with pytest.raises(RuntimeError, match="reset"):
    envs.step(np.zeros(2, np.int64))


def test_docs_gymnasium_examples_run(monkeypatch):
  # Every Python block of docs/gymnasium.md, from the repository root.
  monkeypatch.chdir(_GIN.parents[1])
  text = (_GIN.parents[1] / "docs" / "gymnasium.md").read_text()
  blocks = re.findall(r"```python\n(.*?)```", text, re.S)
  assert len(blocks) == 2
  for block in blocks:
    gin.clear_config()
    namespace = {}
    # pylint: disable-next=exec-used
    exec(compile(block, "docs/gymnasium.md", "exec"), namespace)
  assert isinstance(namespace["envs"], PlaylistVectorEnv)


def test_sync_vectorization_also_works():
  envs = gymnasium.make_vec(gym_adapter.ENV_ID, num_envs=2,
                            vectorization_mode="sync", gin_file=str(_GIN))
  obs, info = envs.reset(seed=0)
  assert info["action_mask"].shape == (2, 100)
  envs.step(np.argmax(info["action_mask"], axis=1))
  envs.close()
