"""Propensity weights: training rows reweighted towards an observable policy.

A logging policy that knows more about the listener than a user model sees
(for the listener world, its taste vector; for a production recommender,
whatever it scored with) confounds the logs: a logged track is also
evidence that the listener likes it, beyond the model's inputs, and so are
the tracks played before it, which the model reads as the session history.
A policy evaluated in the learned simulator chooses from the model's inputs
only, so the model overrates it (docs/model_bias.md).

When the logs carry the logging policy's probability of each logged track
(the `propensity` column, as `generate_logs.py` writes and Open Bandit
Pipeline style logs hold), training can remove the part of that evidence
the model cannot see:

1. **The observable policy.** A conditional logit of the logged choices on
   what the model sees of the user and the track, fitted by maximum
   likelihood over the catalog (`fit_observable_policy`): its logit is
   `w * cosine(profile, acoustic vector) + b . (popularity rank, standardised
   catalog features)`. It is the logging policy as seen through the
   model's inputs: where the logging policy used hidden knowledge, the
   fitted policy is flatter.
2. **The weights.** Each row gets the ratio, over its own choice and the
   K - 1 choices before it in the session, of the observable policy's
   probability to the logged propensity (`propensity_weights`). Weighted,
   those K choices look as if a policy that sees only the model's inputs
   had made them. Each single ratio is divided by its mean at the row's
   position (the two policies' normalisers differ by a constant: the
   observable policy's is the catalog, the logging policy's its candidate
   pool); the products are capped and scaled to mean 1 over the training
   rows as the selection weights are (`selection.capped_mean_one`).

Assumptions: the logged propensities are right; the logging policy drew its
candidates without regard to the listener (a uniform or popularity pool),
so the catalog normaliser stands in for the pool's; choices more than K
back stay confounded (a longer window removes more bias and costs
variance). The weights are for training only; the log's own statistics are
unchanged.

The module needs NumPy only (no TensorFlow).
"""

import dataclasses
from typing import Any

import numpy as np

from playlist_sim.data.selection import capped_mean_one

__all__ = ["DEFAULT_CAP_QUANTILE", "ObservablePolicy", "PropensityError",
           "fit_observable_policy", "logged_propensities",
           "propensity_weights"]

#: The window products are capped at this quantile of the training rows.
DEFAULT_CAP_QUANTILE = 0.99
# Sessions whose catalog normaliser the fit computes: the logit has ~30
# parameters, and [sessions, catalog] is the fit's working matrix.
_FIT_SESSIONS = 4000
# Rows of profiles per block when scoring every row (bounds the memory to
# block x catalog floats).
_BLOCK = 2048
# Newton steps at most (4-6 sufficed on the worlds' logs).
_NEWTON_STEPS = 30


class PropensityError(ValueError):
  """The logs cannot give propensity weights (a missing or bad column)."""


@dataclasses.dataclass(frozen=True)
class ObservablePolicy:
  """A conditional logit over the catalog on what a user model sees.

  Attributes:
    cosine_weight: weight of cosine(profile, the track's acoustic vector).
    track_weights: float64 [F + 1], weights of the track's popularity rank
      and its standardised catalog features.
  """
  cosine_weight: float
  track_weights: np.ndarray

  def log_probabilities(self, profiles: np.ndarray, group: np.ndarray,
                        track_rows: np.ndarray, unit_acoustic: np.ndarray,
                        track_table: np.ndarray) -> np.ndarray:
    """log P(track | profile) over the whole catalog, per row.

    Args:
      profiles: float [G, 8] unit taste profiles, one per group (session).
      group: int [R] each row's group.
      track_rows: int [R] each row's catalog row.
      unit_acoustic: float [N, 8] unit acoustic vectors of the catalog.
      track_table: float [N, F + 1] popularity rank and catalog features.

    Returns:
      float64 [R].
    """
    static = track_table @ self.track_weights
    log_z = np.empty(len(profiles))
    for start in range(0, len(profiles), _BLOCK):
      logits = self.cosine_weight * (profiles[start:start + _BLOCK] @
                                     unit_acoustic.T) + static[None, :]
      peak = logits.max(axis=1)
      log_z[start:start + _BLOCK] = peak + np.log(
          np.exp(logits - peak[:, None]).sum(axis=1))
    cosine = np.einsum("rd,rd->r", profiles[group], unit_acoustic[track_rows])
    return self.cosine_weight * cosine + static[track_rows] - log_z[group]

  def summary(self) -> dict[str, Any]:
    return {"cosine_weight": float(self.cosine_weight),
            "popularity_weight": float(self.track_weights[0]),
            "feature_weights": [float(w) for w in self.track_weights[1:]]}


def logged_propensities(column: np.ndarray | None, where: str) -> np.ndarray:
  """The logged propensities as float64, checked to lie in (0, 1].

  Args:
    column: the `propensity` column, or None if the logs have none.
    where: the logs' location, for the message.

  Raises:
    PropensityError: naming the logs and what to do.
  """
  if column is None:
    raise PropensityError(
        f"propensity weighting needs the logging policy's probability of "
        f"each logged track (a 'propensity' column), and the logs at "
        f"{where} have none; set train_user_model.propensity_window = 0, "
        f"or log the propensities beside the sessions")
  p = np.asarray(column, np.float64)
  bad = ~(np.isfinite(p) & (p > 0) & (p <= 1))
  if bad.any():
    raise PropensityError(
        f"the 'propensity' column of the logs at {where} must hold "
        f"probabilities in (0, 1]; {int(bad.sum())} rows do not (first: "
        f"row {int(np.flatnonzero(bad)[0])}, value "
        f"{p[np.flatnonzero(bad)[0]]!r})")
  return p


def fit_observable_policy(profiles: np.ndarray, group: np.ndarray,
                          track_rows: np.ndarray, unit_acoustic: np.ndarray,
                          track_table: np.ndarray, fit_groups: np.ndarray,
                          seed: int = 0, l2: float = 1e-4
                          ) -> tuple[ObservablePolicy, dict[str, Any]]:
  """Fits the observable policy to the logged choices of `fit_groups`.

  Maximum likelihood of each logged track under a softmax over the catalog
  (the logit of `ObservablePolicy`), on at most 4,000 of the groups
  (seeded), with a small L2 penalty; Newton's method with the exact
  Hessian (the loss is convex, and ~30 parameters make it cheap).

  Args:
    profiles: float [G, 8] unit taste profiles, one per group (session).
    group: int [R] each row's group.
    track_rows: int [R] each row's catalog row.
    unit_acoustic: float [N, 8] unit acoustic vectors.
    track_table: float [N, F + 1] popularity rank and catalog features.
    fit_groups: bool [G], the groups to fit on (the training sessions).
    seed: seed of the choice of groups.
    l2: L2 weight on the coefficients.

  Returns:
    (policy, summary): the summary holds the coefficients and the mean log
    likelihood per choice against the uniform policy's.
  """
  candidates = np.flatnonzero(fit_groups)
  if candidates.size == 0:
    raise PropensityError("no training sessions to fit the observable "
                          "policy on")
  rng = np.random.default_rng(seed)
  chosen = np.sort(rng.choice(candidates, min(_FIT_SESSIONS, candidates.size),
                              replace=False))
  local = np.full(len(profiles), -1)
  local[chosen] = np.arange(chosen.size)
  rows = np.flatnonzero(local[group] >= 0)
  row_group = local[group[rows]]
  counts = np.bincount(row_group, minlength=chosen.size).astype(np.float64)
  cosines = (profiles[chosen] @ unit_acoustic.T).astype(np.float64)
  table = np.asarray(track_table, np.float64)
  # Sufficient statistics of the logged choices: their mean features.
  chosen_mean = np.concatenate([
      [cosines[row_group, track_rows[rows]].mean()],
      table[track_rows[rows]].mean(axis=0)])
  total = counts.sum()
  theta = np.zeros(1 + table.shape[1])
  loss, grad, hessian = _newton_terms(theta, cosines, table, counts, total,
                                      chosen_mean, l2)
  converged = False
  for _ in range(_NEWTON_STEPS):
    step = np.linalg.solve(hessian, grad)
    # Backtracking keeps every step a descent step (the loss is convex).
    scale = 1.0
    while True:
      trial = theta - scale * step
      terms = _newton_terms(trial, cosines, table, counts, total,
                            chosen_mean, l2)
      if terms[0] <= loss or scale < 1e-4:
        break
      scale /= 2
    converged = loss - terms[0] < 1e-10
    theta, (loss, grad, hessian) = trial, terms
    if converged:
      break
  policy = ObservablePolicy(float(theta[0]), theta[1:].copy())
  summary = policy.summary()
  summary.update(
      fit_sessions=int(chosen.size), fit_choices=int(total),
      converged=bool(converged),
      mean_log_likelihood=float(-(loss - l2 * theta @ theta)),
      uniform_log_likelihood=float(-np.log(unit_acoustic.shape[0])))
  return policy, summary


def _newton_terms(theta, cosines, table, counts, total, chosen_mean, l2):
  """Loss, gradient and Hessian of the conditional logit's mean NLL."""
  logits = theta[0] * cosines + (table @ theta[1:])[None, :]
  peak = logits.max(axis=1, keepdims=True)
  prob = np.exp(logits - peak)
  z = prob.sum(axis=1, keepdims=True)
  prob /= z
  log_z = (peak + np.log(z))[:, 0]
  share = counts / total
  # Per-session expected features, then their count-weighted moments.
  expected = np.concatenate([(prob * cosines).sum(axis=1)[:, None],
                             prob @ table], axis=1)
  weighted = share[:, None] * prob
  second = np.empty((theta.size, theta.size))
  second[0, 0] = (weighted * cosines ** 2).sum()
  second[0, 1:] = second[1:, 0] = (weighted * cosines).sum(axis=0) @ table
  second[1:, 1:] = table.T @ (weighted.sum(axis=0)[:, None] * table)
  mean = share @ expected
  loss = share @ log_z - theta @ chosen_mean + l2 * theta @ theta
  grad = mean - chosen_mean + 2 * l2 * theta
  hessian = (second - (expected.T * share) @ expected +
             2 * l2 * np.eye(theta.size))
  return loss, grad, hessian


def propensity_weights(log_observable: np.ndarray, propensity: np.ndarray,
                       position: np.ndarray, offsets: np.ndarray,
                       session_index: np.ndarray, window: int,
                       normalise_on: np.ndarray,
                       cap_quantile: float | None = DEFAULT_CAP_QUANTILE
                       ) -> tuple[np.ndarray, dict[str, Any]]:
  """Per-row weights: the window product of observable / logged ratios.

  Args:
    log_observable: float [R] log P(the row's track) under the observable
      policy.
    propensity: float [R] the logged propensities, in (0, 1].
    position: int [R] the row's position in its session.
    offsets: int [S + 1] first row of each session (and the end).
    session_index: int [R] each row's session.
    window: K >= 1, the choices each weight covers (the row's own and the
      K - 1 before it in its session).
    normalise_on: bool [R], the rows trained on: the per-position means,
      the cap and the scale are taken over them.
    cap_quantile: cap the weights at this quantile (None: no cap).

  Returns:
    (weights, summary): float64 [R] with mean 1 over `normalise_on`, and
    the window, cap (on that scale, as the selection weights'), and
    effective sample share for metrics.json.
  """
  if window < 1:
    raise ValueError(f"propensity window must be >= 1, got {window}")
  log_ratio = log_observable - np.log(propensity)
  # Divide each ratio by its mean at that position, on the training rows;
  # in logs, shifted by the largest, so that nothing overflows.
  shift = log_ratio[normalise_on].max()
  ratio = np.exp(log_ratio - shift)
  size = int(position.max()) + 1
  sums = np.bincount(position[normalise_on], ratio[normalise_on], size)
  counts = np.bincount(position[normalise_on], minlength=size)
  overall = ratio[normalise_on].mean()
  mean_at = np.where(sums > 0, sums / np.maximum(counts, 1), overall)
  log_ratio = log_ratio - shift - np.log(mean_at[position])
  cumulative = np.concatenate([[0.0], np.cumsum(log_ratio)])
  rows = np.arange(log_ratio.size)
  first = np.maximum(rows - window + 1, offsets[session_index])
  weights, cap = capped_mean_one(
      np.exp(cumulative[rows + 1] - cumulative[first]), normalise_on,
      cap_quantile)
  trained = weights[normalise_on]
  summary = {"window": int(window), "cap_quantile": cap_quantile,
             "cap": cap, "max_weight": float(trained.max()),
             "ess_fraction": float(trained.sum() ** 2 / (trained ** 2).sum()
                                   / trained.size)}
  return weights, summary
