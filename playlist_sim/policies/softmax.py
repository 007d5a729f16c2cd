"""The softmax scoring policy: the logging policy and the OPE targets.

A `SoftmaxScorePolicy` samples from a softmax over the logging score
(popularity + taste) with its own weights, temperature and epsilon-mixture
with a uniform choice. The logging policy of the log generation job
(`playlist_sim.jobs.log_generation.logging_policy`) is one of them
(`SoftmaxSpec()`, temperature 0.25 by default), and its probability of every
candidate is exact, so the logged-data estimators can evaluate the others
(`DEFAULT_STOCHASTIC`): lowering the temperature walks from the logging policy
towards the greedy-by-score policy. Policies by name: `make_policy` of
`playlist_sim.policies.registry`.
"""

import dataclasses
from typing import Callable

import numpy as np
from tf_agents.policies import py_policy
from tf_agents.specs import array_spec
from tf_agents.trajectories import policy_step
from tf_agents.trajectories import time_step as ts

from playlist_sim.data.catalog import TrackCatalog
from playlist_sim.policies.baselines import cosine_scores
from playlist_sim.policies.sampling import sample_slots
from playlist_sim.policies.sampling import softmax_probabilities

__all__ = ["SoftmaxScorePolicy", "SoftmaxSpec", "DEFAULT_STOCHASTIC",
           "logging_score", "softmax_policy"]


@dataclasses.dataclass(frozen=True)
class SoftmaxSpec:
  """A stochastic score policy: P(slot) over the available candidates.

  P = (1 - epsilon) * softmax(score / temperature) + epsilon * uniform, with
  score = popularity_weight * popularity + taste_weight * cosine(user
  features, acoustic vector), as the logging policy scores.
  """
  temperature: float = 0.25
  popularity_weight: float = 0.5
  taste_weight: float = 1.0
  epsilon: float = 0.0


#: The default family: the logging policy, targets towards greedy-by-score
#: (lower temperatures), towards uniform, and two other directions.
DEFAULT_STOCHASTIC = {
    "logging": SoftmaxSpec(),
    "softmax_t0.2": SoftmaxSpec(temperature=0.2),
    "softmax_t0.15": SoftmaxSpec(temperature=0.15),
    "softmax_t0.08": SoftmaxSpec(temperature=0.08),
    "softmax_t0.03": SoftmaxSpec(temperature=0.03),
    "softmax_t0.6": SoftmaxSpec(temperature=0.6),
    "logging_eps0.5": SoftmaxSpec(epsilon=0.5),
    "taste_softmax": SoftmaxSpec(temperature=0.1, popularity_weight=0.0),
}


class SoftmaxScorePolicy(py_policy.PyPolicy):
  """Samples a slot from exact, known probabilities (see `SoftmaxSpec`)."""

  def __init__(self, time_step_spec: ts.TimeStep,
               action_spec: array_spec.BoundedArraySpec,
               score_fn: Callable[[dict], np.ndarray], spec: SoftmaxSpec,
               seed: int = 0, name: str = "softmax"):
    """Builds the policy.

    Args:
      time_step_spec: the environment's time step spec.
      action_spec: a single-slot discrete action spec.
      score_fn: batched observation dict -> float scores [B, K].
      spec: temperature and epsilon (the weights are in `score_fn`).
      seed: seed of the sampling.
      name: the policy's name.

    Raises:
      ValueError: for a slate action spec, a temperature <= 0 or an epsilon
        outside [0, 1].
    """
    if action_spec.shape != () or action_spec.dtype.kind not in "iu":
      raise ValueError(f"{name}: needs a single-slot discrete action spec, got "
                       f"shape {action_spec.shape}, dtype {action_spec.dtype}")
    if not spec.temperature > 0 or not 0.0 <= spec.epsilon <= 1.0:
      raise ValueError(f"{name}: temperature must be > 0 and epsilon in "
                       f"[0, 1], got {spec}")
    super().__init__(time_step_spec, action_spec, info_spec={
        "propensity": array_spec.ArraySpec((), np.float32)})
    self._score_fn = score_fn
    self.spec = spec
    self._rng = np.random.default_rng(seed)
    self.name = name

  def probabilities(self, observation: dict) -> np.ndarray:
    """float64 [B, K] probability of each slot (0 where unavailable)."""
    return softmax_probabilities(self._score_fn(observation),
                                 observation["candidate_mask"],
                                 self.spec.temperature, self.spec.epsilon)

  def _action(self, time_step, policy_state):
    obs = {k: np.asarray(v) for k, v in time_step.observation.items()}
    squeeze = obs["candidate_mask"].ndim == 1
    if squeeze:
      obs = {k: v[None] for k, v in obs.items()}
    slots, propensity = sample_slots(self.probabilities(obs),
                                     obs["candidate_mask"], self._rng)
    action = slots.astype(self.action_spec.dtype)
    if squeeze:
      action, propensity = action[0], propensity[0]
    return policy_step.PolicyStep(action, policy_state,
                                  {"propensity": propensity})


def logging_score(catalog: TrackCatalog, popularity_weight: float,
                  taste_weight: float) -> Callable[[dict], np.ndarray]:
  """The logging score: popularity_weight * popularity + taste_weight * cosine.

  Args:
    catalog: the environment's catalog.
    popularity_weight: weight of the catalog's popularity rank.
    taste_weight: weight of the cosine between the user features and the
      candidate's acoustic vector.

  Returns:
    A function of a batched observation dict giving float scores [B, K].
  """
  cosine = cosine_scores(catalog)

  def score(obs):
    return (popularity_weight * catalog.popularity[obs["candidate_ids"]] +
            taste_weight * cosine(obs))
  return score


def softmax_policy(time_step_spec: ts.TimeStep,
                   action_spec: array_spec.BoundedArraySpec,
                   catalog: TrackCatalog, spec: SoftmaxSpec, seed: int = 0,
                   name: str = "softmax") -> SoftmaxScorePolicy:
  """A `SoftmaxScorePolicy` over the logging score with `spec`'s weights."""
  score = logging_score(catalog, spec.popularity_weight, spec.taste_weight)
  return SoftmaxScorePolicy(time_step_spec, action_spec, score, spec, seed,
                            name)
