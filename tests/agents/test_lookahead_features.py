"""ModelLookaheadWrapper adds the scorer's one-step lookahead of each
shortlisted candidate, which ranks like the model's lookahead policy."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.environments import utils as env_utils
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

import agents
import simulator
import user_models
from agents import graph_scores
from agents.environments import scored_env
from agents.lookahead_features import (
  LOOKAHEAD_KEY,
  ModelLookaheadWrapper,
  lookahead_values,
)
from agents.model_lookahead import ModelListener
from agents.portable import ScoredTFPolicy
from playlist_sim.data.world import SyntheticWorld
from playlist_sim.policies.baselines import context_from_observation
from playlist_sim.policies.oracle import OraclePolicy
from playlist_sim.policies.score_features import (
  SCORE_KEY,
  UserModelScoreWrapper,
)
from tests.conftest import make_env
from user_models import features, keras_models
from user_models.keras_user_model import KerasUserModel, save_user_model


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


@pytest.fixture(scope="module")
def tiny_cwm(tmp_path_factory):
  """An untrained CWM with a user embedding, served by KerasUserModel."""
  world = SyntheticWorld(num_tracks=300, num_users=60, seed=0)
  spec = features.FeatureTables(world.catalog).spec(8)
  tf.keras.utils.set_random_seed(3)
  cwm = keras_models.build_cwm(spec, user_vocab=61, hidden_units=(16,),
                               tower_units=8)
  path = save_user_model(cwm, str(tmp_path_factory.mktemp("cwm") /
                                  "cwm.keras"))
  return KerasUserModel(path, world)


def test_graph_lookahead_matches_numpy(tiny_cwm):
  rng = np.random.default_rng(5)
  b, k, h = 16, 12, 10
  responses = np.sort(rng.integers(-1, 4, (b, h)), axis=1).astype(np.int32)
  obs = {
      "user_features": rng.normal(size=(b, 8)).astype(np.float32),
      "history_ids": rng.integers(0, 300, (b, h)).astype(np.int32),
      "history_responses": responses,
      "position": rng.integers(0, 8, b).astype(np.int32),
      "candidate_ids": rng.integers(0, 300, (b, k)).astype(np.int32),
      "candidate_mask": rng.random((b, k)) < 0.7}
  scorer = graph_scores.GraphScorer(tiny_cwm, env_listen_level=3)
  tensors = {key: tf.constant(v) for key, v in obs.items()}
  scores = scorer(tensors)
  got = scorer.lookahead(tensors, scores, 5).numpy()
  # The observation has no listener ids: the unknown-user index, -1 ids.
  context = context_from_observation(obs, None, 3)
  want = lookahead_values(tiny_cwm, context, obs["candidate_ids"],
                          obs["candidate_mask"], scores.numpy(), 5)
  np.testing.assert_allclose(got, want, atol=1e-5)
  assert ((got > 0).sum(1) <= 5).all()


def _observations(batch, seed):
  rng = np.random.default_rng(seed)
  responses = np.sort(rng.integers(-1, 4, (batch, 10)), axis=1)
  return {
      "user_features": rng.normal(size=(batch, 8)).astype(np.float32),
      "history_ids": rng.integers(0, 300, (batch, 10)).astype(np.int32),
      "history_responses": responses.astype(np.int32),
      "position": rng.integers(0, 8, batch).astype(np.int32),
      "candidate_ids": rng.integers(0, 300, (batch, 12)).astype(np.int32),
      "candidate_mask": rng.random((batch, 12)) < 0.7}


def _policy_spec():
  bounded = tensor_spec.BoundedTensorSpec
  plain = {
      "user_features": tf.TensorSpec((8,), tf.float32),
      "history_ids": bounded((10,), tf.int32, 0, 299),
      "history_responses": bounded((10,), tf.int32, -1, 3),
      "position": bounded((), tf.int32, 0, 30),
      "candidate_ids": bounded((12,), tf.int32, 0, 299),
      "candidate_mask": tf.TensorSpec((12,), tf.bool)}
  return plain, dict(plain, **{
      key: tf.TensorSpec((12,), tf.float32) for key in (SCORE_KEY,
                                                        LOOKAHEAD_KEY)})


def test_scored_policy_computes_the_lookahead_in_its_graph(tiny_cwm):
  plain, scored = _policy_spec()
  tf.random.set_seed(2)
  agent = agents.create_ahdqn_agent(
      ts.time_step_spec(scored),
      tensor_spec.BoundedTensorSpec((), tf.int32, 0, 11),
      tiny_cwm.tables.track_features, tf.keras.optimizers.Adam(1e-3),
      score_residual=True, lookahead_weight=1.0, shortlist_size=5)
  with pytest.raises(ValueError, match="lookahead_shortlist"):
    ScoredTFPolicy(agent.policy, tiny_cwm)
  portable = ScoredTFPolicy(agent.policy, tiny_cwm, lookahead_shortlist=5)
  assert set(portable.time_step_spec.observation) == set(plain)
  obs = _observations(16, seed=6)
  obs["candidate_mask"][:, 0] = True
  scores = graph_scores.numpy_reference(tiny_cwm, 3, obs)
  values = lookahead_values(tiny_cwm, context_from_observation(obs, None, 3),
                            obs["candidate_ids"], obs["candidate_mask"],
                            scores, 5)
  full = dict(obs, **{SCORE_KEY: scores, LOOKAHEAD_KEY: values})
  want = agent.policy.action(ts.restart(
      tf.nest.map_structure(tf.constant, full), batch_size=16)).action
  got = portable.action(ts.restart(
      tf.nest.map_structure(tf.constant, obs), batch_size=16)).action
  np.testing.assert_array_equal(got.numpy(), want.numpy())
