"""Propensity weights: the observable policy's fit recovers a known logit,
its probabilities are a distribution over the catalog, the window weights
are the products the docstring defines, and bad propensities are refused
with a message that says what to do."""

import numpy as np
import pytest

from playlist_sim.data import propensity


def _unit(x):
  return x / np.linalg.norm(x, axis=1, keepdims=True)


def _catalog(rng, n=200):
  acoustic = _unit(rng.normal(size=(n, 8)))
  table = np.column_stack([np.argsort(np.argsort(rng.normal(size=n))) /
                           (n - 1), rng.normal(size=(n, 2))])
  return acoustic, table


def _choices(rng, acoustic, table, theta, sessions=800, length=5):
  """Sessions of `length` choices from the softmax over the catalog."""
  profiles = _unit(rng.normal(size=(sessions, 8)))
  logits = theta[0] * profiles @ acoustic.T + (table @ theta[1:])[None, :]
  prob = np.exp(logits - logits.max(axis=1, keepdims=True))
  prob /= prob.sum(axis=1, keepdims=True)
  tracks = np.stack([rng.choice(len(acoustic), length, p=p) for p in prob])
  group = np.repeat(np.arange(sessions), length)
  return profiles, group, tracks.ravel(), prob


def test_the_fit_recovers_a_known_conditional_logit():
  rng = np.random.default_rng(0)
  acoustic, table = _catalog(rng)
  theta = np.array([2.0, 1.0, -0.5, 0.0])
  profiles, group, tracks, _ = _choices(rng, acoustic, table, theta)
  policy, summary = propensity.fit_observable_policy(
      profiles, group, tracks, acoustic, table,
      np.ones(len(profiles), bool))
  fitted = np.concatenate([[policy.cosine_weight], policy.track_weights])
  np.testing.assert_allclose(fitted, theta, atol=0.2)
  assert summary["converged"]
  assert summary["mean_log_likelihood"] > summary["uniform_log_likelihood"]


def test_log_probabilities_are_a_distribution_over_the_catalog():
  rng = np.random.default_rng(1)
  acoustic, table = _catalog(rng, n=50)
  policy = propensity.ObservablePolicy(1.5, np.array([0.7, 0.2, -0.3]))
  profiles = _unit(rng.normal(size=(3, 8)))
  group = np.repeat(np.arange(3), 50)
  tracks = np.tile(np.arange(50), 3)
  log_p = policy.log_probabilities(profiles, group, tracks, acoustic, table)
  np.testing.assert_allclose(np.exp(log_p).reshape(3, 50).sum(axis=1), 1.0)


def _naive_weights(log_obs, prop, position, session, window, on):
  ratio = np.exp(log_obs) / prop
  means = {p: ratio[on & (position == p)].mean() for p in np.unique(position)}
  ratio = ratio / np.array([means[p] for p in position])
  out = np.empty_like(ratio)
  for r in range(ratio.size):
    k = r
    out[r] = 1.0
    while k > r - window and k >= 0 and session[k] == session[r]:
      out[r] *= ratio[k]
      k -= 1
  return out / out[on].mean()


@pytest.mark.parametrize("window", [1, 3])
def test_window_weights_are_products_of_normalised_ratios(window):
  rng = np.random.default_rng(2)
  lengths = [4, 6, 5]
  session = np.repeat(np.arange(3), lengths)
  offsets = np.concatenate([[0], np.cumsum(lengths)])
  position = np.concatenate([np.arange(1, n + 1) for n in lengths])
  log_obs = np.log(rng.uniform(0.001, 0.02, session.size))
  prop = rng.uniform(0.005, 0.03, session.size)
  on = np.ones(session.size, bool)
  weights, summary = propensity.propensity_weights(
      log_obs, prop, position, offsets, session, window, on,
      cap_quantile=None)
  np.testing.assert_allclose(
      weights, _naive_weights(log_obs, prop, position, session, window, on))
  assert summary["window"] == window and summary["cap"] is None
  assert 0.0 < summary["ess_fraction"] <= 1.0


def test_the_logging_policy_itself_gives_weight_one():
  position = np.tile(np.arange(1, 11), 20)
  session = np.repeat(np.arange(20), 10)
  offsets = np.arange(0, 201, 10)
  prop = np.random.default_rng(3).uniform(0.001, 0.05, 200)
  weights, _ = propensity.propensity_weights(
      np.log(prop), prop, position, offsets, session, 4,
      np.ones(200, bool))
  np.testing.assert_allclose(weights, 1.0)


def test_weights_are_capped_and_scaled_on_the_training_rows():
  rng = np.random.default_rng(4)
  session = np.repeat(np.arange(50), 10)
  offsets = np.arange(0, 501, 10)
  position = np.tile(np.arange(1, 11), 50)
  on = session < 40
  weights, summary = propensity.propensity_weights(
      rng.normal(size=500), np.full(500, 0.01), position, offsets, session,
      5, on, cap_quantile=0.9)
  assert weights[on].mean() == pytest.approx(1.0)
  assert summary["max_weight"] == pytest.approx(weights[on].max())
  # Capped before the scaling: about a tenth of the rows share the maximum.
  assert np.isclose(weights[on], weights[on].max()).mean() >= 0.09


@pytest.mark.parametrize("column, match", [
    (None, "have none; set train_user_model.propensity_window = 0"),
    (np.array([0.5, 0.0, 0.2]), r"1 rows do not \(first: row 1"),
    (np.array([0.5, 1.5, np.nan]), "2 rows do not"),
])
def test_missing_or_bad_propensities_are_refused(column, match):
  with pytest.raises(propensity.PropensityError, match=match):
    propensity.logged_propensities(column, "LOGS")


def test_a_window_below_one_is_refused():
  with pytest.raises(ValueError, match="window must be >= 1"):
    propensity.propensity_weights(np.zeros(2), np.full(2, 0.5),
                                  np.array([1, 2]), np.array([0, 2]),
                                  np.zeros(2, int), 0, np.ones(2, bool))


def test_extreme_ratios_give_finite_weights():
  # A ratio far below the others (exp underflows) must not turn into NaN
  # through the window's running sums.
  log_obs = np.full(20, np.log(0.01))
  log_obs[3] = -2000.0
  weights, _ = propensity.propensity_weights(
      log_obs, np.full(20, 0.01), np.tile(np.arange(1, 11), 2),
      np.array([0, 10, 20]), np.repeat(np.arange(2), 10), 4,
      np.ones(20, bool), cap_quantile=None)
  assert np.isfinite(weights).all() and weights[3] == 0.0
