"""Tests of the CWM/SWM builders: shapes, safe-mode save/load, serving parts."""

import numpy as np
import pytest

import user_models  # noqa: F401  (before TensorFlow)
from user_models import keras_models
from user_models import keras_user_model
from user_models.features import FeatureSpec

import tensorflow as tf  # pylint: disable=g-bad-import-order

SPEC = FeatureSpec(user_dim=8, track_dim=29)
VOCAB = 12


def _cwm_input(n, rng, vocab=VOCAB):
  x = rng.normal(size=(n, SPEC.cwm_dim + (1 if vocab else 0)))
  if vocab:
    x[:, -1] = rng.integers(0, vocab, n)
  return x.astype(np.float32)


def _swm_inputs(n, t, rng):
  steps = rng.normal(size=(n, t, SPEC.swm_step_dim)).astype(np.float32)
  cands = rng.normal(size=(n, t, SPEC.swm_candidate_dim + 1)).astype(
      np.float32)
  cands[..., -1] = rng.integers(0, VOCAB, (n, 1))
  return steps, cands


@pytest.mark.parametrize("vocab", [0, VOCAB])
def test_cwm_is_one_float_input_to_four_probabilities(vocab):
  model = keras_models.build_cwm(SPEC, vocab)
  assert len(model.inputs) == 1
  assert model.input_shape == (None, SPEC.cwm_dim + (1 if vocab else 0))
  probs = model(_cwm_input(5, np.random.default_rng(0), vocab)).numpy()
  assert probs.shape == (5, 5)
  np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
  assert keras_models.model_kind(model) == "cwm"
  assert keras_models.user_vocab_size(model) == vocab


def test_untrained_users_share_the_unknown_users_vector():
  model = keras_models.build_cwm(SPEC, VOCAB)
  table = model.get_layer("user_embedding").embeddings.numpy()
  assert keras_models.share_unknown_user(model, np.array([[3.0], [5.0]])) == (
      VOCAB - 3)
  after = model.get_layer("user_embedding").embeddings.numpy()
  np.testing.assert_array_equal(after[[0, 3, 5]], table[[0, 3, 5]])
  untrained = [i for i in range(1, VOCAB) if i not in (3, 5)]
  np.testing.assert_array_equal(after[untrained],
                                np.repeat(table[:1], len(untrained), 0))
  # A held-out user (row 7) is now scored exactly as the unknown user (0).
  x = _cwm_input(2, np.random.default_rng(1))
  x[:, -1] = [0, 7]
  x[1, :-1] = x[0, :-1]
  probs = model(x).numpy()
  np.testing.assert_allclose(probs[0], probs[1], atol=1e-6)
  assert keras_models.share_unknown_user(keras_models.build_cwm(SPEC, 0),
                                         np.array([1])) == 0


def test_models_use_no_lambda_layers():
  for model in (keras_models.build_cwm(SPEC, VOCAB),
                keras_models.build_swm(SPEC, VOCAB)):
    assert not any(isinstance(layer, tf.keras.layers.Lambda)
                   for layer in model.layers)


def test_safe_mode_round_trip(tmp_path):
  rng = np.random.default_rng(1)
  cwm = keras_models.build_cwm(SPEC, VOCAB)
  swm = keras_models.build_swm(SPEC, VOCAB)
  x = _cwm_input(4, rng)
  seq = _swm_inputs(3, 6, rng)
  for model, inputs, name in ((cwm, x, "c.keras"), (swm, seq, "s.keras")):
    path = keras_user_model.save_user_model(model, tmp_path / name)
    loaded = keras_user_model.load_user_model(path)
    np.testing.assert_allclose(loaded(inputs).numpy(), model(inputs).numpy(),
                               atol=1e-6)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["c.keras", "s.keras"]


def test_swm_step_and_head_reproduce_the_sequence_model():
  rng = np.random.default_rng(2)
  swm = keras_models.build_swm(SPEC, VOCAB, state_units=16)
  _randomise_residual(swm, rng)
  steps, cands = _swm_inputs(3, 7, rng)
  expected = swm([steps, cands]).numpy()
  step, head = keras_models.swm_serving_models(swm, SPEC)
  assert step.output_shape == (None, 16)
  state = np.zeros((3, 16), np.float32)
  for t in range(7):
    state = step([steps[:, t], state]).numpy()
    np.testing.assert_allclose(head([state, cands[:, t]]).numpy(),
                               expected[:, t], atol=1e-5)


def _randomise_residual(swm, rng):
  """The residual starts at zero; give it weights so the state counts."""
  layer = swm.get_layer("residual_logits")
  layer.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32)
                     for w in layer.get_weights()])


def test_swm_starts_as_the_cwm_it_copies():
  rng = np.random.default_rng(4)
  cwm = keras_models.build_cwm(SPEC, VOCAB)
  swm = keras_models.build_swm(SPEC, VOCAB, state_units=8)
  copied = keras_models.copy_cwm_weights(cwm, swm)
  assert "levels" in copied and "user_embedding" in copied
  assert not swm.get_layer("hidden_0").trainable
  assert swm.get_layer("swm_gru").trainable
  steps, cands = _swm_inputs(2, 5, rng)
  # The candidate row is the CWM row with the unit acoustics inside it.
  u, f = SPEC.user_dim, SPEC.track_dim
  x = np.concatenate([cands[..., :u + f], cands[..., u + f + 8:]], axis=-1)
  expected = cwm(x.reshape(10, -1)).numpy().reshape(2, 5, 5)
  np.testing.assert_allclose(swm([steps, cands]).numpy(), expected,
                             atol=1e-6)
  _randomise_residual(swm, rng)  # Then the state changes predictions.
  assert np.abs(swm([steps, cands]).numpy() - expected).max() > 1e-3


def test_swm_serving_parts_share_the_trained_weights():
  swm = keras_models.build_swm(SPEC, 0, state_units=8)
  _, head = keras_models.swm_serving_models(swm, SPEC)
  swm.get_layer("levels").bias.assign(np.array([5.0, 0, 0, 0, 0], np.float32))
  probs = head([np.zeros((1, 8), np.float32),
                np.zeros((1, SPEC.swm_candidate_dim), np.float32)]).numpy()
  assert probs[0, 0] > 0.9  # The head sees the new bias: same variables.


def test_model_kind_rejects_other_models():
  inputs = tf.keras.Input((3,))
  other = tf.keras.Model(inputs, tf.keras.layers.Dense(4)(inputs),
                         name="mine")
  with pytest.raises(ValueError, match="neither a CWM"):
    keras_models.model_kind(other)


def test_cwm_and_swm_parts_convert_to_litert():
  pytest.importorskip("ai_edge_litert")
  from user_models.litert import LiteRTRunner, convert_keras_model
  rng = np.random.default_rng(3)
  cwm = keras_models.build_cwm(SPEC, VOCAB)
  x = _cwm_input(4, rng)
  runner = LiteRTRunner(model_content=convert_keras_model(cwm, "fp32"))
  np.testing.assert_allclose(runner(x)[0], cwm(x).numpy(), atol=1e-5)
  step, _ = keras_models.swm_serving_models(
      keras_models.build_swm(SPEC, VOCAB, state_units=16), SPEC)
  runner = LiteRTRunner(model_content=convert_keras_model(step, "fp32"))
  assert sorted(runner.input_shapes) == sorted([(16,), (SPEC.swm_step_dim,)])


def _ensemble(size=3, vocab=VOCAB):
  members = []
  for seed in range(size):
    tf.keras.utils.set_random_seed(seed)
    members.append(keras_models.build_cwm(SPEC, vocab))
  return members, keras_models.build_cwm_ensemble(members)


def test_cwm_ensemble_is_a_cwm_averaging_its_members_probabilities():
  x = _cwm_input(6, np.random.default_rng(4))
  members, ensemble = _ensemble()
  singles = np.stack([m(x).numpy() for m in members])
  assert singles.std(axis=0).max() > 1e-3  # The members differ.
  np.testing.assert_allclose(ensemble(x).numpy(), singles.mean(axis=0),
                             atol=1e-6)
  assert keras_models.model_kind(ensemble) == "cwm"
  assert ensemble.input_shape == members[0].input_shape
  assert keras_models.user_vocab_size(ensemble) == VOCAB
  assert [m.name for m in keras_models.ensemble_members(ensemble)] == [
      "cwm_member_0", "cwm_member_1", "cwm_member_2"]
  assert keras_models.ensemble_members(keras_models.build_cwm(SPEC)) == []


def test_cwm_ensemble_shares_the_unknown_user_in_every_member():
  members, ensemble = _ensemble(2)
  assert keras_models.share_unknown_user(ensemble, np.array([2, 4])) == (
      VOCAB - 3)
  for member in members:
    table = member.get_layer("user_embedding").embeddings.numpy()
    np.testing.assert_array_equal(table[7], table[0])
    assert not np.array_equal(table[2], table[0])


def test_cwm_ensemble_refuses_bad_members():
  with pytest.raises(ValueError, match="at least 2"):
    keras_models.build_cwm_ensemble([keras_models.build_cwm(SPEC)])
  with pytest.raises(ValueError, match="one input width"):
    keras_models.build_cwm_ensemble([keras_models.build_cwm(SPEC, 0),
                                     keras_models.build_cwm(SPEC, VOCAB)])
  with pytest.raises(ValueError, match="CWMs"):
    keras_models.build_cwm_ensemble([keras_models.build_cwm(SPEC),
                                     keras_models.build_swm(SPEC)])


def test_cwm_ensemble_round_trips_in_safe_mode(tmp_path):
  # Its LiteRT conversion: test_quantization (integration tier).
  x = _cwm_input(5, np.random.default_rng(5))
  _, ensemble = _ensemble(2)
  path = keras_user_model.save_user_model(ensemble, tmp_path / "e.keras")
  loaded = keras_user_model.load_user_model(path)  # Checked, safe mode.
  np.testing.assert_allclose(loaded(x).numpy(), ensemble(x).numpy(),
                             atol=1e-6)
  assert len(keras_models.ensemble_members(loaded)) == 2
