"""Statistics of policy evaluation: bootstrap intervals, rank agreement.

* `bootstrap_mean`: a mean with its percentile-bootstrap interval, the one
  implementation behind every "mean [low, high]" the package reports;
* `spearman`, `kendall`: rank correlations with ties handled (average ranks,
  Kendall's tau-b), so the offline-online agreement needs no SciPy;
* `agreement`: both, for offline estimates against the online truth.
"""

from typing import Mapping, Sequence

import numpy as np

__all__ = ["agreement", "bootstrap_mean", "bootstrap_ratio", "kendall",
           "rank_average", "spearman"]


def bootstrap_mean(values: Sequence[float], seed: int | np.random.Generator
                   = 0, n_bootstrap: int = 2000,
                   alpha: float = 0.05) -> tuple[float, float, float]:
  """Mean and percentile-bootstrap (1 - alpha) interval of the mean.

  Args:
    values: the per-unit values (e.g. one return per episode), non-empty.
    seed: seed (or Generator) of the resampling.
    n_bootstrap: bootstrap replicates.
    alpha: the interval covers 1 - alpha.

  Returns:
    (mean, low, high).

  Raises:
    ValueError: for no values.
  """
  values = np.asarray(values, np.float64)
  if values.size == 0:
    raise ValueError("bootstrap_mean needs at least one value")
  rng = np.random.default_rng(seed)
  means = rng.choice(values, (n_bootstrap, len(values))).mean(axis=1)
  low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
  return float(values.mean()), float(low), float(high)


def bootstrap_ratio(numerators: Sequence[float], denominators: Sequence[float],
                    seed: int | np.random.Generator = 0,
                    n_bootstrap: int = 2000,
                    alpha: float = 0.05) -> tuple[float, float, float]:
  """sum(numerators) / sum(denominators) with a bootstrap over units.

  For rates pooled over episodes (skips per track heard): each episode is a
  unit, so the interval reflects the episodes' dependence.

  Args:
    numerators: per-unit numerators.
    denominators: per-unit denominators (their sum must be positive).
    seed: seed (or Generator) of the resampling.
    n_bootstrap: bootstrap replicates.
    alpha: the interval covers 1 - alpha.

  Returns:
    (ratio, low, high); NaNs when the denominators sum to 0.
  """
  num = np.asarray(numerators, np.float64)
  den = np.asarray(denominators, np.float64)
  if num.shape != den.shape or num.size == 0:
    raise ValueError(f"bootstrap_ratio needs equal, non-empty shapes, got "
                     f"{num.shape} and {den.shape}")
  if den.sum() <= 0:
    return float("nan"), float("nan"), float("nan")
  rng = np.random.default_rng(seed)
  draws = rng.integers(0, len(num), (n_bootstrap, len(num)))
  ratios = num[draws].sum(1) / np.maximum(den[draws].sum(1), 1e-12)
  low, high = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
  return float(num.sum() / den.sum()), float(low), float(high)


def rank_average(values: Sequence[float]) -> np.ndarray:
  """Ranks 1..n, ties sharing the average of the ranks they span."""
  values = np.asarray(values, np.float64)
  order = np.argsort(values, kind="stable")
  ranks = np.empty(len(values))
  sorted_values = values[order]
  start = 0
  while start < len(values):
    end = start
    while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[
        start]:
      end += 1
    ranks[order[start:end + 1]] = (start + end) / 2.0 + 1.0
    start = end + 1
  return ranks


def _paired(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray,
                                                              np.ndarray]:
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.shape != y.shape or x.ndim != 1:
    raise ValueError(f"rank correlation needs two vectors of one length, got "
                     f"shapes {x.shape} and {y.shape}")
  if len(x) < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()):
    raise ValueError("rank correlation needs >= 2 finite pairs")
  return x, y


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
  """Spearman's rho: Pearson correlation of the average ranks.

  Args:
    x: values.
    y: the values paired with `x`.

  Returns:
    rho in [-1, 1]; NaN when either vector is constant.

  Raises:
    ValueError: for vectors of different lengths, fewer than two pairs or
      non-finite values.
  """
  x, y = _paired(x, y)
  rx, ry = rank_average(x), rank_average(y)
  rx, ry = rx - rx.mean(), ry - ry.mean()
  denominator = np.sqrt((rx**2).sum() * (ry**2).sum())
  return float((rx * ry).sum() / denominator) if denominator > 0 else float(
      "nan")


def kendall(x: Sequence[float], y: Sequence[float]) -> float:
  """Kendall's tau-b (tie-corrected), over all pairs.

  tau_b = (concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y)),
  n0 = n (n - 1) / 2; a pair tied in both counts in both tie terms.

  Args:
    x: values.
    y: the values paired with `x`.

  Returns:
    tau_b in [-1, 1]; NaN when either vector is constant.

  Raises:
    ValueError: as `spearman`.
  """
  x, y = _paired(x, y)
  i, j = np.triu_indices(len(x), k=1)
  sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
  score = float((sx * sy).sum())
  untied_x, untied_y = float((sx != 0).sum()), float((sy != 0).sum())
  denominator = np.sqrt(untied_x * untied_y)
  return score / denominator if denominator > 0 else float("nan")


def agreement(estimates: Mapping[str, float],
              truth: Mapping[str, float]) -> dict:
  """Rank agreement of offline estimates with the online truth.

  Args:
    estimates: policy -> offline estimate.
    truth: policy -> online truth; policies missing from either are left
      out.

  Returns:
    {"spearman", "kendall", "num_policies", "policies"}.
  """
  names = [name for name in estimates if name in truth]
  x = [estimates[n] for n in names]
  y = [truth[n] for n in names]
  result = {"num_policies": len(names), "policies": names}
  if len(names) >= 2:
    result.update(spearman=spearman(x, y), kendall=kendall(x, y))
  else:
    result.update(spearman=float("nan"), kendall=float("nan"))
  return result

