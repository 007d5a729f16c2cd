"""ActionHeadQNetwork computes what its docstring says, masks, and serves any
pool size; the AH-DQN and DQN agents respect the candidate mask."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

import agents
from agents.networks import HEAD_CANDIDATE_INPUTS, MASKED_Q_VALUE
from agents.networks import ActionHeadQNetwork

NUM_TRACKS, NUM_FEATURES, USER_DIM, HISTORY, LISTEN = 12, 3, 2, 4, 3


def _spec(pool_size, scores=False, lookahead=False):
  spec = {
      "user_features": tf.TensorSpec((USER_DIM,), tf.float32),
      "history_ids": tensor_spec.BoundedTensorSpec((HISTORY,), tf.int32, 0,
                                                   NUM_TRACKS - 1),
      "history_responses": tensor_spec.BoundedTensorSpec((HISTORY,), tf.int32,
                                                         -1, LISTEN),
      "position": tensor_spec.BoundedTensorSpec((), tf.int32, 0, 30),
      "candidate_ids": tensor_spec.BoundedTensorSpec((pool_size,), tf.int32, 0,
                                                     NUM_TRACKS - 1),
      "candidate_mask": tf.TensorSpec((pool_size,), tf.bool),
  }
  if scores:
    spec["candidate_scores"] = tf.TensorSpec((pool_size,), tf.float32)
  if lookahead:
    spec["candidate_lookahead"] = tf.TensorSpec((pool_size,), tf.float32)
  return spec


def _table(seed=0):
  return np.random.default_rng(seed).normal(
      size=(NUM_TRACKS, NUM_FEATURES)).astype(np.float32)


def _observation(batch, pool_size, seed=0, num_tracks=NUM_TRACKS,
                 scores=False, lookahead=False):
  obs = _playlist_observation(batch, pool_size, seed, num_tracks)
  if scores:
    obs["candidate_scores"] = np.random.default_rng(seed + 100).random(
        (batch, pool_size)).astype(np.float32)
  if lookahead:
    obs["candidate_lookahead"] = np.random.default_rng(seed + 200).random(
        (batch, pool_size)).astype(np.float32)
  return obs


def _playlist_observation(batch, pool_size, seed, num_tracks):
  rng = np.random.default_rng(seed)
  responses = rng.integers(-1, LISTEN + 1, size=(batch, HISTORY))
  responses[:, 0] = -1  # Left padding, as at the start of a session.
  return {
      "user_features": rng.normal(size=(batch, USER_DIM)).astype(np.float32),
      "history_ids": np.where(responses >= 0, rng.integers(
          0, num_tracks, (batch, HISTORY)), 0).astype(np.int32),
      "history_responses": responses.astype(np.int32),
      "position": rng.integers(0, 30, batch).astype(np.int32),
      "candidate_ids": rng.integers(0, num_tracks,
                                    (batch, pool_size)).astype(np.int32),
      "candidate_mask": rng.random((batch, pool_size)) < 0.7,
  }


def _reference_state(net, obs, table, decay):
  """The state embedding s of the module docstring, in NumPy."""
  w = {layer.name: layer.get_weights() for layer in net.layers}
  relu = lambda x: np.maximum(x, 0.0)  # noqa: E731
  embed = lambda ids: table[ids] @ w["embed"][0]  # noqa: E731
  resp = obs["history_responses"]
  valid, listen = resp >= 0, (resp == LISTEN).astype(np.float32)
  skip = valid - listen
  recency = decay ** np.arange(HISTORY - 1, -1, -1)
  e_h = embed(obs["history_ids"])

  def mean(ind):
    weight = recency * ind
    return ((weight[..., None] * e_h).sum(1) /
            np.maximum(weight.sum(1, keepdims=True), 1e-6))

  # Skips since the last listen: the run of skips at the end of each row.
  trailing = np.array([next((i for i, s in enumerate(row[::-1]) if not s),
                            HISTORY) for row in skip])
  state = np.concatenate([
      obs["user_features"], mean(listen), mean(skip),
      e_h[:, -1] * valid[:, -1:],
      np.stack([trailing / HISTORY, skip.sum(1) / HISTORY,
                listen.sum(1) / HISTORY], 1),
      obs["position"][:, None] / 30.0], axis=1)
  return relu(state @ w["state_0"][0] + w["state_0"][1])


def _reference_q(net, obs, table, decay, inputs=HEAD_CANDIDATE_INPUTS):
  """The module docstring's formula in NumPy, with the network's weights."""
  w = {layer.name: layer.get_weights() for layer in net.layers}
  relu = lambda x: np.maximum(x, 0.0)  # noqa: E731
  embed = lambda ids: table[ids] @ w["embed"][0]  # noqa: E731
  resp = obs["history_responses"]
  valid, listen = resp >= 0, (resp == LISTEN).astype(np.float32)
  skip = valid - listen
  e_h = embed(obs["history_ids"])
  state = _reference_state(net, obs, table, decay)
  x_c = table[obs["candidate_ids"]]
  e_c = x_c @ w["embed"][0]
  unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True),  # noqa: E731
                                  1e-12)
  cosine = np.einsum("bkd,bhd->bkh", unit(e_c), unit(e_h))
  interaction = (state @ w["interaction"][0])[:, None, :] * e_c
  parts = {"features": [x_c], "interaction": [interaction],
           "similarity": [cosine * listen[:, None], cosine * skip[:, None]],
           "scores": ([obs["candidate_scores"][..., None]]
                      if "candidate_scores" in obs else []),
           "lookahead": ([obs["candidate_lookahead"][..., None]]
                         if "candidate_lookahead" in obs else [])}
  part = [x for name in HEAD_CANDIDATE_INPUTS if name in inputs
          for x in parts[name]]
  part = np.concatenate(part, axis=-1)
  hidden = relu((state @ w["head_s"][0])[:, None] + part @ w["head_c"][0] +
                w["head_c"][1])
  q = (hidden @ w["head_1"][0] + w["head_1"][1])[..., 0]
  return np.where(obs["candidate_mask"], q, MASKED_Q_VALUE)


@pytest.mark.parametrize("initializer,scores", [
    ("constant", False), ("glorot_uniform", False), ("constant", True),
    ("glorot_uniform", True)])
def test_q_values_follow_the_documented_formula(initializer, scores):
  table = _table()
  kwargs = dict(embedding_dim=3, state_layers=(5,), head_layers=(4,),
                history_decay=0.7)
  if initializer == "constant":
    kwargs.update(kernel_initializer=tf.constant_initializer(0.05),
                  bias_initializer=tf.constant_initializer(0.1))
  else:
    tf.random.set_seed(0)
  net = ActionHeadQNetwork(_spec(6, scores), table, **kwargs)
  net.create_variables()
  obs = _observation(5, 6, scores=scores)
  q, _ = net(tf.nest.map_structure(tf.constant, obs))
  np.testing.assert_allclose(q.numpy(), _reference_q(net, obs, table, 0.7),
                             rtol=1e-4, atol=1e-5)


def test_linear_head_with_zero_kernels_outputs_its_bias_where_available():
  net = ActionHeadQNetwork(_spec(6), _table(), state_layers=(), head_layers=(),
                           kernel_initializer="zeros",
                           bias_initializer=tf.constant_initializer(0.25))
  obs = _observation(3, 6)
  q, _ = net(tf.nest.map_structure(tf.constant, obs))
  expected = np.where(obs["candidate_mask"], 0.25, MASKED_Q_VALUE)
  np.testing.assert_array_equal(q.numpy(), expected.astype(np.float32))


def test_masked_candidates_never_win():
  tf.random.set_seed(1)
  net = ActionHeadQNetwork(_spec(8), _table())
  obs = _observation(16, 8, seed=3)
  q = net(tf.nest.map_structure(tf.constant, obs))[0].numpy()
  unmasked = dict(obs, candidate_mask=np.ones_like(obs["candidate_mask"]))
  q_all = net(tf.nest.map_structure(tf.constant, unmasked))[0].numpy()
  # Mask out each row's favourite: the argmax must move to an available one.
  obs["candidate_mask"][np.arange(16), q_all.argmax(1)] = False
  obs["candidate_mask"][:, 0] = True  # Keep one candidate available.
  q = net(tf.nest.map_structure(tf.constant, obs))[0].numpy()
  assert obs["candidate_mask"][np.arange(16), q.argmax(1)].all()
  assert (q[~obs["candidate_mask"]] == MASKED_Q_VALUE).all()


@pytest.mark.parametrize("pool_size", [37, 500])
def test_network_serves_pool_sizes_it_was_not_built_for(pool_size):
  tf.random.set_seed(2)
  net = ActionHeadQNetwork(_spec(100), _table())
  assert net.create_variables().shape == (100,)
  obs = _observation(4, pool_size, seed=5)
  q = net(tf.nest.map_structure(tf.constant, obs))[0].numpy()
  assert q.shape == (4, pool_size)
  # Each candidate is scored on its own: the first 10 of the pool score the
  # same as a pool of just those 10.
  small = dict(obs, candidate_ids=obs["candidate_ids"][:, :10],
               candidate_mask=obs["candidate_mask"][:, :10])
  q_small = net(tf.nest.map_structure(tf.constant, small))[0].numpy()
  np.testing.assert_allclose(q_small, q[:, :10], rtol=1e-5, atol=1e-5)


def test_outer_time_dimension_is_flattened_and_restored():
  tf.random.set_seed(3)
  net = ActionHeadQNetwork(_spec(6), _table())
  obs = _observation(6, 6)
  q = net(tf.nest.map_structure(tf.constant, obs))[0].numpy()
  stacked = {k: v.reshape((2, 3) + v.shape[1:]) for k, v in obs.items()}
  q_bt = net(tf.nest.map_structure(tf.constant, stacked))[0].numpy()
  np.testing.assert_allclose(q_bt.reshape(6, 6), q, rtol=1e-6)


def test_network_rejects_an_observation_without_playlist_keys():
  spec = _spec(6)
  del spec["candidate_mask"]
  with pytest.raises(ValueError, match="candidate_mask"):
    ActionHeadQNetwork(spec, _table())


def _time_step_spec(pool_size):
  return ts.time_step_spec(_spec(pool_size))


def _action_spec(pool_size):
  return tensor_spec.BoundedTensorSpec((), tf.int32, 0, pool_size - 1)


def _time_step(obs):
  batch = len(obs["position"])
  return ts.restart(tf.nest.map_structure(tf.constant, obs), batch_size=batch)


@pytest.mark.parametrize("name", ["ahdqn", "dqn"])
def test_agents_greedy_and_exploring_policies_respect_the_mask(name):
  tf.random.set_seed(4)
  create = (agents.create_ahdqn_agent if name == "ahdqn" else
            agents.create_dqn_agent)
  agent = create(_time_step_spec(8), _action_spec(8), _table(),
                 tf.keras.optimizers.Adam(1e-3), epsilon_greedy=1.0)
  obs = _observation(64, 8, seed=6)
  obs["candidate_mask"][:, 0] = True
  for policy in (agent.policy, agent.collect_policy):
    action = policy.action(_time_step(obs)).action.numpy()
    assert obs["candidate_mask"][np.arange(64), action].all()


@pytest.mark.parametrize("double_dqn,scores", [
    (False, False), (True, False), (True, True)])
def test_ahdqn_scores_the_chosen_candidate_like_the_full_pool(double_dqn,
                                                            scores):
  tf.random.set_seed(5)
  agent = agents.create_ahdqn_agent(
      ts.time_step_spec(_spec(8, scores)), _action_spec(8), _table(),
      tf.keras.optimizers.Adam(1e-3), double_dqn=double_dqn)
  obs = _observation(10, 8, seed=7, scores=scores)
  obs["candidate_mask"][:] = True
  actions = tf.constant(np.arange(10) % 8, tf.int32)
  time_step = _time_step(obs)
  q_chosen = agent._compute_q_values(time_step, actions).numpy()  # pylint: disable=protected-access
  q_all = agent._q_network(time_step.observation)[0].numpy()  # pylint: disable=protected-access
  np.testing.assert_allclose(q_chosen, q_all[np.arange(10), actions.numpy()],
                             rtol=1e-5, atol=1e-6)
  if not double_dqn:
    obs["candidate_mask"][:, 1:] = False
    target = agent._compute_next_q_values(_time_step(obs), ()).numpy()  # pylint: disable=protected-access
    q_target = agent._target_q_network(  # pylint: disable=protected-access
        tf.nest.map_structure(tf.constant, obs))[0].numpy()
    np.testing.assert_allclose(target, q_target[:, 0], rtol=1e-6)


@pytest.mark.parametrize("head_layers", [(4,), ()])
def test_score_residual_starts_greedy_by_the_score(head_layers):
  tf.random.set_seed(6)
  net = ActionHeadQNetwork(_spec(6, True), _table(), embedding_dim=3,
                           state_layers=(5,), head_layers=head_layers,
                           score_residual=True, score_weight=2.0)
  obs = _observation(5, 6, seed=8, scores=True)
  q, _ = net(tf.nest.map_structure(tf.constant, obs))
  # Q = 2 p + V(s): the same offset for every candidate of a row.
  offset = (q.numpy() - 2.0 * obs["candidate_scores"])
  available = obs["candidate_mask"]
  for row, mask in zip(offset, available):
    np.testing.assert_allclose(row[mask], row[mask][0], atol=1e-5)
  masked_scores = np.where(available, obs["candidate_scores"], -1.0)
  np.testing.assert_array_equal(q.numpy().argmax(1), masked_scores.argmax(1))
  assert (q.numpy()[~available] == MASKED_Q_VALUE).all()


def test_score_residual_adds_the_score_to_the_plain_head_formula():
  table = _table()
  kwargs = dict(embedding_dim=3, state_layers=(5,), head_layers=(4,),
                history_decay=0.7,
                kernel_initializer=tf.constant_initializer(0.05),
                bias_initializer=tf.constant_initializer(0.1))
  net = ActionHeadQNetwork(_spec(6, True), table, score_residual=True,
                           advantage_scale=0.5, **kwargs)
  net.create_variables()
  for layer in net.layers:  # Move the zero-initialised head off zero.
    layer.set_weights([np.full_like(w, 0.05) for w in layer.get_weights()])
  obs = _observation(5, 6, scores=True)
  q = net(tf.nest.map_structure(tf.constant, obs))[0].numpy()
  w = {layer.name: layer.get_weights() for layer in net.layers}
  state = _reference_state(net, obs, table, 0.7)
  value = state @ w["state_value"][0] + w["state_value"][1]
  expected = (0.5 * _reference_q(net, obs, table, 0.7) +
              obs["candidate_scores"] + value[:, :1])
  np.testing.assert_allclose(q, np.where(obs["candidate_mask"], expected,
                                         MASKED_Q_VALUE), rtol=1e-4,
                             atol=1e-5)


def test_score_residual_needs_the_scores_and_finite_weights():
  with pytest.raises(ValueError, match="user_model_scores"):
    ActionHeadQNetwork(_spec(6), _table(), score_residual=True)
  with pytest.raises(ValueError, match="score_weight"):
    ActionHeadQNetwork(_spec(6, True), _table(), score_residual=True,
                       score_weight=float("nan"))
  with pytest.raises(ValueError, match="advantage_scale"):
    ActionHeadQNetwork(_spec(6, True), _table(), score_residual=True,
                       advantage_scale=0.0)


def test_score_greedy_bootstrap_values_the_best_scored_candidate():
  tf.random.set_seed(7)
  agent = agents.create_ahdqn_agent(
      ts.time_step_spec(_spec(8, True)), _action_spec(8), _table(),
      tf.keras.optimizers.Adam(1e-3), bootstrap="score_greedy",
      score_residual=True)
  obs = _observation(10, 8, seed=9, scores=True)
  obs["candidate_mask"][:, 0] = True
  target = agent._compute_next_q_values(_time_step(obs), ()).numpy()  # pylint: disable=protected-access
  q_target = agent._target_q_network(  # pylint: disable=protected-access
      tf.nest.map_structure(tf.constant, obs))[0].numpy()
  best = np.where(obs["candidate_mask"], obs["candidate_scores"],
                  -1.0).argmax(1)
  np.testing.assert_allclose(target, q_target[np.arange(10), best],
                             rtol=1e-5, atol=1e-6)


def test_score_greedy_bootstrap_needs_the_scores_and_a_known_name():
  optimizer = tf.keras.optimizers.Adam(1e-3)
  with pytest.raises(ValueError, match="user_model_scores"):
    agents.create_ahdqn_agent(ts.time_step_spec(_spec(8)), _action_spec(8),
                              _table(), optimizer, bootstrap="score_greedy")
  with pytest.raises(ValueError, match="bootstrap must be one of"):
    agents.create_ahdqn_agent(ts.time_step_spec(_spec(8, True)),
                              _action_spec(8), _table(), optimizer,
                              bootstrap="softmax")


@pytest.mark.parametrize("size", [1, 3, 50])
def test_shortlist_keeps_only_the_best_scored_available_candidates(size):
  tf.random.set_seed(8)
  net = ActionHeadQNetwork(_spec(8, True), _table(), shortlist_size=size)
  obs = _observation(12, 8, seed=10, scores=True)
  obs["candidate_mask"][:, 0] = True
  q = net(tf.nest.map_structure(tf.constant, obs))[0].numpy()
  scores = np.where(obs["candidate_mask"], obs["candidate_scores"], -np.inf)
  for row_q, row_scores, mask in zip(q, scores, obs["candidate_mask"]):
    kept = np.argsort(-row_scores)[:min(size, mask.sum())]
    assert set(np.flatnonzero(row_q > MASKED_Q_VALUE)) == set(kept)


def test_shortlist_needs_the_scores_and_a_positive_size():
  with pytest.raises(ValueError, match="shortlist_size"):
    ActionHeadQNetwork(_spec(8), _table(), shortlist_size=3)
  with pytest.raises(ValueError, match="shortlist_size"):
    ActionHeadQNetwork(_spec(8, True), _table(), shortlist_size=0)


def test_expected_reward_replaces_the_drawn_reward_with_the_score():
  agent = agents.create_ahdqn_agent(
      ts.time_step_spec(_spec(8, True)), _action_spec(8), _table(),
      tf.keras.optimizers.Adam(1e-3), bootstrap="score_greedy",
      score_residual=True, score_weight=2.0, expected_reward=True)
  obs = _observation(4, 8, seed=11, scores=True)
  first = _time_step(obs)
  second = ts.transition(tf.nest.map_structure(tf.constant, obs),
                         reward=tf.ones(4), discount=tf.ones(4))
  stacked = tf.nest.map_structure(lambda a, b: tf.stack([a, b], 1),
                                  first, second)
  actions = tf.constant([[1, 0], [3, 0], [5, 0], [7, 0]], tf.int32)
  experience = trajectory.Trajectory(
      step_type=stacked.step_type, observation=stacked.observation,
      action=actions, policy_info=(), next_step_type=stacked.step_type,
      reward=stacked.reward, discount=stacked.discount)
  transition = agent._as_transition(experience)  # pylint: disable=protected-access
  np.testing.assert_allclose(
      transition.next_time_step.reward.numpy(),
      2.0 * obs["candidate_scores"][np.arange(4), [1, 3, 5, 7]], rtol=1e-6)


def test_expected_reward_needs_the_score_greedy_bootstrap_and_one_step():
  optimizer = tf.keras.optimizers.Adam(1e-3)
  spec = ts.time_step_spec(_spec(8, True))
  with pytest.raises(ValueError, match="expected_reward"):
    agents.create_ahdqn_agent(spec, _action_spec(8), _table(), optimizer,
                              expected_reward=True)
  with pytest.raises(ValueError, match="n_step_update"):
    agents.create_ahdqn_agent(spec, _action_spec(8), _table(), optimizer,
                              bootstrap="score_greedy", expected_reward=True,
                              n_step_update=3)


def test_a_shortlisting_agent_explores_and_acts_within_the_shortlist():
  tf.random.set_seed(9)
  agent = agents.create_ahdqn_agent(
      ts.time_step_spec(_spec(8, True)), _action_spec(8), _table(),
      tf.keras.optimizers.Adam(1e-3), epsilon_greedy=1.0, shortlist_size=2)
  obs = _observation(64, 8, seed=12, scores=True)
  obs["candidate_mask"][:, :2] = True
  scores = np.where(obs["candidate_mask"], obs["candidate_scores"], -1.0)
  best_two = np.argsort(-scores, axis=1)[:, :2]
  for policy in (agent.policy, agent.collect_policy):
    action = policy.action(_time_step(obs)).action.numpy()
    assert (best_two == action[:, None]).any(axis=1).all()


@pytest.mark.parametrize("inputs", [("similarity", "scores"),
                                    ("features", "similarity")])
def test_head_reads_only_the_chosen_candidate_inputs(inputs):
  table = _table()
  net = ActionHeadQNetwork(_spec(6, True), table, embedding_dim=3,
                           state_layers=(5,), head_layers=(4,),
                           history_decay=0.7, head_candidate_inputs=inputs)
  obs = _observation(5, 6, scores=True)
  q = net(tf.nest.map_structure(tf.constant, obs))[0].numpy()
  np.testing.assert_allclose(q, _reference_q(net, obs, table, 0.7, inputs),
                             rtol=1e-4, atol=1e-5)


def test_head_candidate_inputs_are_checked():
  with pytest.raises(ValueError, match="head_candidate_inputs"):
    ActionHeadQNetwork(_spec(6, True), _table(),
                       head_candidate_inputs=("colour",))
  with pytest.raises(ValueError, match="head_candidate_inputs"):
    ActionHeadQNetwork(_spec(6), _table(), head_candidate_inputs=("scores",))


@pytest.mark.parametrize("inputs", [("similarity", "scores", "lookahead"),
                                    ("lookahead",)])
def test_head_reads_the_lookahead_values_as_their_own_input(inputs):
  table = _table()
  net = ActionHeadQNetwork(_spec(6, True, True), table, embedding_dim=3,
                           state_layers=(5,), head_layers=(4,),
                           history_decay=0.7, head_candidate_inputs=inputs)
  obs = _observation(5, 6, scores=True, lookahead=True)
  q = net(tf.nest.map_structure(tf.constant, obs))[0].numpy()
  np.testing.assert_allclose(q, _reference_q(net, obs, table, 0.7, inputs),
                             rtol=1e-4, atol=1e-5)


def test_lookahead_weight_starts_q_as_the_models_lookahead():
  net = ActionHeadQNetwork(_spec(6, True, True), _table(), embedding_dim=3,
                           state_layers=(5,), head_layers=(4,),
                           score_residual=True, score_weight=1.0,
                           lookahead_weight=0.5)
  obs = _observation(5, 6, seed=3, scores=True, lookahead=True)
  q, _ = net(tf.nest.map_structure(tf.constant, obs))
  # The head starts at zero: Q = p + 0.5 l + V(s), V the same in a row.
  offset = (q.numpy() - obs["candidate_scores"] -
            0.5 * obs["candidate_lookahead"])
  for row, mask in zip(offset, obs["candidate_mask"], strict=True):
    np.testing.assert_allclose(row[mask], row[mask][0], atol=1e-5)


def test_lookahead_weight_needs_the_residual_and_the_key():
  with pytest.raises(ValueError, match="lookahead_weight"):
    ActionHeadQNetwork(_spec(6, True), _table(), score_residual=True,
                       lookahead_weight=0.5)
  with pytest.raises(ValueError, match="lookahead_weight"):
    ActionHeadQNetwork(_spec(6, True, True), _table(), lookahead_weight=0.5)
  with pytest.raises(ValueError, match="head_candidate_inputs"):
    ActionHeadQNetwork(_spec(6, True), _table(),
                       head_candidate_inputs=("lookahead",))


def test_chosen_candidate_q_gathers_the_lookahead_too():
  agent = agents.create_ahdqn_agent(
      ts.time_step_spec(_spec(8, True, True)), _action_spec(8), _table(),
      tf.keras.optimizers.Adam(1e-3), bootstrap="score_greedy",
      score_residual=True, lookahead_weight=0.5,
      head_candidate_inputs=("similarity", "scores", "lookahead"))
  obs = _observation(6, 8, seed=4, scores=True, lookahead=True)
  obs["candidate_mask"][:, 2] = True
  full = agent._q_network(tf.nest.map_structure(tf.constant, obs))[0]  # pylint: disable=protected-access
  chosen = agent._compute_q_values(  # pylint: disable=protected-access
      _time_step(obs), tf.fill([6], 2))
  np.testing.assert_allclose(chosen.numpy(), full.numpy()[:, 2], rtol=1e-5,
                             atol=1e-6)
