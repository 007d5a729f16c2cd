"""The SWM's sequence stage: which sessions it fits, and as which user."""

import numpy as np
import pytest

from user_models import fitting, keras_models
from user_models.log_inputs import model_inputs, prepare_inputs


class _Stop(Exception):
  """Raised by the spy once the stage's arrays are seen."""


def test_as_unknown_users_zeroes_the_index_of_the_chosen_sessions_only():
  candidates = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) + 1
  before = candidates.copy()
  out = fitting.as_unknown_users(candidates, np.array([False, True]))
  assert out.shape == (1, 3, 4)
  np.testing.assert_array_equal(out[0, :, -1], 0.0)
  np.testing.assert_array_equal(out[0, :, :-1], candidates[1, :, :-1])
  np.testing.assert_array_equal(candidates, before)  # A copy.


@pytest.mark.parametrize("as_unknown", [True, False])
def test_the_sequence_stage_plays_its_sessions_as_the_unknown_user(
    tiny_trained, tmp_path, monkeypatch, as_unknown):
  inputs = prepare_inputs(tiny_trained["logs"], split_by="user")
  assert inputs.user_index is not None
  held_rows = inputs.data.held_out[inputs.data.bounds.session_index]
  cwm = fitting.TrainedModel(
      keras_models.build_cwm(inputs.spec, inputs.user_vocab,
                             hidden_units=(8,)),
      np.full((held_rows.sum(), 5), 0.2), held_rows, 1, None, {}, None, 0)
  seen = {}

  def spy(model, train, valid, *args, **kwargs):
    seen["train"], seen["valid"] = train["x"][1], valid[0][1]
    raise _Stop

  monkeypatch.setattr(fitting, "fit_keras_model", spy)
  with pytest.raises(_Stop):
    fitting.train_swm(inputs, cwm, str(tmp_path), 0, {}, 1e-3, 16, 0, True,
                      True, {"hidden_units": (8,)},
                      stage_as_unknown_users=as_unknown)
  stage_fit, stage_valid = fitting.swm_stage_sessions(inputs, 0, True,
                                                      as_unknown)
  # As the unknown user every fit session is fitted; as known users, half
  # of the validation sessions (the embedding has memorised the fit ones).
  if as_unknown:
    np.testing.assert_array_equal(stage_fit, inputs.fit)
    np.testing.assert_array_equal(stage_valid, inputs.validation)
  else:
    assert not (stage_fit & inputs.fit).any()
    assert (stage_fit | stage_valid).sum() == inputs.validation.sum()
  real = model_inputs(inputs, keras_models.SWM_NAME)["candidates"]
  for got, sessions in ((seen["train"], stage_fit),
                        (seen["valid"], stage_valid)):
    # Everything but the user index is the sessions' own.
    np.testing.assert_array_equal(got[..., :-1], real[sessions][..., :-1])
    if as_unknown:
      np.testing.assert_array_equal(got[..., -1], 0.0)
    else:
      np.testing.assert_array_equal(got[..., -1], real[sessions][..., -1])
      assert got[..., -1].max() > 0


@pytest.mark.integration
def test_an_ensemble_trains_each_member_from_its_own_seed_and_averages_them(
    tiny_trained, tmp_path):
  inputs = prepare_inputs(tiny_trained["logs"], split_by="user")
  fit_args = dict(max_epochs=1, patience=1, lr_patience=1, verbose=0)
  architecture = dict(embedding_dim=4, user_l2=1e-3, tower_units=8,
                      hidden_units=(8,))
  trained = fitting.train_cwm_ensemble(inputs, str(tmp_path), 5, 2, fit_args,
                                       1e-3, 256, **architecture)
  members = keras_models.ensemble_members(trained.model)
  assert len(members) == 2
  single = fitting.train_cwm(inputs, str(tmp_path / "one"), 6, fit_args,
                             1e-3, 256, **architecture)
  x = model_inputs(inputs, keras_models.CWM_NAME)["x"][trained.held_rows]
  # Member 1 is the CWM of seed 5 + 1, alone.
  np.testing.assert_allclose(members[1](x[:50]).numpy(),
                             single.model(x[:50]).numpy(), atol=1e-5)
  np.testing.assert_allclose(
      trained.probs, trained.model.predict(x, verbose=0), atol=1e-5)
  assert trained.stage_metrics["ensemble_member_seeds"] == [5, 6]
  assert trained.epochs == sum(trained.stage_metrics["ensemble_member_epochs"])
  assert len(trained.stage_metrics["ensemble_member_auc"]) == 2
  assert np.isfinite(trained.history.history["val_loss"][0])
