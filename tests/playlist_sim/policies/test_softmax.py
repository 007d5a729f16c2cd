"""Stochastic score policies: exact probabilities, sampling, names."""

import numpy as np
import pytest
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from playlist_sim.policies.softmax import SoftmaxScorePolicy, SoftmaxSpec

_SCORES = np.array([[1.0, 0.0, 2.0, 5.0], [0.0, 0.0, 0.0, 0.0]])
_MASK = np.array([[True, True, True, False], [True, False, True, True]])


def _policy(spec, seed=0):
  obs_spec = {"candidate_mask": array_spec.ArraySpec((4,), np.bool_)}
  action_spec = array_spec.BoundedArraySpec((), np.int32, 0, 3)
  return SoftmaxScorePolicy(ts.time_step_spec(obs_spec), action_spec,
                            lambda obs: _SCORES, spec, seed=seed)


def test_probabilities_are_the_masked_softmax_mixed_with_uniform():
  probs = _policy(SoftmaxSpec(temperature=0.5, epsilon=0.25)).probabilities(
      {"candidate_mask": _MASK})
  e = np.exp(np.array([2.0, 0.0, 4.0]))  # Scores / 0.5 of the available.
  row0 = 0.75 * e / e.sum() + 0.25 / 3
  np.testing.assert_allclose(probs[0], list(row0) + [0.0])
  np.testing.assert_allclose(probs[1], [1 / 3, 0.0, 1 / 3, 1 / 3])


def test_sampled_frequencies_and_propensities_match():
  policy = _policy(SoftmaxSpec(temperature=1.0), seed=3)
  mask = np.repeat(_MASK[:1], 20000, axis=0)
  scores = np.repeat(_SCORES[:1], 20000, axis=0)
  policy._score_fn = lambda obs: scores  # pylint: disable=protected-access
  step = ts.TimeStep(np.zeros(20000, np.int32), np.zeros(20000, np.float32),
                     np.ones(20000, np.float32), {"candidate_mask": mask})
  decision = policy.action(step)
  expected = policy.probabilities({"candidate_mask": mask})[0]
  counts = np.bincount(decision.action, minlength=4) / 20000
  np.testing.assert_allclose(counts, expected, atol=0.015)
  np.testing.assert_allclose(decision.info["propensity"],
                             expected[decision.action], rtol=1e-6)


@pytest.mark.parametrize("spec", [SoftmaxSpec(temperature=0.0),
                                  SoftmaxSpec(epsilon=1.5)])
def test_bad_spec(spec):
  with pytest.raises(ValueError):
    _policy(spec)
