"""OBP-shaped inputs, the added estimators, and OBP 0.5.7's frozen numbers.

`tests/fixtures/obp_reference.npz` holds inputs drawn with a fixed seed and Open
Bandit Pipeline 0.5.7's estimates on them (made by scripts/obp_reference.py
in a separate venv; not regenerated here).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from playlist_sim import evaluation as ev
from playlist_sim.evaluation import robust
from playlist_sim.evaluation import slate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
DATA = os.path.join(ROOT, "tests", "fixtures", "obp_reference.npz")


@pytest.fixture(scope="module")
def reference():
  with np.load(DATA) as data:
    return {k: data[k] for k in data.files}


def _group(reference, prefix):
  return {k.split("/", 1)[1]: v for k, v in reference.items()
          if k.startswith(prefix + "/")}


BANDIT = {
    "ips": ev.IPS(), "ips_clip3": ev.IPS(max_weight=3.0), "snips": ev.SNIPS(),
    "dm": ev.DM(), "dr": ev.DR(), "dr_clip3": ev.DR(max_weight=3.0),
    "switch_dr2": robust.SwitchDR(threshold=2.0),
    "dr_os1": robust.DRos(shrinkage=1.0),
    "dr_os10": robust.DRos(shrinkage=10.0), "sndr": robust.SNDR(),
    "sg_ips01": robust.SubGaussianIPS(smoothing=0.1),
    "sg_ips05": robust.SubGaussianIPS(smoothing=0.5),
}


def _one_d(inputs):
  """Our 1-D form of OBP-form inputs, indexed by hand."""
  rows = np.arange(len(inputs["action"]))
  a, p = inputs["action"], inputs["position"]
  dist, model = inputs["action_dist"], inputs["estimated_rewards_by_reg_model"]
  return dict(
      rewards=inputs["reward"], logging_propensities=inputs["pscore"],
      target_probabilities=dist[rows, a, p],
      predicted_rewards=model[rows, a, p],
      expected_predicted_rewards=(dist[rows, :, p] * model[rows, :, p]).sum(1))


def _needed(estimator, inputs, form):
  if form == "obp":
    if isinstance(estimator, ev.DM):
      return {k: inputs[k] for k in ("action_dist", "position",
                                     "estimated_rewards_by_reg_model")}
    return inputs
  return {k: v for k, v in inputs.items()
          if k in estimator.required_arguments}


@pytest.mark.parametrize("name", sorted(BANDIT))
def test_bandit_matches_frozen_obp(reference, name):
  inputs = _group(reference, "bandit")
  estimator = BANDIT[name]
  expected = float(reference[f"obp_bandit/{name}"])
  obp_form = estimator.estimate_policy_value(**_needed(estimator, inputs,
                                                       "obp"))
  ours = estimator.estimate_policy_value(**_needed(estimator, _one_d(inputs),
                                                   "ours"))
  assert obp_form == pytest.approx(expected, abs=1e-12)
  assert abs(obp_form - ours) <= 1e-12


@pytest.mark.parametrize("name", sorted(BANDIT))
def test_obp_form_interval_equals_one_d_form(reference, name):
  inputs = _group(reference, "bandit")
  estimator = BANDIT[name]
  a = estimator.estimate_interval(**_needed(estimator, inputs, "obp"),
                                  n_bootstrap=50, seed=3)
  b = estimator.estimate_interval(**_needed(estimator, _one_d(inputs),
                                            "ours"), n_bootstrap=50, seed=3)
  for key in a:
    assert abs(a[key] - b[key]) <= 1e-12


SLATE = {"sips": slate.SIPS(), "iips": slate.IIPS(), "rips": slate.RIPS(),
         "cascade_dr": slate.CascadeDR()}


@pytest.mark.parametrize("name", sorted(SLATE))
def test_slate_matches_frozen_obp(reference, name):
  inputs = _group(reference, "slate")
  value = SLATE[name].estimate_policy_value(**inputs)
  assert value == pytest.approx(float(reference[f"obp_slate/{name}"]),
                                abs=1e-12)


def test_cascade_dr_with_zero_model_is_rips(reference):
  inputs = dict(_group(reference, "slate"))
  inputs["q_hat"] = np.zeros_like(inputs["q_hat"])
  assert slate.CascadeDR().estimate_policy_value(**inputs) == pytest.approx(
      slate.RIPS().estimate_policy_value(**inputs), abs=1e-12)


def test_settings_that_reduce_to_dr_dm_ips(reference):
  one_d = _one_d(_group(reference, "bandit"))
  dr = ev.DR().estimate_policy_value(**one_d)
  dm = ev.DM().estimate_policy_value(**one_d)
  ips = ev.IPS().estimate_policy_value(**one_d)
  assert robust.SwitchDR().estimate_policy_value(**one_d) == pytest.approx(dr)
  assert robust.SwitchDR(threshold=0.0).estimate_policy_value(
      **one_d) == pytest.approx(dm)
  assert robust.DRos(shrinkage=float("inf")).estimate_policy_value(
      **one_d) == pytest.approx(dr)
  assert robust.DRos(shrinkage=0.0).estimate_policy_value(
      **one_d) == pytest.approx(dm)
  assert robust.SubGaussianIPS().estimate_policy_value(
      **one_d) == pytest.approx(ips)


def test_slate_estimators_by_hand():
  # Two slates (lengths 2 and 3); w = target / logging of each kind.
  inputs = dict(
      slate_id=[7, 7, 9, 9, 9], position=[0, 1, 0, 1, 2],
      reward=[1.0, 0.0, 1.0, 1.0, 0.0],
      pscore=[0.5, 0.5, 0.25, 0.25, 0.25],
      evaluation_policy_pscore=[0.25, 0.25, 0.5, 0.5, 0.5],
      pscore_item_position=[0.5, 0.5, 0.5, 0.25, 1.0],
      evaluation_policy_pscore_item_position=[1.0, 0.5, 0.25, 0.5, 1.0],
      pscore_cascade=[0.5, 0.25, 0.5, 0.25, 0.125],
      evaluation_policy_pscore_cascade=[0.25, 0.25, 1.0, 0.25, 0.25])
  # SIPS: (0.5 * 1 + 2 * 2) / 2
  assert slate.SIPS().estimate_policy_value(**inputs) == pytest.approx(2.25)
  # IIPS: (2 * 1 + 0) + (0.5 + 2 + 0) -> 4.5 / 2
  assert slate.IIPS().estimate_policy_value(**inputs) == pytest.approx(2.25)
  # RIPS: (0.5 * 1) + (2 * 1 + 1 * 1) -> 3.5 / 2
  assert slate.RIPS().estimate_policy_value(**inputs) == pytest.approx(1.75)
  # PI: slate 7: 1 * (2 + 1 - 1); slate 9: 2 * (0.5 + 2 + 1 - 2) -> 5 / 2
  assert slate.PI().estimate_policy_value(**inputs) == pytest.approx(2.5)


@pytest.mark.parametrize("change, argument", [
    (dict(action_dist="scale"), "action_dist"),
    (dict(action="out_of_range"), "action"),
    (dict(position="out_of_range"), "position"),
    (dict(position=None), "position"),
    (dict(reward="short"), "reward"),
    (dict(pscore="zero"), "pscore"),
    (dict(estimated_rewards_by_reg_model="flat"),
     "estimated_rewards_by_reg_model"),
    (dict(action="float"), "action"),
    (dict(reward="complex"), "reward"),
    (dict(reward="strings"), "reward"),
    (dict(rewards="mixed"), "rewards"),
])
def test_obp_form_bad_input_names_the_argument(reference, change, argument):
  inputs = dict(_group(reference, "bandit"))
  (key, how), = change.items()
  value = inputs.get(key)
  if how is None:
    value = None
  elif how == "scale":
    value = value * 1.01
  elif how == "out_of_range":
    value = value.copy()
    value[3] = inputs["action_dist"].shape[1 if key == "action" else 2]
  elif how == "short":
    value = value[:-1]
  elif how == "zero":
    value = value.copy()
    value[0] = 0.0
  elif how == "flat":
    value = value[:, :, 0]
  elif how == "float":
    value = value.astype(np.float64)
  elif how == "complex":
    value = value.astype(np.complex128)
  elif how == "strings":
    value = value.astype(str)
  elif how == "mixed":
    value = inputs["reward"]
  inputs[key] = value
  with pytest.raises(ev.EstimatorInputError) as raised:
    ev.DR().estimate_policy_value(**inputs)
  assert raised.value.argument == argument


@pytest.mark.integration
def test_estimators_import_without_tensorflow():
  code = ("import sys; import playlist_sim.evaluation.estimators, "
          "playlist_sim.evaluation.robust, playlist_sim.evaluation.slate, "
          "playlist_sim.evaluation.sequential, playlist_sim.evaluation, "
          "simulator.evaluation.estimators; "
          "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'")
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          check=False)
  assert result.returncode == 0, result.stderr
