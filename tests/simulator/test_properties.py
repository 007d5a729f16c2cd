"""Property-based tests (hypothesis) of the environment's dynamics.

For random configurations and random (often invalid) actions, the records of
the episode tracker must show: no track twice in an episode; an episode ends
exactly at the N-th consecutive skip, or at the maximum length, or when the
pool is used up; rewards equal the configured reward of the sampled levels;
and one seed gives one run.
"""

from hypothesis import given, settings, strategies as st
import numpy as np

import simulator
import user_models
from tests.conftest import make_env

_WORLD = user_models.SyntheticWorld(num_tracks=120, num_users=30, seed=5)


class _RandomLevelsModel(user_models.AbstractUserModel):
  """The public response levels with probabilities fixed per track."""

  response_levels = user_models.PUBLIC_RESPONSE_LEVELS

  def __init__(self, seed):
    probs = np.random.default_rng(seed).dirichlet(
        np.ones(len(self.response_levels)), size=120)
    self.probs = probs

  def predict(self, context, track_ids):
    return self.probs[track_ids]


configs = st.fixed_dictionaries({
    "batch_size": st.integers(1, 4),
    "pool": st.integers(1, 12),
    "slate_size": st.integers(1, 3),
    "limit": st.integers(1, 4),
    "max_len": st.integers(1, 15),
    "seed": st.integers(0, 2**16),
    "continuous": st.booleans(),
})


def _run(cfg, steps=60):
  tracker = simulator.EpisodeTracker()
  rewards = {"skip_1": -0.5, "skip_3": 0.25, "not_skipped": 1.0}
  env = make_env(_WORLD, user_model=_RandomLevelsModel(cfg["seed"]),
                 sampler="continuous" if cfg["continuous"] else "discrete",
                 slate_size=cfg["slate_size"], max_pool_size=cfg["pool"],
                 tracker=tracker, batch_size=cfg["batch_size"],
                 consecutive_skip_limit=cfg["limit"],
                 max_playlist_length=cfg["max_len"],
                 reward_per_level=rewards, seed=cfg["seed"])
  rng = np.random.default_rng(cfg["seed"])
  spec = env.action_space
  env.reset()
  step_rewards = []
  for _ in range(steps):
    if cfg["continuous"]:
      action = rng.uniform(spec.minimum, spec.maximum,
                           size=(cfg["batch_size"],) + spec.shape)
      action = action.astype(np.float32)
    else:
      action = rng.integers(0, cfg["pool"],
                            size=(cfg["batch_size"],) + spec.shape)
      action = action.astype(np.int32)
    step_rewards.append(env.step(action).reward.copy())
  return tracker.to_table().to_pydict(), rewards, np.array(step_rewards)


@settings(max_examples=60, deadline=None)
@given(configs)
def test_episode_invariants(cfg):
  rows, rewards, _ = _run(cfg)
  episodes = {}
  for i, episode in enumerate(rows["episode_id"]):
    episodes.setdefault(episode, []).append(i)
  assert episodes, "no track was played"
  for idx in episodes.values():
    tracks = [rows["track_row"][i] for i in idx]
    assert len(set(tracks)) == len(tracks), "a track repeated in an episode"
    run, ended = 0, False
    for n, i in enumerate(idx):
      assert not ended, "a track was played after the episode ended"
      run = run + 1 if rows["skip"][i] else 0
      level = rows["response"][i]
      assert rows["reward"][i] == rewards.get(level, 0.0)
      hit_limit = run >= cfg["limit"]
      full = n + 1 >= cfg["max_len"]
      exhausted = n + 1 >= cfg["pool"]
      assert rows["done"][i] == (hit_limit or full or exhausted)
      if rows["done"][i]:
        ended = True
        expected = ("consecutive_skips" if hit_limit else
                    "max_length" if full else "pool_exhausted")
        assert rows["termination_reason"][i] == expected
      else:
        assert rows["termination_reason"][i] == ""


@settings(max_examples=15, deadline=None)
@given(configs)
def test_same_seed_gives_identical_episodes(cfg):
  a_rows, _, a_rewards = _run(cfg, steps=25)
  b_rows, _, b_rewards = _run(cfg, steps=25)
  assert a_rows == b_rows
  np.testing.assert_array_equal(a_rewards, b_rewards)


@settings(max_examples=30, deadline=None)
@given(configs)
def test_step_reward_is_sum_of_track_rewards(cfg):
  rows, _, step_rewards = _run(cfg, steps=30)
  assert np.isclose(step_rewards.sum(), np.sum(rows["reward"]))
