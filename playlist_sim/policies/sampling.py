"""Softmax over candidate scores and sampling a slot: the one implementation.

The logging policy that writes the logs (`logging_policy` of the log
generation job), the stochastic target policies of off-policy evaluation
(`playlist_sim.policies.softmax`) and a `ScoringPyPolicy` with a temperature
all draw their slot here, so the propensities in the logs and the target
probabilities the estimators use come from the same arithmetic.
"""

import numpy as np

__all__ = ["sample_slots", "softmax_probabilities"]


def softmax_probabilities(scores: np.ndarray, mask: np.ndarray,
                          temperature: float,
                          epsilon: float = 0.0) -> np.ndarray:
  """P(slot) = (1 - epsilon) * softmax(score / temperature) + epsilon * uniform.

  Args:
    scores: float [B, K] scores of the candidates.
    mask: bool [B, K], True where a candidate is available.
    temperature: > 0; higher is closer to uniform.
    epsilon: weight of the uniform choice among available candidates.

  Returns:
    float64 [B, K] probabilities (0 where unavailable).

  Raises:
    ValueError: for a temperature <= 0 or an epsilon outside [0, 1].
  """
  if not temperature > 0 or not 0.0 <= epsilon <= 1.0:
    raise ValueError(f"softmax_probabilities: temperature must be > 0 and "
                     f"epsilon in [0, 1], got {temperature}, {epsilon}")
  mask = np.asarray(mask, bool)
  logits = np.where(mask, scores / temperature, -np.inf)
  probs = np.exp(logits - logits.max(axis=1, keepdims=True))
  probs /= probs.sum(axis=1, keepdims=True)
  if epsilon == 0.0:
    return probs
  uniform = mask / np.maximum(mask.sum(axis=1, keepdims=True), 1)
  return (1.0 - epsilon) * probs + epsilon * uniform


def sample_slots(probs: np.ndarray, mask: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """Draws one slot per row from `probs` (one uniform draw per row).

  Args:
    probs: float [B, K] probabilities (rows sum to 1, 0 where unavailable).
    mask: bool [B, K], True where a candidate is available.
    rng: the policy's generator.

  Returns:
    (slots int64 [B], float32 [B] probability of each drawn slot).
  """
  mask = np.asarray(mask, bool)
  draws = rng.random((len(probs), 1))
  slots = np.minimum((probs.cumsum(axis=1) < draws).sum(axis=1),
                     probs.shape[1] - 1)
  # Rounding can land on an unavailable slot past the last available one:
  # step back to it.
  rows = np.arange(len(slots))
  last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
  slots = np.where(mask[rows, slots], slots, last)
  return slots, probs[rows, slots].astype(np.float32)
