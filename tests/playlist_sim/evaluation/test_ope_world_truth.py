"""The added estimators against a known ground truth in our listener world.

Logged data come from `ParametricListener` over a `SyntheticWorld`: for each
logged context (a listener at the start of a session, K candidate tracks),
a softmax logging policy places one track (bandit) or a slate of 2-5 tracks
(the `DiscreteTrackSampler.slate_size` range), and the listener's listen
probabilities give Bernoulli rewards. The target's true value is exact
(independent responses: sum over the target's distribution) or on-policy
(slates played in order: many target slates per context, scored by their
expected listens). Each estimator's 99% bootstrap interval must cover the
truth on 3 seeds.

* Slates played in order (item j sees items 0..j-1: the cascade case):
  SIPS, RIPS and cascade DR, logging and target drawing without repeats.
* Independent responses (each item scored as the next track): IIPS and PI,
  with per-position draws (PI's exact case).
"""

import dataclasses

import numpy as np
import pytest

from playlist_sim.evaluation import robust
from playlist_sim.evaluation import slate
from user_models.base import PUBLIC_RESPONSE_LEVELS, SessionContext
from user_models.listener import ParametricListener
from playlist_sim.data.world import SyntheticWorld

pytestmark = pytest.mark.slow  # TensorFlow comes with user_models (~20 s).

SEEDS = (0, 1, 2)
CANDIDATES = 8
SLATE_SIZES = (2, 3, 4, 5)
LISTEN = PUBLIC_RESPONSE_LEVELS.index("not_skipped")


@pytest.fixture(scope="module")
def listener():
  return ParametricListener(SyntheticWorld())


def _contexts(rng, num, history=10):
  zeros = np.zeros(num, np.int32)
  return SessionContext(
      rows=np.arange(num, dtype=np.int64),
      user_ids=rng.integers(0, 2000, size=num).astype(np.int64),
      user_features=np.zeros((num, 8), np.float32), position=zeros,
      history_ids=np.zeros((num, history), np.int32),
      history_responses=np.full((num, history), -1, np.int32),
      consecutive_skips=zeros, num_skips=zeros)


def _softmax(logits):
  e = np.exp(logits - logits.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def _repeat(context, times):
  return dataclasses.replace(
      context, **{f.name: np.repeat(getattr(context, f.name), times, axis=0)
                  for f in dataclasses.fields(context)})


def _draw_without_repeats(rng, logits, length):
  """Slates drawn position by position without repeats; returns items [n, L]
  and conditional distributions [n, L, K]."""
  n, k = logits.shape
  items = np.zeros((n, length), np.int64)
  dists = np.zeros((n, length, k))
  left = np.ones((n, k), bool)
  for position in range(length):
    dists[:, position] = _softmax(np.where(left, logits, -np.inf))
    u = rng.random(n)[:, None]
    items[:, position] = (dists[:, position].cumsum(1) < u).sum(1)
    left[np.arange(n), items[:, position]] = False
  return items, dists


@dataclasses.dataclass
class _World:
  listener: ParametricListener
  rng: np.random.Generator
  num: int

  def setup(self):
    self.context = _contexts(self.rng, self.num)
    self.tracks = self.rng.integers(0, 5000, size=(self.num, CANDIDATES))
    self.logging_logits = self.rng.normal(size=(self.num, CANDIDATES))
    # The target leans towards the listener's liked tracks: a real shift.
    liked = self.listener.listen_probability(self.context, self.tracks,
                                             independent=True)
    self.target_logits = 0.5 * self.logging_logits + 4.0 * liked
    self.liked = liked.astype(np.float64)
    return self


def _cascade_case(listener, seed, num=3000):
  rng = np.random.default_rng(seed)
  w = _World(listener, rng, num).setup()
  length = SLATE_SIZES[seed % len(SLATE_SIZES)]
  items, mu = _draw_without_repeats(rng, w.logging_logits, length)
  rows = np.arange(num)[:, None]
  slate_ids = w.tracks[rows, items]
  p_listen = listener.listen_probability(w.context, slate_ids).astype(
      np.float64)
  reward = rng.binomial(1, p_listen).astype(np.float64)
  # The target's conditional distributions given the logged prefix.
  left = np.ones((num, CANDIDATES), bool)
  pi = np.zeros_like(mu)
  for position in range(length):
    pi[:, position] = _softmax(np.where(left, w.target_logits, -np.inf))
    left[np.arange(num), items[:, position]] = False
  pos = np.arange(length)
  mu_item = mu[rows, pos, items]
  pi_item = pi[rows, pos, items]
  cascade_mu, cascade_pi = np.cumprod(mu_item, 1), np.cumprod(pi_item, 1)
  # Truth on-policy: 30 target slates per context, expected listens.
  draws = 30
  t_items, _ = _draw_without_repeats(
      rng, np.repeat(w.target_logits, draws, axis=0), length)
  t_ids = np.repeat(w.tracks, draws, axis=0)[
      np.arange(num * draws)[:, None], t_items]
  truth = float(listener.listen_probability(
      _repeat(w.context, draws), t_ids).sum(1).mean())
  # A rough model of the listens from position l on: the item's own listen
  # probability plus the mean of the rest.
  q_hat = (w.liked[:, None, :] + (length - 1 - pos)[None, :, None] *
           w.liked.mean())
  inputs = dict(
      slate_id=np.repeat(np.arange(num), length),
      position=np.tile(pos, num), reward=reward.ravel(),
      action=items.ravel(), pscore=np.repeat(cascade_mu[:, -1], length),
      evaluation_policy_pscore=np.repeat(cascade_pi[:, -1], length),
      pscore_cascade=cascade_mu.ravel(),
      evaluation_policy_pscore_cascade=cascade_pi.ravel(),
      q_hat=q_hat.reshape(-1, CANDIDATES),
      evaluation_policy_action_dist=pi.reshape(-1, CANDIDATES))
  return inputs, truth


def _independent_case(listener, seed, num=3000):
  rng = np.random.default_rng(100 + seed)
  w = _World(listener, rng, num).setup()
  length = SLATE_SIZES[(seed + 1) % len(SLATE_SIZES)]
  mu, pi = _softmax(w.logging_logits), _softmax(w.target_logits)
  u = rng.random((num, length, 1))
  items = (mu.cumsum(1)[:, None, :] < u).sum(2)
  rows = np.arange(num)[:, None]
  reward = rng.binomial(1, w.liked[rows, items]).astype(np.float64)
  truth = float(length * (pi * w.liked).sum(1).mean())
  inputs = dict(
      slate_id=np.repeat(np.arange(num), length),
      position=np.tile(np.arange(length), num), reward=reward.ravel(),
      pscore_item_position=mu[rows, items].ravel(),
      evaluation_policy_pscore_item_position=pi[rows, items].ravel())
  return inputs, truth


def _bandit_case(listener, seed, num=4000):
  rng = np.random.default_rng(200 + seed)
  w = _World(listener, rng, num).setup()
  mu, pi = _softmax(w.logging_logits), _softmax(w.target_logits)
  action = (mu.cumsum(1) < rng.random((num, 1))).sum(1)
  rows = np.arange(num)
  reward = rng.binomial(1, w.liked[rows, action]).astype(np.float64)
  model = np.clip(w.liked + rng.normal(0.0, 0.1, size=w.liked.shape), 0, 1)
  inputs = dict(reward=reward, action=action, pscore=mu[rows, action],
                action_dist=pi[:, :, None],
                estimated_rewards_by_reg_model=model[:, :, None])
  return inputs, float((pi * w.liked).sum(1).mean())


def _covers(estimator, inputs, truth, seed):
  interval = estimator.estimate_interval(**inputs, alpha=0.01,
                                         n_bootstrap=400, seed=seed)
  value = estimator.estimate_policy_value(**inputs)
  return interval["ci_low"] <= truth <= interval["ci_high"], (
      value, interval, truth)


@pytest.mark.parametrize("seed", SEEDS)
def test_cascade_slate_estimators_cover_truth(listener, seed):
  inputs, truth = _cascade_case(listener, seed)
  for estimator in (slate.SIPS(), slate.RIPS(), slate.CascadeDR()):
    ok, detail = _covers(estimator, inputs, truth, seed)
    assert ok, (estimator.estimator_name, detail)


@pytest.mark.parametrize("seed", SEEDS)
def test_independent_slate_estimators_cover_truth(listener, seed):
  inputs, truth = _independent_case(listener, seed)
  for estimator in (slate.IIPS(), slate.PI()):
    ok, detail = _covers(estimator, inputs, truth, seed)
    assert ok, (estimator.estimator_name, detail)


@pytest.mark.parametrize("seed", SEEDS)
def test_robust_bandit_estimators_cover_truth(listener, seed):
  inputs, truth = _bandit_case(listener, seed)
  for estimator in (robust.SwitchDR(threshold=20.0),
                    robust.DRos(shrinkage=100.0), robust.SNDR(),
                    robust.SubGaussianIPS(smoothing=0.001)):
    args = dict(inputs)
    if isinstance(estimator, robust.SubGaussianIPS):
      args.pop("estimated_rewards_by_reg_model")
    ok, detail = _covers(estimator, args, truth, seed)
    assert ok, (estimator.estimator_name, detail)
