"""Tests of playlist_sim.evaluation: OPE estimators on logged arrays.

Exact values on small arrays worked out by hand; unbiasedness and variance
checks against the exactly computed value of a target policy in a synthetic
contextual bandit and a two-step MDP; input validation; the bootstrap.
"""

import dataclasses

import numpy as np
import pytest

from playlist_sim import evaluation as ev

# --- Four logged decisions, worked by hand. ---------------------------------
# w = pi / mu = [2, 2, 0.5, 0].
DECISIONS = dict(
    rewards=np.array([1.0, 0.0, 1.0, 1.0]),
    logging_propensities=np.array([0.5, 0.25, 0.8, 0.5]),
    target_probabilities=np.array([1.0, 0.5, 0.4, 0.0]),
    predicted_rewards=np.array([0.5, 0.4, 0.5, 0.9]),
    expected_predicted_rewards=np.array([0.6, 0.2, 0.5, 0.3]),
)

# --- Three sessions (lengths 2, 1, 3), worked by hand. ----------------------
# w = [2, 1 | 2 | 1, 0.5, 2]; rho = [2, 2 | 2 | 1, 0.5, 1].
SESSIONS = dict(
    rewards=np.array([1.0, 1.0, 0.0, 1.0, 0.0, 1.0]),
    logging_propensities=np.array([0.5, 0.5, 0.25, 0.5, 0.8, 0.5]),
    target_probabilities=np.array([1.0, 0.5, 0.5, 0.5, 0.4, 1.0]),
    positions=np.array([1, 2, 1, 1, 2, 3]),
    session_ids=np.array(["a", "a", "b", "c", "c", "c"]),
    predicted_q_values=np.array([1.5, 0.8, 0.5, 1.0, 0.5, 0.6]),
    expected_predicted_q_values=np.array([1.2, 0.6, 0.4, 0.9, 0.3, 0.7]),
)


@pytest.mark.parametrize("estimator, expected", [
    # (2*1 + 2*0 + 0.5*1 + 0*1) / 4
    (ev.IPS(), 0.625),
    # weights clipped at 1: (1 + 0 + 0.5 + 0) / 4
    (ev.IPS(max_weight=1.0), 0.375),
    # 2.5 / (2 + 2 + 0.5 + 0)
    (ev.SNIPS(), 5.0 / 9.0),
    # (0.6 + 0.2 + 0.5 + 0.3) / 4
    (ev.DM(), 0.4),
    # v + w (r - q) = [0.6 + 1.0, 0.2 - 0.8, 0.5 + 0.25, 0.3 + 0] -> 2.05 / 4
    (ev.DR(), 0.5125),
    # clipped at 1: [0.6 + 0.5, 0.2 - 0.4, 0.5 + 0.25, 0.3] -> 1.95 / 4
    (ev.DR(max_weight=1.0), 0.4875),
])
def test_bandit_estimators_exact(estimator, expected):
  assert estimator.estimate_policy_value(**DECISIONS) == pytest.approx(
      expected, abs=1e-12)


@pytest.mark.parametrize("estimator, expected", [
    # a: 2*1 + 2*1 = 4; b: 0; c: 1*1 + 0.5*0 + 1*1 = 2 -> 6 / 3
    (ev.PDIS(), 2.0),
    # a: 2 + 0.5*2 = 3; b: 0; c: 1 + 0 + 0.25*1 = 1.25 -> 4.25 / 3
    (ev.PDIS(gamma=0.5), 17.0 / 12.0),
    # t=1: (2 + 0 + 1) / (2 + 2 + 1); t=2: 2 / (2 + 2 [b ended] + 0.5);
    # t=3: 1 / (2 [a ended] + 2 [b ended] + 1) -> 0.6 + 4/9 + 0.2
    # (normalising over running sessions only would give 0.6 + 0.8 + 1)
    (ev.WPDIS(), 0.8 + 4.0 / 9.0),
    # t=2 and t=3 terms discounted by 0.5 and 0.25
    (ev.WPDIS(gamma=0.5), 0.6 + 0.5 * 4.0 / 9.0 + 0.25 * 0.2),
    # sum_t rho_{t-1} v_t + rho_t (r_t - q_t):
    # a: (1.2 + 2*(1 - 1.5)) + (2*0.6 + 2*(1 - 0.8)) = 0.2 + 1.6 = 1.8
    # b: 0.4 + 2*(0 - 0.5) = -0.6
    # c: (0.9 + 0) + (0.3 + 0.5*(0 - 0.5)) + (0.5*0.7 + 1*(1 - 0.6)) = 1.7
    (ev.SequentialDR(), 2.9 / 3.0),
])
def test_sequential_estimators_exact(estimator, expected):
  assert estimator.estimate_policy_value(**SESSIONS) == pytest.approx(
      expected, abs=1e-12)


def test_sequential_dr_matches_backward_recursion():
  # Session c by the recursion V_t = v_t + w_t (r_t + gamma V_{t+1} - q_t),
  # gamma = 0.5: V_3 = 0.7 + 2*0.4 = 1.5; V_2 = 0.3 + 0.5*(0.75 - 0.5) =
  # 0.425; V_1 = 0.9 + 1*(1 + 0.2125 - 1) = 1.1125. Sessions a and b:
  # V_2 = 0.6 + 0.2 = 0.8, V_1 = 1.2 + 2*(1 + 0.4 - 1.5) = 1.0; b: -0.6.
  value = ev.SequentialDR(gamma=0.5).estimate_policy_value(**SESSIONS)
  assert value == pytest.approx((1.0 - 0.6 + 1.1125) / 3.0, abs=1e-12)


def test_offsets_and_session_ids_agree():
  by_offsets = dict(SESSIONS, session_ids=None, offsets=np.array([0, 2, 3, 6]))
  numeric_ids = dict(SESSIONS, session_ids=np.array([7, 7, 3, 9, 9, 9]))
  for estimator in (ev.PDIS(), ev.WPDIS(), ev.SequentialDR()):
    expected = estimator.estimate_policy_value(**SESSIONS)
    assert estimator.estimate_policy_value(**by_offsets) == expected
    assert estimator.estimate_policy_value(**numeric_ids) == expected


def test_one_step_sessions_reduce_to_bandit_estimators():
  rng = np.random.default_rng(5)
  n = 50
  rows = dict(rewards=rng.random(n),
              logging_propensities=rng.uniform(0.1, 1.0, n),
              target_probabilities=rng.random(n))
  q_hat, v_hat = rng.random(n), rng.random(n)
  sessions = dict(rows, positions=np.ones(n, int), offsets=np.arange(n + 1))
  pairs = (
      (ev.PDIS(), ev.IPS(), {}, {}),
      (ev.WPDIS(), ev.SNIPS(), {}, {}),
      (ev.SequentialDR(), ev.DR(),
       dict(predicted_q_values=q_hat, expected_predicted_q_values=v_hat),
       dict(predicted_rewards=q_hat, expected_predicted_rewards=v_hat)),
  )
  for sequential, bandit, seq_extra, bandit_extra in pairs:
    assert sequential.estimate_policy_value(**sessions, **seq_extra) == (
        pytest.approx(bandit.estimate_policy_value(**rows, **bandit_extra)))


def test_zero_models_reduce_dr_to_importance_sampling():
  zeros = np.zeros(4)
  assert ev.DR().estimate_policy_value(
      **dict(DECISIONS, predicted_rewards=zeros,
             expected_predicted_rewards=zeros)) == pytest.approx(0.625)
  zeros = np.zeros(6)
  assert ev.SequentialDR().estimate_policy_value(
      **dict(SESSIONS, predicted_q_values=zeros,
             expected_predicted_q_values=zeros)) == pytest.approx(2.0)


def test_estimators_are_frozen_dataclasses():
  estimator = ev.IPS(max_weight=5.0)
  with pytest.raises(dataclasses.FrozenInstanceError):
    estimator.max_weight = 1.0
  assert ev.InversePropensityScoring is ev.IPS
  assert ev.WPDIS(gamma=0.9) == ev.WeightedPerDecisionImportanceSampling(0.9)


# --- A synthetic contextual bandit: 3 contexts, 3 actions. ------------------
REWARD_MEANS = np.array([[0.2, 0.5, 0.8], [0.6, 0.3, 0.1], [0.4, 0.7, 0.5]])
LOGGING_POLICY = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.4, 0.4, 0.2]])
TARGET_POLICY = np.array([[0.1, 0.2, 0.7], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
# A biased reward model: DM is off by exactly MODEL_BIAS, DR should not be.
MODEL_BIAS = 0.15
# Contexts are uniform, so the true value is the mean over contexts.
BANDIT_TRUTH = float(np.mean(np.sum(TARGET_POLICY * REWARD_MEANS, axis=1)))


def _sample_actions(rng, probabilities):
  """One action per row of `probabilities` (rows sum to 1)."""
  uniforms = rng.random(probabilities.shape[0])[:, None]
  return np.minimum((uniforms > np.cumsum(probabilities, axis=1)).sum(axis=1),
                    probabilities.shape[1] - 1)


def _bandit_logs(rng, num_decisions):
  contexts = rng.integers(0, 3, size=num_decisions)
  actions = _sample_actions(rng, LOGGING_POLICY[contexts])
  model = REWARD_MEANS + MODEL_BIAS
  return dict(
      rewards=(rng.random(num_decisions) <
               REWARD_MEANS[contexts, actions]).astype(float),
      logging_propensities=LOGGING_POLICY[contexts, actions],
      target_probabilities=TARGET_POLICY[contexts, actions],
      predicted_rewards=model[contexts, actions],
      expected_predicted_rewards=np.sum(TARGET_POLICY * model, axis=1)[
          contexts])


@pytest.fixture(scope="module")
def bandit_estimates():
  """Estimates of each estimator over 400 independent logs of 200 rows."""
  rng = np.random.default_rng(2024)
  estimators = {"ips": ev.IPS(), "clipped": ev.IPS(max_weight=2.0),
                "snips": ev.SNIPS(), "dm": ev.DM(), "dr": ev.DR()}
  estimates = {name: [] for name in estimators}
  for _ in range(400):
    logs = _bandit_logs(rng, 200)
    for name, estimator in estimators.items():
      estimates[name].append(estimator.estimate_policy_value(**logs))
  return {name: np.array(values) for name, values in estimates.items()}


@pytest.mark.parametrize("name", ["ips", "dr"])
def test_bandit_unbiased(bandit_estimates, name):
  values = bandit_estimates[name]
  standard_error = values.std(ddof=1) / np.sqrt(values.size)
  assert abs(values.mean() - BANDIT_TRUTH) < 3.5 * standard_error


def test_bandit_dm_carries_model_bias(bandit_estimates):
  # DM sees no rewards: its mean is the model's value, truth + MODEL_BIAS.
  values = bandit_estimates["dm"]
  assert values.mean() == pytest.approx(BANDIT_TRUTH + MODEL_BIAS, abs=0.005)


def test_bandit_variance_ordering(bandit_estimates):
  variance = {name: v.var() for name, v in bandit_estimates.items()}
  assert variance["snips"] < variance["ips"]
  assert variance["clipped"] < variance["ips"]
  assert variance["dr"] < variance["ips"]
  # What clipping costs: weights above 2 are cut, so the value is too low.
  clipped = bandit_estimates["clipped"]
  assert clipped.mean() < BANDIT_TRUTH - 5 * clipped.std() / np.sqrt(400)


# --- A two-step MDP with 2 states and 2 actions; sessions may end early. ----
INITIAL_STATE = np.array([0.6, 0.4])
STEP1_REWARD = np.array([[0.2, 0.7], [0.5, 0.1]])  # [state, action]
CONTINUE = np.array([[0.9, 0.5], [0.7, 0.8]])  # P(a second step | s1, a1)
NEXT_STATE_1 = np.array([[0.3, 0.8], [0.6, 0.2]])  # P(s2 = 1 | s1, a1)
STEP2_REWARD = np.array([[0.4, 0.9], [0.6, 0.2]])
LOGGING_STEPS = (np.array([[0.5, 0.5], [0.7, 0.3]]),
                 np.array([[0.6, 0.4], [0.3, 0.7]]))
TARGET_STEPS = (np.array([[0.2, 0.8], [0.9, 0.1]]),
                np.array([[0.1, 0.9], [0.8, 0.2]]))


def _exact_q_values():
  """True q-values of the target policy at steps 1 and 2 ([state, action])."""
  q2 = STEP2_REWARD
  v2 = np.sum(TARGET_STEPS[1] * q2, axis=1)
  next_value = (1 - NEXT_STATE_1) * v2[0] + NEXT_STATE_1 * v2[1]
  return STEP1_REWARD + CONTINUE * next_value, q2


Q1_TRUE, Q2_TRUE = _exact_q_values()
MDP_TRUTH = float(INITIAL_STATE @ np.sum(TARGET_STEPS[0] * Q1_TRUE, axis=1))


def _mdp_logs(rng, num_sessions):
  """Sessions under the logging policy, rows grouped by session in order."""
  # A deliberately wrong q-model: sequential DR must not inherit its error.
  q_models = (0.7 * Q1_TRUE + 0.2, 0.7 * Q2_TRUE + 0.2)
  s1 = (rng.random(num_sessions) < INITIAL_STATE[1]).astype(int)
  a1 = _sample_actions(rng, LOGGING_STEPS[0][s1])
  r1 = rng.random(num_sessions) < STEP1_REWARD[s1, a1]
  second = rng.random(num_sessions) < CONTINUE[s1, a1]
  s2 = (rng.random(num_sessions) < NEXT_STATE_1[s1, a1]).astype(int)
  a2 = _sample_actions(rng, LOGGING_STEPS[1][s2])
  r2 = rng.random(num_sessions) < STEP2_REWARD[s2, a2]
  # [session, step] grids, flattened row-major and masked to real steps.
  exists = np.stack([np.ones(num_sessions, bool), second], axis=1)

  def rows(step1, step2):
    return np.stack([step1, step2], axis=1)[exists].astype(float)

  return dict(
      rewards=rows(r1, r2),
      logging_propensities=rows(LOGGING_STEPS[0][s1, a1],
                                LOGGING_STEPS[1][s2, a2]),
      target_probabilities=rows(TARGET_STEPS[0][s1, a1],
                                TARGET_STEPS[1][s2, a2]),
      predicted_q_values=rows(q_models[0][s1, a1], q_models[1][s2, a2]),
      expected_predicted_q_values=rows(
          np.sum(TARGET_STEPS[0] * q_models[0], axis=1)[s1],
          np.sum(TARGET_STEPS[1] * q_models[1], axis=1)[s2]),
      positions=np.tile([1, 2], (num_sessions, 1))[exists],
      session_ids=np.repeat(np.arange(num_sessions), exists.sum(axis=1)))


@pytest.fixture(scope="module")
def mdp_estimates():
  """Estimates over 400 independent logs of 200 sessions each."""
  rng = np.random.default_rng(7)
  estimators = {"pdis": ev.PDIS(), "wpdis": ev.WPDIS(),
                "sequential_dr": ev.SequentialDR()}
  estimates = {name: [] for name in estimators}
  for _ in range(400):
    logs = _mdp_logs(rng, 200)
    for name, estimator in estimators.items():
      estimates[name].append(estimator.estimate_policy_value(**logs))
  return {name: np.array(values) for name, values in estimates.items()}


@pytest.mark.parametrize("name", ["pdis", "sequential_dr"])
def test_sequential_unbiased(mdp_estimates, name):
  values = mdp_estimates[name]
  standard_error = values.std(ddof=1) / np.sqrt(values.size)
  assert abs(values.mean() - MDP_TRUTH) < 3.5 * standard_error


def test_wpdis_lower_variance_and_close(mdp_estimates):
  assert mdp_estimates["wpdis"].var() < mdp_estimates["pdis"].var()
  assert mdp_estimates["sequential_dr"].var() < mdp_estimates["pdis"].var()
  # Biased, but only O(1/n): close to the truth on 200-session logs.
  assert mdp_estimates["wpdis"].mean() == pytest.approx(MDP_TRUTH, abs=0.02)


# --- Input validation. -------------------------------------------------------


def _with(base, **changes):
  return {**base, **changes}


@pytest.mark.parametrize("estimator, inputs, argument", [
    (ev.IPS(), _with(DECISIONS, target_probabilities=[1.0, 0.5, 0.4]),
     "target_probabilities"),
    (ev.DR(), _with(DECISIONS, predicted_rewards=np.zeros(5)),
     "predicted_rewards"),
    (ev.IPS(), _with(DECISIONS, logging_propensities=[0.5, 0.0, 0.8, 0.5]),
     "logging_propensities"),
    (ev.SNIPS(), _with(DECISIONS, logging_propensities=[0.5, 1.2, 0.8, 0.5]),
     "logging_propensities"),
    (ev.IPS(), _with(DECISIONS, target_probabilities=[1.0, -0.1, 0.4, 0.0]),
     "target_probabilities"),
    (ev.DR(), _with(DECISIONS, target_probabilities=[1.0, 1.5, 0.4, 0.0]),
     "target_probabilities"),
    (ev.IPS(), _with(DECISIONS, rewards=[1.0, np.nan, 1.0, 1.0]), "rewards"),
    (ev.DR(), _with(DECISIONS, predicted_rewards=[0.5, np.inf, 0.5, 0.9]),
     "predicted_rewards"),
    (ev.DM(), _with(DECISIONS, expected_predicted_rewards=[0.1, -np.inf, 0,
                                                           0]),
     "expected_predicted_rewards"),
    (ev.IPS(), dict(rewards=[], logging_propensities=[],
                    target_probabilities=[]), "rewards"),
    (ev.IPS(), _with(DECISIONS, rewards=np.ones((2, 2))), "rewards"),
    (ev.IPS(), _with(DECISIONS, rewards=["a", "b", "c", "d"]), "rewards"),
    (ev.IPS(), _with(DECISIONS, logging_propensities=None),
     "logging_propensities"),
    (ev.DM(), _with(DECISIONS, expected_predicted_rewards=None),
     "expected_predicted_rewards"),
    (ev.DR(), _with(DECISIONS, predicted_rewards=None), "predicted_rewards"),
    (ev.PDIS(), _with(SESSIONS, target_probabilities=[1.0, 0.5, 0.5]),
     "target_probabilities"),
    (ev.PDIS(), _with(SESSIONS, logging_propensities=[0.5] * 5 + [0.0]),
     "logging_propensities"),
    (ev.WPDIS(), _with(SESSIONS, target_probabilities=[1.0] * 5 + [np.nan]),
     "target_probabilities"),
    (ev.PDIS(), _with(SESSIONS, session_ids=None), "session_ids"),
    (ev.PDIS(), _with(SESSIONS, offsets=[0, 2, 3, 6]), "session_ids"),
    (ev.PDIS(), _with(SESSIONS, session_ids=["a", "a", "b", "c", "c", "a"],
                      positions=[1, 2, 1, 1, 2, 3]), "session_ids"),
    (ev.PDIS(), _with(SESSIONS, session_ids=["a", "a", "b"]), "session_ids"),
    (ev.PDIS(), _with(SESSIONS, positions=[0, 1, 0, 0, 1, 2]), "positions"),
    (ev.PDIS(), _with(SESSIONS, positions=[2, 1, 1, 1, 2, 3]), "positions"),
    (ev.PDIS(), _with(SESSIONS, positions=[1, 2, 1, 1, 3, 4]), "positions"),
    (ev.WPDIS(), _with(SESSIONS, positions=None), "positions"),
    (ev.PDIS(), _with(SESSIONS, session_ids=None, offsets=[0, 2, 3, 5]),
     "offsets"),
    (ev.PDIS(), _with(SESSIONS, session_ids=None, offsets=[0, 2, 2, 3, 6]),
     "offsets"),
    (ev.PDIS(), _with(SESSIONS, session_ids=None, offsets=[0.0, 2.0, 6.0]),
     "offsets"),
    (ev.SequentialDR(), _with(SESSIONS, expected_predicted_q_values=None),
     "expected_predicted_q_values"),
    (ev.SequentialDR(), _with(SESSIONS, predicted_q_values=np.ones(5)),
     "predicted_q_values"),
])
def test_bad_input_names_the_argument(estimator, inputs, argument):
  for method in (estimator.estimate_policy_value, estimator.estimate_interval):
    with pytest.raises(ev.EstimatorInputError, match=argument) as raised:
      method(**inputs)
    assert raised.value.argument == argument
    assert isinstance(raised.value, ValueError)


def test_length_mismatch_blames_the_odd_array():
  # The length most arrays share is right; the odd one out is named.
  with pytest.raises(ev.EstimatorInputError,
                     match="rewards has 3 entries but logging_propensities, "
                     "target_probabilities, .* have 4") as raised:
    ev.IPS().estimate_policy_value(**_with(DECISIONS, rewards=[1.0, 0.0, 1.0]))
  assert raised.value.argument == "rewards"
  with pytest.raises(ev.EstimatorInputError) as raised:
    ev.DR().estimate_policy_value(**_with(DECISIONS, rewards=[1.0, 0.0, 1.0]))
  assert raised.value.argument == "rewards"


def test_unused_array_of_wrong_length_is_blamed():
  # DM uses only the model's values; a tie of lengths goes to them.
  with pytest.raises(ev.EstimatorInputError) as raised:
    ev.DM().estimate_policy_value(
        expected_predicted_rewards=DECISIONS["expected_predicted_rewards"],
        logging_propensities=[0.5, 0.5, 0.5])
  assert raised.value.argument == "logging_propensities"


@pytest.mark.parametrize("bad", [
    np.array([1.0, 0.0, 1.0, 1.0 + 0.5j]), np.array([1.0, 0.0, 1.0, 1.0 + 0j]),
    ["1.0", "0.0", "1.0", "1.0"], np.array(["1", "0", "1", "1"]),
    np.array([1.0, 0.0, 1.0, None], dtype=object),
])
def test_complex_and_string_values_are_refused(bad):
  for estimator, inputs in ((ev.IPS(), DECISIONS), (ev.PDIS(), SESSIONS)):
    n = len(inputs["rewards"])
    bad_rewards = np.resize(np.asarray(bad), n)
    with pytest.raises(ev.EstimatorInputError, match="real numbers") as raised:
      estimator.estimate_policy_value(**_with(inputs, rewards=bad_rewards))
    assert raised.value.argument == "rewards"


@pytest.mark.parametrize("make, argument", [
    (lambda: ev.IPS(max_weight=0.0), "max_weight"),
    (lambda: ev.DR(max_weight=float("nan")), "max_weight"),
    (lambda: ev.PDIS(gamma=1.5), "gamma"),
    (lambda: ev.SequentialDR(gamma=-0.1), "gamma"),
])
def test_bad_settings_name_the_argument(make, argument):
  with pytest.raises(ev.EstimatorInputError, match=argument):
    make()


@pytest.mark.parametrize("settings, argument", [
    (dict(alpha=0.0), "alpha"), (dict(alpha=1.0), "alpha"),
    (dict(n_bootstrap=0), "n_bootstrap"), (dict(n_bootstrap=2.5),
                                           "n_bootstrap"),
])
def test_bad_interval_settings(settings, argument):
  with pytest.raises(ev.EstimatorInputError, match=argument):
    ev.IPS().estimate_interval(**DECISIONS, **settings)
  with pytest.raises(ev.EstimatorInputError, match=argument):
    ev.PDIS().estimate_interval(**SESSIONS, **settings)


def test_dm_needs_only_the_model():
  value = ev.DM().estimate_policy_value(
      expected_predicted_rewards=DECISIONS["expected_predicted_rewards"])
  assert value == pytest.approx(0.4)


def test_relative_error():
  assert ev.relative_error(1.1, 1.0) == pytest.approx(0.1)
  assert ev.relative_error(-0.5, -1.0) == pytest.approx(0.5)
  with pytest.raises(ev.EstimatorInputError, match="truth"):
    ev.relative_error(0.3, 0.0)
  with pytest.raises(ev.EstimatorInputError, match="estimate"):
    ev.relative_error(float("nan"), 1.0)


# --- The bootstrap interval. -------------------------------------------------


@pytest.mark.parametrize("estimator, inputs", [
    (ev.IPS(), "bandit"), (ev.SNIPS(), "bandit"), (ev.DR(), "bandit"),
    (ev.DM(), "bandit"), (ev.PDIS(), "mdp"), (ev.WPDIS(), "mdp"),
    (ev.SequentialDR(), "mdp"),
])
def test_interval_contains_estimate_and_is_seeded(estimator, inputs):
  rng = np.random.default_rng(11)
  logs = _bandit_logs(rng, 300) if inputs == "bandit" else _mdp_logs(rng, 300)
  point = estimator.estimate_policy_value(**logs)
  interval = estimator.estimate_interval(**logs, n_bootstrap=300, seed=3)
  assert set(interval) == {"mean", "ci_low", "ci_high"}
  assert interval["ci_low"] < interval["mean"] < interval["ci_high"]
  assert interval["ci_low"] < point < interval["ci_high"]
  assert abs(interval["mean"] - point) < 0.25 * (interval["ci_high"] -
                                                 interval["ci_low"])
  assert estimator.estimate_interval(**logs, n_bootstrap=300,
                                     seed=3) == interval
  assert estimator.estimate_interval(**logs, n_bootstrap=300,
                                     seed=4) != interval
  narrower = estimator.estimate_interval(**logs, n_bootstrap=300, seed=3,
                                         alpha=0.5)
  assert interval["ci_low"] < narrower["ci_low"] < narrower["ci_high"] < (
      interval["ci_high"])


def test_interval_resamples_sessions_not_rows():
  # Two sessions with returns 4 and 0: a replicate is {4, 4}, {4, 0} or {0, 0}
  # in session units, so the mean of the replicates can only be 0, 2 or 4.
  inputs = _with(SESSIONS, rewards=[1.0, 1.0, 0.0], logging_propensities=[0.5,
                 0.5, 0.25], target_probabilities=[1.0, 0.5, 0.5],
                 positions=[1, 2, 1], session_ids=["a", "a", "b"],
                 predicted_q_values=None, expected_predicted_q_values=None)
  interval = ev.PDIS().estimate_interval(**inputs, n_bootstrap=200, seed=0)
  assert interval["ci_low"] == 0.0 and interval["ci_high"] == 4.0
  assert interval["mean"] == pytest.approx(2.0, abs=0.3)


def test_interval_coverage_on_the_bandit():
  # Percentile intervals should cover the truth about 90% of the time.
  rng = np.random.default_rng(8)
  covered = []
  for seed in range(40):
    interval = ev.DR().estimate_interval(**_bandit_logs(rng, 200), alpha=0.1,
                                         n_bootstrap=200, seed=seed)
    covered.append(interval["ci_low"] <= BANDIT_TRUTH <= interval["ci_high"])
  assert 0.75 <= np.mean(covered) <= 1.0
