"""Tests of the CWM's additive history term (user_models.history_term)."""

import numpy as np
import pytest

import user_models  # noqa: F401  (before TensorFlow)
from user_models import keras_models
from user_models import keras_user_model
from user_models.features import FeatureSpec
from user_models.history_term import HISTORY_TERM_LAYERS, HistoryTerm

import tensorflow as tf  # pylint: disable=g-bad-import-order

SPEC = FeatureSpec(user_dim=8, track_dim=29)
VOCAB = 6
_H = SPEC.history_window
# Column of the first history cosine in a CWM row (after user, track and
# the five session scalars).
_COS = SPEC.user_dim + SPEC.track_dim + 5


def _rows(n, rng):
  x = rng.normal(size=(n, SPEC.cwm_dim + 1)).astype(np.float32)
  x[:, -1] = rng.integers(0, VOCAB, n)
  x[:, _COS + _H:_COS + 2 * _H] = 1.0  # Every history slot holds a track.
  return x


def _set_identity_cost(model, ages, direction):
  """f(cos) = cos (through a relu of +cos and -cos), the given age weights
  and level direction, so the term is exactly sum_h ages_h * cos_h."""
  hidden = model.get_layer("history_slot_hidden")
  kernel = np.zeros(hidden.kernel.shape, np.float32)
  kernel[0, :2] = [1.0, -1.0]
  hidden.set_weights([kernel, np.zeros(hidden.bias.shape, np.float32)])
  slot = model.get_layer("history_slot")
  out = np.zeros(slot.kernel.shape, np.float32)
  out[:2, 0] = [1.0, -1.0]
  slot.set_weights([out, np.zeros(1, np.float32)])
  model.get_layer("history_ages").set_weights(
      [np.asarray(ages, np.float32)[:, None]])
  model.get_layer("history_levels").set_weights(
      [np.asarray(direction, np.float32)[None, :]])


def _listen_logit_gap(probs):
  """log P(listen) - log P(skip_1): moves by exactly the term's listen part."""
  return np.log(probs[:, 4]) - np.log(probs[:, 0])


def test_term_starts_at_zero_and_adds_the_weighted_sum_of_slot_costs():
  rng = np.random.default_rng(0)
  tf.keras.utils.set_random_seed(0)
  model = keras_models.build_cwm(SPEC, VOCAB, history_units=4)
  assert set(HISTORY_TERM_LAYERS) <= {layer.name for layer in model.layers}
  x = _rows(6, rng)
  base = _listen_logit_gap(model(x).numpy())
  assert not model.get_layer("history_levels").get_weights()[0].any()
  # Whatever the slot costs, a zero level direction (the start) adds nothing.
  ages = 0.5 ** np.arange(_H)[::-1]  # The most recent slot is the last.
  _set_identity_cost(model, ages, [0, 0, 0, 0, 0])
  np.testing.assert_allclose(_listen_logit_gap(model(x).numpy()), base,
                             atol=1e-6)
  # With f(cos) = cos, the listen logit moves by -sum_h age_h * cos_h.
  _set_identity_cost(model, ages, [0, 0, 0, 0, -1.0])
  cos = x[:, _COS:_COS + _H]
  np.testing.assert_allclose(_listen_logit_gap(model(x).numpy()) - base,
                             -(cos * ages).sum(1), rtol=1e-4, atol=1e-4)
  # Empty slots cost nothing: only the MLP's reading of the flags changes.
  empty = x.copy()
  empty[:, _COS + _H:_COS + 2 * _H] = 0.0
  with_term = _listen_logit_gap(model(empty).numpy())
  _set_identity_cost(model, ages, [0, 0, 0, 0, 0])
  np.testing.assert_allclose(with_term, _listen_logit_gap(model(empty).numpy()),
                             atol=1e-5)


def test_model_with_the_term_round_trips_in_safe_mode(tmp_path):
  rng = np.random.default_rng(1)
  model = keras_models.build_cwm(SPEC, VOCAB, history_units=4)
  _set_identity_cost(model, np.linspace(0.1, 1.0, _H), [0.2, 0, 0, 0, -1.0])
  x = _rows(5, rng)
  path = keras_user_model.save_user_model(model, tmp_path / "m.keras")
  loaded = keras_user_model.load_user_model(path)
  np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)
  assert HistoryTerm.from_model(loaded).window == _H
  assert HistoryTerm.from_model(keras_models.build_cwm(SPEC, VOCAB)) is None


def test_swm_copies_the_term_and_starts_as_its_cwm():
  rng = np.random.default_rng(2)
  cwm = keras_models.build_cwm(SPEC, VOCAB, history_units=4)
  _set_identity_cost(cwm, np.linspace(0.1, 1.0, _H), [0.2, 0, 0, 0, -1.0])
  swm = keras_models.build_swm(SPEC, VOCAB, state_units=8, history_units=4)
  copied = keras_models.copy_cwm_weights(cwm, swm)
  assert set(HISTORY_TERM_LAYERS) <= set(copied)
  steps = rng.normal(size=(2, 4, SPEC.swm_step_dim)).astype(np.float32)
  x = _rows(8, rng)
  u, f = SPEC.user_dim, SPEC.track_dim
  cands = np.concatenate([x[:, :u + f], np.zeros((8, 8), np.float32),
                          x[:, u + f:]], axis=1).reshape(2, 4, -1)
  np.testing.assert_allclose(swm([steps, cands]).numpy().reshape(8, 5),
                             cwm(x).numpy(), atol=1e-5)
  _, head = keras_models.swm_serving_models(swm, SPEC)
  state = np.zeros((8, 8), np.float32)
  assert head([state, cands.reshape(8, -1)]).numpy().shape == (8, 5)


def test_bad_sizes_are_named():
  with pytest.raises(ValueError, match="units and history_window"):
    HistoryTerm(0, 10)
  term = HistoryTerm(4, 3)
  with pytest.raises(ValueError, match="2 x 3 history slots"):
    term.logits(tf.keras.Input((12,)))


def test_without_the_mlp_history_acts_only_through_the_term(tmp_path):
  rng = np.random.default_rng(3)
  model = keras_models.build_cwm(SPEC, VOCAB, history_units=4,
                                 history_in_mlp=False)
  x = _rows(5, rng)
  moved = x.copy()
  moved[:, _COS:_COS + 2 * _H] = rng.normal(size=(5, 2 * _H))
  # The term starts at zero, and the MLP no longer reads the slots.
  np.testing.assert_allclose(model(moved).numpy(), model(x).numpy(),
                             atol=1e-6)
  ages = np.linspace(0.1, 1.0, _H)
  _set_identity_cost(model, ages, [0, 0, 0, 0, -1.0])
  base = _listen_logit_gap(model(x).numpy())
  x2 = x.copy()
  x2[:, _COS:_COS + _H] += 0.25
  np.testing.assert_allclose(_listen_logit_gap(model(x2).numpy()) - base,
                             np.full(5, -0.25 * ages.sum()), rtol=1e-4,
                             atol=1e-4)
  loaded = keras_user_model.load_user_model(
      keras_user_model.save_user_model(model, tmp_path / "m.keras"))
  assert not HistoryTerm.from_model(loaded).in_mlp
  np.testing.assert_allclose(loaded(x2).numpy(), model(x2).numpy(),
                             atol=1e-6)


@pytest.mark.parametrize("in_mlp", [True, False])
def test_model_with_the_term_converts_to_litert(in_mlp):
  pytest.importorskip("ai_edge_litert")
  from user_models.litert import LiteRTRunner, convert_keras_model
  model = keras_models.build_cwm(SPEC, VOCAB, history_units=4,
                                 history_in_mlp=in_mlp)
  _set_identity_cost(model, np.linspace(0.1, 1.0, _H), [0.2, 0, 0, 0, -1.0])
  x = _rows(4, np.random.default_rng(4))
  runner = LiteRTRunner(model_content=convert_keras_model(model, "fp32"))
  np.testing.assert_allclose(runner(x)[0], model(x).numpy(), atol=1e-5)


@pytest.mark.slow  # Two one-epoch trainings on the tiny logs.
@pytest.mark.parametrize("kind", ["cwm", "swm"])
def test_train_user_model_builds_the_term(tiny_trained, tmp_path, kind):
  from user_models import training
  metrics = training.train_user_model(
      str(tmp_path / kind), tiny_trained["logs"], model_type=kind,
      max_epochs=1, progress=False, history_units=4, history_in_mlp=False)
  assert np.isfinite(metrics["log_loss"])
  model = keras_user_model.load_user_model(metrics["model_path"])
  term = HistoryTerm.from_model(model)
  assert term is not None and not term.in_mlp
  served = keras_user_model.KerasUserModel(metrics["model_path"],
                                           tiny_trained["tracks"])
  assert served.kind == kind
