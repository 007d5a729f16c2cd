"""The policies an evaluation compares, built by name for an environment.

* baselines (`agents.BASELINES`): random, popularity, cosine;
* `greedy`: greedy by the learned simulator's predicted listen probability;
* saved agents: any `PolicySaver` SavedModel folder (e.g. a `train_eval`
  run's `root_dir/policy`), loaded with `tf.saved_model.load`;
* stochastic score policies (`SoftmaxScorePolicy`): a softmax over the
  logging policy's score (popularity + taste) with its own weights,
  temperature and epsilon-mixture with a uniform choice. The logging policy
  of `simulator.log_generation` is one of them (temperature 0.25), and its
  probability of every candidate is exact, so the logged-data estimators can
  evaluate these policies: lowering the temperature walks from the logging
  policy towards the greedy-by-score policy.
"""

import dataclasses
from typing import Callable

import numpy as np
from tf_agents.policies import py_policy
from tf_agents.specs import array_spec
from tf_agents.trajectories import policy_step
from tf_agents.trajectories import time_step as ts

from agents.baselines import BASELINES, cosine_scores, make_baseline_policy
from playlist_sim.data.catalog import TrackCatalog

__all__ = ["SoftmaxScorePolicy", "SoftmaxSpec", "DEFAULT_STOCHASTIC",
           "make_policy", "softmax_policy"]


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
    mask = np.asarray(observation["candidate_mask"], bool)
    logits = np.where(mask, self._score_fn(observation) /
                      self.spec.temperature, -np.inf)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    uniform = mask / np.maximum(mask.sum(axis=1, keepdims=True), 1)
    return (1.0 - self.spec.epsilon) * probs + self.spec.epsilon * uniform

  def _action(self, time_step, policy_state):
    obs = {k: np.asarray(v) for k, v in time_step.observation.items()}
    squeeze = obs["candidate_mask"].ndim == 1
    if squeeze:
      obs = {k: v[None] for k, v in obs.items()}
    probs = self.probabilities(obs)
    draws = self._rng.random((len(probs), 1))
    slots = np.minimum((probs.cumsum(axis=1) < draws).sum(axis=1),
                       probs.shape[1] - 1)
    # Rounding can land past the last available slot: step back to it.
    mask = obs["candidate_mask"]
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
    slots = np.where(probs[np.arange(len(slots)), slots] > 0, slots, last)
    propensity = probs[np.arange(len(slots)), slots].astype(np.float32)
    action = slots.astype(self.action_spec.dtype)
    if squeeze:
      action, propensity = action[0], propensity[0]
    return policy_step.PolicyStep(action, policy_state,
                                  {"propensity": propensity})


def softmax_policy(time_step_spec: ts.TimeStep,
                   action_spec: array_spec.BoundedArraySpec,
                   catalog: TrackCatalog, spec: SoftmaxSpec, seed: int = 0,
                   name: str = "softmax") -> SoftmaxScorePolicy:
  """A `SoftmaxScorePolicy` over the logging policy's score with `spec`."""
  cosine = cosine_scores(catalog)

  def score(obs):
    return (spec.popularity_weight * catalog.popularity[obs["candidate_ids"]]
            + spec.taste_weight * cosine(obs))
  return SoftmaxScorePolicy(time_step_spec, action_spec, score, spec, seed,
                            name)


def make_policy(name: str, env, *, scorer=None,
                stochastic: dict[str, SoftmaxSpec] | None = None,
                saved_policies: dict[str, str] | None = None,
                seed: int = 0) -> py_policy.PyPolicy:
  """Builds the policy called `name` for a batched `TFAgtPyEnvironment`.

  Args:
    name: a baseline, "greedy", a key of `stochastic` or of
      `saved_policies`.
    env: the environment (its specs, catalog and current listeners).
    scorer: the user model `greedy` ranks with (and that scores the
      candidates for saved policies trained with `user_model_scores`).
    stochastic: name -> `SoftmaxSpec` (default `DEFAULT_STOCHASTIC`).
    saved_policies: name -> SavedModel folder of a TF-Agents policy.
    seed: seed of random and stochastic policies.

  Returns:
    A PyPolicy for batched time steps.

  Raises:
    ValueError: for an unknown name, or `greedy` (or a saved policy that
      reads scores) without a scorer.
  """
  # pylint: disable=g-import-not-at-top  (TensorFlow only when needed)
  stochastic = DEFAULT_STOCHASTIC if stochastic is None else stochastic
  saved_policies = saved_policies or {}
  catalog = env.environment.catalog
  if name in saved_policies:
    from tf_agents.policies import py_tf_eager_policy
    # tf.saved_model.load under the hood, with the specs PolicySaver wrote.
    from agents.score_features import SCORE_KEY, ScoredObservationPolicy
    policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        saved_policies[name], load_specs_from_pbtxt=True,
        batch_time_steps=False)
    if (SCORE_KEY in policy.time_step_spec.observation
        and SCORE_KEY not in env.observation_spec()):
      if scorer is None:
        raise ValueError(
            f"saved policy {name!r} ({saved_policies[name]}) reads the "
            f"learned model's scores ({SCORE_KEY!r}): pass a scorer")
      # Scored by the learned model it was trained with, never the world.
      policy = ScoredObservationPolicy(policy, env, scorer)
    return policy
  if name in stochastic:
    return softmax_policy(env.time_step_spec(), env.action_spec(), catalog,
                          stochastic[name], seed=seed, name=name)
  if name == "greedy":
    if scorer is None:
      raise ValueError("policy 'greedy' needs a scorer (a user model)")
    from agents.baselines import GreedyUserModelPolicy
    return GreedyUserModelPolicy(
        env.time_step_spec(), env.action_spec(), scorer,
        user_ids_fn=lambda: env.environment.session_context().user_ids)
  if name in BASELINES:
    return make_baseline_policy(name, env.time_step_spec(), env.action_spec(),
                                catalog, seed)
  raise ValueError(f"unknown policy {name!r}: choose a baseline {BASELINES}, "
                   f"'greedy', a stochastic policy {tuple(stochastic)} or a "
                   f"saved policy {tuple(saved_policies)}")
