"""Skip-prediction metrics in NumPy: AUC, log loss, calibration, a plot.

Every metric scores a predicted probability `p` of a binary label `y` (for
the user models: P(skip) = 1 - P(not_skipped) against "the track was
skipped"). They are written here, without scikit-learn, so the package needs
nothing beyond NumPy (and matplotlib for the plot).

* `auc`: the area under the ROC curve, computed from ranks (the
  Mann-Whitney statistic), with tied scores given their average rank, so a
  constant predictor scores exactly 0.5.
* `log_loss`: mean negative log likelihood, with p clipped to
  [1e-7, 1 - 1e-7] so a confident mistake costs a large but finite amount.
* `ece`: expected calibration error over `num_bins` equal-width bins of p
  (15 by default, as in Guo et al., 2017): the mean over bins of
  |mean label - mean p|, weighted by the share of rows in the bin. A
  p of exactly 1 falls in the last bin.
"""

import os

import numpy as np

from playlist_sim.common.io_utils import atomic_path

__all__ = ["auc", "calibration_bins", "ece", "log_loss", "reliability_plot",
           "skip_metrics"]

_EPS = 1e-7
DEFAULT_NUM_BINS = 15


def _weights(w: np.ndarray | None, size: int) -> np.ndarray | None:
  """Checked row weights (None stays None: every row counts once)."""
  if w is None:
    return None
  w = np.asarray(w, np.float64).ravel()
  if w.size != size:
    raise ValueError(f"weights and labels differ in size: {w.size} vs {size}")
  if not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
    raise ValueError("weights must be finite, >= 0 and not all 0")
  return w


def _check(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  y = np.asarray(y, np.float64).ravel()
  p = np.asarray(p, np.float64).ravel()
  if y.shape != p.shape:
    raise ValueError(f"labels and probabilities differ in size: {y.size} vs "
                     f"{p.size}")
  if y.size == 0:
    raise ValueError("no rows to score")
  if not np.isin(y, (0.0, 1.0)).all():
    raise ValueError("labels must be 0 or 1")
  return y, p


def _average_ranks(x: np.ndarray) -> np.ndarray:
  """1-based ranks of x; tied values share the mean of their ranks."""
  order = np.argsort(x, kind="stable")
  sorted_x = x[order]
  # Runs of equal values: each run's rank is the mean of its positions.
  starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
  ends = np.r_[starts[1:], len(x)]
  run_rank = (starts + ends + 1) / 2.0           # mean of start+1 .. end
  ranks = np.empty(len(x))
  ranks[order] = np.repeat(run_rank, ends - starts)
  return ranks


def auc(y: np.ndarray, p: np.ndarray,
        weights: np.ndarray | None = None) -> float:
  """Area under the ROC curve of scores p for labels y.

  Args:
    y: 0/1 labels.
    p: scores (any monotone score works, not only probabilities).
    weights: optional row weights (each pair counts w_pos * w_neg, ties
      half).

  Returns:
    The AUC in [0, 1].

  Raises:
    ValueError: on mismatched sizes, non-binary labels, or labels of one
      class only (the AUC is undefined).
  """
  y, p = _check(y, p)
  w = _weights(weights, y.size)
  if w is not None:
    return _weighted_auc(y, p, w)
  num_pos = int(y.sum())
  num_neg = y.size - num_pos
  if num_pos == 0 or num_neg == 0:
    raise ValueError("AUC needs both classes among the labels")
  rank_sum = _average_ranks(p)[y == 1].sum()
  return float((rank_sum - num_pos * (num_pos + 1) / 2.0) /
               (num_pos * num_neg))


def _weighted_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
  """The AUC with each (positive, negative) pair weighted w_pos * w_neg."""
  values, group = np.unique(p, return_inverse=True)
  group = group.reshape(-1)
  pos = np.bincount(group, w * y, len(values))
  neg = np.bincount(group, w * (1.0 - y), len(values))
  if pos.sum() <= 0 or neg.sum() <= 0:
    raise ValueError("AUC needs both classes among the weighted labels")
  neg_below = np.cumsum(neg) - neg
  return float(np.sum(pos * (neg_below + 0.5 * neg)) /
               (pos.sum() * neg.sum()))


def log_loss(y: np.ndarray, p: np.ndarray,
             weights: np.ndarray | None = None) -> float:
  """Mean binary cross-entropy (natural log) of probabilities p.

  Args:
    y: 0/1 labels.
    p: probabilities of label 1.
    weights: optional row weights (a weighted mean).

  Returns:
    The mean negative log likelihood.
  """
  y, p = _check(y, p)
  p = np.clip(p, _EPS, 1.0 - _EPS)
  return float(-np.average(y * np.log(p) + (1.0 - y) * np.log1p(-p),
                           weights=_weights(weights, y.size)))


def calibration_bins(y: np.ndarray, p: np.ndarray,
                     num_bins: int = DEFAULT_NUM_BINS
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Per-bin mean probability, label rate and count (equal-width bins).

  Args:
    y: 0/1 labels.
    p: probabilities of label 1, in [0, 1].
    num_bins: bins of width 1 / num_bins.

  Returns:
    (mean_p, mean_y, count), each [num_bins]; empty bins have NaN means.
  """
  y, p = _check(y, p)
  index = np.clip((p * num_bins).astype(np.int64), 0, num_bins - 1)
  count = np.bincount(index, minlength=num_bins).astype(np.float64)
  with np.errstate(invalid="ignore", divide="ignore"):
    mean_p = np.bincount(index, p, num_bins) / count
    mean_y = np.bincount(index, y, num_bins) / count
  return mean_p, mean_y, count.astype(np.int64)


def ece(y: np.ndarray, p: np.ndarray, num_bins: int = DEFAULT_NUM_BINS,
        weights: np.ndarray | None = None) -> float:
  """Expected calibration error (see the module docstring).

  Args:
    y: 0/1 labels.
    p: probabilities of label 1, in [0, 1].
    num_bins: equal-width bins.
    weights: optional row weights (weighted bin means and bin shares).

  Returns:
    The ECE in [0, 1].
  """
  w = _weights(weights, np.size(y))
  if w is not None:
    y, p = _check(y, p)
    index = np.clip((p * num_bins).astype(np.int64), 0, num_bins - 1)
    mass = np.bincount(index, w, num_bins)
    gap = np.abs(np.bincount(index, w * y, num_bins) -
                 np.bincount(index, w * p, num_bins))
    return float(gap.sum() / mass.sum())
  mean_p, mean_y, count = calibration_bins(y, p, num_bins)
  used = count > 0
  return float(np.sum(count[used] * np.abs(mean_y[used] - mean_p[used])) /
               count.sum())


def skip_metrics(skipped: np.ndarray, p_skip: np.ndarray,
                 prefix: str = "",
                 weights: np.ndarray | None = None) -> dict[str, float]:
  """`auc`, `log_loss` and `ece` of P(skip), keyed with a prefix.

  Args:
    skipped: 0/1 [R], 1 where the track was skipped.
    p_skip: [R] predicted P(skip).
    prefix: prepended to each key (e.g. "bayes_").
    weights: optional [R] row weights (e.g. selection weights).

  Returns:
    {prefix + "auc": ..., prefix + "log_loss": ..., prefix + "ece": ...}.
  """
  return {f"{prefix}auc": auc(skipped, p_skip, weights),
          f"{prefix}log_loss": log_loss(skipped, p_skip, weights),
          f"{prefix}ece": ece(skipped, p_skip, weights=weights)}


def reliability_plot(path: str | os.PathLike,
                     curves: dict[str, tuple[np.ndarray, np.ndarray]],
                     num_bins: int = DEFAULT_NUM_BINS,
                     title: str = "Reliability of P(skip), held-out sessions"
                     ) -> str:
  """Writes a reliability diagram (PNG, atomically).

  Args:
    path: the PNG path.
    curves: label -> (y, p) of each model to draw (e.g. the model and the
      world's true probabilities).
    num_bins: equal-width bins.
    title: the plot title.

  Returns:
    The path written.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, (top, bottom) = plt.subplots(
      2, 1, figsize=(5.5, 6.5), sharex=True,
      gridspec_kw={"height_ratios": [3, 1]})
  top.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
  edges = np.linspace(0, 1, num_bins + 1)
  for label, (y, p) in curves.items():
    mean_p, mean_y, count = calibration_bins(y, p, num_bins)
    used = count > 0
    top.plot(mean_p[used], mean_y[used], marker="o", markersize=3,
             label=f"{label} (ECE {ece(y, p, num_bins):.3f})")
    bottom.stairs(count / count.sum(), edges, label=label)
  top.set_ylabel("observed skip rate")
  top.set_title(title)
  top.legend(loc="upper left", fontsize=8)
  bottom.set_xlabel("predicted P(skip)")
  bottom.set_ylabel("share of rows")
  fig.tight_layout()
  path = os.fspath(path)
  with atomic_path(path) as tmp:
    fig.savefig(tmp, format="png", dpi=100)
  plt.close(fig)
  return path
