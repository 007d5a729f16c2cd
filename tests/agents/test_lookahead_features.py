"""ModelLookaheadWrapper adds the scorer's one-step lookahead of each
shortlisted candidate, which ranks like the model's lookahead policy."""

import numpy as np
import pytest
from tf_agents.environments import utils as env_utils

import simulator
import user_models
from agents.environments import scored_env
from agents.lookahead_features import LOOKAHEAD_KEY, ModelLookaheadWrapper
from agents.lookahead_features import lookahead_values
from agents.model_lookahead import ModelListener
from playlist_sim.policies.oracle import OraclePolicy
from playlist_sim.policies.score_features import SCORE_KEY
from playlist_sim.policies.score_features import UserModelScoreWrapper
from tests.conftest import make_env


def _wrapped(world, batch_size=4, pool=10, shortlist=4, scorer=None):
  scorer = scorer or user_models.LogisticUserModel(world)
  env = make_env(world, user_model=user_models.ParametricListener(world),
                 batch_size=batch_size, max_pool_size=pool)
  scored = UserModelScoreWrapper(simulator.TFAgtPyEnvironment(env), scorer)
  return env, scorer, ModelLookaheadWrapper(
      scored, scorer, shortlist, user_ids_fn=lambda: env.session_context(
      ).user_ids)


def test_values_are_the_best_next_probability_of_the_shortlist(small_world):
  env, scorer, wrapped = _wrapped(small_world, shortlist=3)
  obs = wrapped.reset().observation
  values, scores = obs[LOOKAHEAD_KEY], obs[SCORE_KEY]
  context = env.session_context()
  for row in range(len(values)):
    avail = np.flatnonzero(obs["candidate_mask"][row])
    short = avail[np.argsort(-scores[row, avail], kind="stable")[:3]]
    for slot in range(values.shape[1]):
      if slot not in short:
        assert values[row, slot] == 0.0
        continue
      best = 0.0
      for nxt in short[short != slot]:
        ids = obs["candidate_ids"][row, [slot, nxt]][None]
        one = type(context)(**{k: np.asarray(v)[[row]] for k, v in
                               vars(context).items()})
        best = max(best, scorer.predict(one, ids)[0, 1, scorer.listen_level])
      np.testing.assert_allclose(values[row, slot], best, rtol=1e-5)


def test_score_plus_lookahead_is_the_model_lookahead_policy(small_world):
  # The world's own listener as the scorer: it has order effects (the
  # lookahead changes the ranking), and ties are rare.
  env, scorer, wrapped = _wrapped(
      small_world, batch_size=6, pool=12, shortlist=5,
      scorer=user_models.ParametricListener(small_world))
  oracle = OraclePolicy(env, ModelListener(scorer), lookahead=True,
                        shortlist=5)
  time_step = wrapped.reset()
  changed = 0
  for _ in range(6):
    obs = time_step.observation
    changed += (obs[SCORE_KEY].argmax(1) !=
                oracle.action(time_step).action).sum()
    value = np.where(obs[LOOKAHEAD_KEY] > 0,
                     obs[SCORE_KEY] + obs[LOOKAHEAD_KEY], -1.0)
    expected = oracle.action(time_step).action
    # A model without order effects makes ties: compare the values chosen.
    rows = np.arange(len(expected))
    np.testing.assert_allclose(value[rows, expected], value.max(1),
                               rtol=1e-6)
    time_step = wrapped.step(expected)
  assert changed > 0  # The lookahead mattered somewhere.


def test_wrapper_passes_validate_py_environment(small_world):
  _, _, wrapped = _wrapped(small_world, batch_size=3)
  env_utils.validate_py_environment(wrapped, episodes=3)


def test_scored_env_adds_the_feature_only_when_asked(small_world):
  scorer = user_models.LogisticUserModel(small_world)
  plain = simulator.TFAgtPyEnvironment(make_env(small_world, batch_size=2))
  assert LOOKAHEAD_KEY not in scored_env(plain, scorer).observation_spec()
  spec = scored_env(plain, scorer, lookahead_shortlist=4).observation_spec()
  assert {SCORE_KEY, LOOKAHEAD_KEY} <= set(spec)


def test_lookahead_values_with_one_candidate_left_are_zero(small_world):
  scorer = user_models.LogisticUserModel(small_world)
  env = make_env(small_world, batch_size=2)
  env.reset()
  context = env.session_context()
  ids = np.array([[1, 2, 3], [4, 5, 6]])
  available = np.array([[True, False, False], [True, True, False]])
  scores = np.array([[0.5, 0.9, 0.9], [0.2, 0.3, 0.9]])
  values = lookahead_values(scorer, context, ids, available, scores, 8)
  assert (values[0] == 0).all() and values[1, 2] == 0
  assert (values[1, :2] > 0).all()


@pytest.mark.parametrize("shortlist, match", [(1, "shortlist"),
                                               (2.5, "shortlist")])
def test_bad_shortlist_is_refused(small_world, shortlist, match):
  env = simulator.TFAgtPyEnvironment(make_env(small_world, batch_size=2))
  scorer = user_models.LogisticUserModel(small_world)
  with pytest.raises(ValueError, match=match):
    ModelLookaheadWrapper(UserModelScoreWrapper(env, scorer), scorer,
                          shortlist)


def test_wrapper_needs_the_scores(small_world):
  env = simulator.TFAgtPyEnvironment(make_env(small_world, batch_size=2))
  with pytest.raises(ValueError, match="user_model_scores"):
    ModelLookaheadWrapper(env, user_models.LogisticUserModel(small_world))
