"""OffPolicyEvaluation, the cross-fitted RegressionModel and estimated
propensities, on a synthetic contextual bandit whose target value is exact.

scikit-learn is not a dependency: the models are small NumPy classes with
its fit/predict(_proba) interface.
"""

import os

import numpy as np
import pytest

from playlist_sim import evaluation as ev
from playlist_sim.evaluation import offpolicy
from playlist_sim.evaluation import regression
from playlist_sim.evaluation import robust


class RidgeRegressor:
  """Least squares with a small ridge, sklearn-style."""

  def __init__(self, ridge: float = 1e-3):
    self.ridge = ridge
    self.coef_ = None

  def fit(self, features, targets):
    x = np.hstack([features, np.ones((len(features), 1))])
    self.coef_ = np.linalg.solve(x.T @ x + self.ridge * np.eye(x.shape[1]),
                                 x.T @ targets)
    return self

  def predict(self, features):
    return np.hstack([features, np.ones((len(features), 1))]) @ self.coef_


class BucketClassifier:
  """P(action | context bucket) by counting; context is one-hot buckets."""

  def __init__(self, n_actions: int = 3):
    self.n_actions = n_actions
    self.table_ = None

  def fit(self, features, labels):
    buckets = features.argmax(axis=1)
    table = np.ones((features.shape[1], self.n_actions))  # Laplace.
    np.add.at(table, (buckets, labels), 1.0)
    self.table_ = table / table.sum(axis=1, keepdims=True)
    return self

  def predict_proba(self, features):
    return self.table_[features.argmax(axis=1)]


def _bandit(seed: int, n: int = 4000, buckets: int = 4, actions: int = 3):
  """One-hot contexts, softmax logging and target, Bernoulli rewards."""
  rng = np.random.default_rng(seed)
  bucket = rng.integers(0, buckets, size=n)
  context = np.eye(buckets)[bucket]
  base = np.random.default_rng(99)
  means = base.uniform(0.1, 0.9, size=(buckets, actions))
  logging = base.dirichlet(np.ones(actions) * 3, size=buckets)
  target = base.dirichlet(np.ones(actions), size=buckets)
  action = np.array([rng.choice(actions, p=logging[b]) for b in bucket])
  reward = rng.binomial(1, means[bucket, action]).astype(np.float64)
  truth = float((target * means).sum(axis=1) @ np.bincount(
      bucket, minlength=buckets) / n)
  return dict(context=context, action=action, reward=reward,
              pscore=logging[bucket, action],
              action_dist=target[bucket][:, :, None], truth=truth)


ESTIMATORS = [ev.IPS(), ev.SNIPS(), ev.DM(), ev.DR(), robust.SNDR(),
              robust.SwitchDR(threshold=5.0), robust.DRos(shrinkage=10.0),
              robust.SubGaussianIPS(smoothing=0.01)]


@pytest.fixture(scope="module")
def bandit():
  data = _bandit(seed=1)
  model = regression.RegressionModel(n_actions=3, base_model=RidgeRegressor)
  data["q"] = model.fit_predict(data["context"], data["action"],
                                data["reward"], n_folds=3, random_state=0)
  return data


def _ope(data, with_pscore=True):
  feedback = {k: data[k] for k in ("reward", "action", "context")}
  if with_pscore:
    feedback["pscore"] = data["pscore"]
  return offpolicy.OffPolicyEvaluation(bandit_feedback=feedback,
                                       ope_estimators=ESTIMATORS)


def test_runner_values_equal_each_estimator(bandit):
  values = _ope(bandit).estimate_policy_values(
      action_dist=bandit["action_dist"],
      estimated_rewards_by_reg_model=bandit["q"])
  assert list(values) == [e.estimator_name for e in ESTIMATORS]
  assert values["dr"] == ev.DR().estimate_policy_value(
      reward=bandit["reward"], action=bandit["action"],
      pscore=bandit["pscore"], action_dist=bandit["action_dist"],
      estimated_rewards_by_reg_model=bandit["q"])


def test_runner_estimates_are_near_the_truth(bandit):
  errors = _ope(bandit).evaluate_performance_of_estimators(
      ground_truth_policy_value=bandit["truth"],
      action_dist=bandit["action_dist"],
      estimated_rewards_by_reg_model=bandit["q"])
  # 4000 decisions, well-overlapping policies: every estimator within 10%.
  assert max(errors.values()) < 0.10, errors
  squared = _ope(bandit).evaluate_performance_of_estimators(
      bandit["truth"], bandit["action_dist"], bandit["q"], metric="se")
  assert squared["dr"] == pytest.approx(errors["dr"]**2 * bandit["truth"]**2)


def test_summary_intervals_and_figure(bandit, tmp_path):
  ope = _ope(bandit)
  summary = ope.summarize_off_policy_estimates(
      bandit["action_dist"], bandit["q"], n_bootstrap_samples=100)
  logged = bandit["reward"].mean()
  for row in summary.values():
    assert row["ci_low"] <= row["estimate"] <= row["ci_high"]
    assert row["relative_estimated_policy_value"] == pytest.approx(
        row["estimate"] / logged)
  assert "snips" in offpolicy.format_summary(summary)
  path = ope.visualize_off_policy_estimates(
      bandit["action_dist"], bandit["q"], n_bootstrap_samples=50,
      fig_dir=str(tmp_path), is_relative=True)
  with open(path, "rb") as png:
    assert png.read(8) == b"\x89PNG\r\n\x1a\n"
  assert os.path.getsize(path) > 1000


def test_cross_fitted_model_is_out_of_sample(bandit):
  # Each fold's rows are predicted by a model fitted on the other folds.
  folds = regression.cross_fit_folds(len(bandit["reward"]), 3, 0)
  held = folds == 0
  features = np.hstack([bandit["context"], np.eye(3)[bandit["action"]]])
  model = RidgeRegressor().fit(features[~held], bandit["reward"][~held])
  for action in range(3):
    grid = np.hstack([bandit["context"][held],
                      np.tile(np.eye(3)[action], (held.sum(), 1))])
    np.testing.assert_allclose(bandit["q"][held, action, 0],
                               model.predict(grid), atol=1e-12)
  assert np.bincount(folds).tolist() == [1334, 1333, 1333]


def test_estimated_propensities_path():
  data = _bandit(seed=2)
  estimated = regression.estimate_propensities(
      data["context"], data["action"], n_actions=3,
      base_model=lambda: BucketClassifier(3), n_folds=2)
  assert np.abs(estimated - data["pscore"]).max() < 0.05
  ope = _ope(data, with_pscore=False)
  with pytest.raises(ev.EstimatorInputError, match="estimated_pscore"):
    ope.estimate_policy_values(action_dist=data["action_dist"])
  values = offpolicy.OffPolicyEvaluation(
      bandit_feedback={k: data[k] for k in ("reward", "action")},
      ope_estimators=[ev.IPS(), ev.SNIPS()]).estimate_policy_values(
          action_dist=data["action_dist"], estimated_pscore=estimated)
  for value in values.values():
    assert abs(value - data["truth"]) / data["truth"] < 0.1


@pytest.mark.parametrize("make, argument", [
    (lambda: offpolicy.OffPolicyEvaluation({"reward": [1.0]}, [ev.IPS()]),
     "bandit_feedback"),
    (lambda: offpolicy.OffPolicyEvaluation(
        {"reward": [1.0], "action": [0]}, [ev.IPS(), ev.IPS(max_weight=2)]),
     "ope_estimators"),
    (lambda: offpolicy.OffPolicyEvaluation(
        {"reward": [1.0], "action": [0]}, []), "ope_estimators"),
    (lambda: regression.RegressionModel(0, RidgeRegressor), "n_actions"),
    (lambda: regression.RegressionModel(2, object()), "base_model"),
    (lambda: regression.RegressionModel(2, RidgeRegressor).fit_predict(
        np.zeros((4, 2)), [0, 1, 0, 1], [1.0, 0.0, 1.0, 0.0], n_folds=5),
     "n_folds"),
    (lambda: regression.RegressionModel(2, RidgeRegressor).fit_predict(
        np.zeros((4, 2)), [0, 1, 0, 2], [1.0, 0.0, 1.0, 0.0]), "action"),
    (lambda: regression.RegressionModel(2, RidgeRegressor).fit_predict(
        np.zeros((3, 2)), [0, 1, 0, 1], [1.0, 0.0, 1.0, 0.0]), "context"),
    (lambda: regression.estimate_propensities(
        np.zeros((4, 2)), [0, 1, 0, 1], 2, RidgeRegressor), "base_model"),
])
def test_bad_runner_and_model_input(make, argument):
  with pytest.raises(ev.EstimatorInputError) as raised:
    make()
  assert raised.value.argument == argument


def test_bad_metric_and_truth(bandit):
  ope = _ope(bandit)
  with pytest.raises(ev.EstimatorInputError, match="metric"):
    ope.evaluate_performance_of_estimators(1.0, bandit["action_dist"],
                                           bandit["q"], metric="mse")
  with pytest.raises(ev.EstimatorInputError,
                     match="ground_truth_policy_value"):
    ope.evaluate_performance_of_estimators(0.0, bandit["action_dist"],
                                           bandit["q"])


@pytest.mark.slow
def test_keras_model_as_reward_model(bandit):
  from user_models import _keras2  # noqa: F401  pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def make():
    model = tf.keras.Sequential([tf.keras.layers.Dense(
        1, activation="sigmoid", input_shape=(7,))])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05), loss="mse")
    return model
  q = regression.RegressionModel(
      n_actions=3, base_model=make,
      fit_kwargs=dict(epochs=3, verbose=0, batch_size=256)).fit_predict(
          bandit["context"][:600], bandit["action"][:600],
          bandit["reward"][:600], n_folds=2)
  assert q.shape == (600, 3, 1)
  assert np.all((q > 0) & (q < 1))
