"""Tests of the NumPy skip metrics against brute force and known values."""

import numpy as np
import pytest

from user_models import metrics
from user_models import training


def _pairwise_auc(y, p):
  """P(score of a positive > score of a negative), ties counted 1/2."""
  pos, neg = p[y == 1], p[y == 0]
  diff = pos[:, None] - neg[None, :]
  return ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size


def test_auc_matches_pairwise_count_with_ties():
  rng = np.random.default_rng(0)
  y = rng.integers(0, 2, 500)
  p = np.round(rng.random(500) * 0.5 + 0.3 * y, 1)  # Coarse: many ties.
  assert metrics.auc(y, p) == pytest.approx(_pairwise_auc(y, p), abs=1e-12)


@pytest.mark.parametrize("scores,expected", [
    ([0.1, 0.2, 0.8, 0.9], 1.0),
    ([0.9, 0.8, 0.2, 0.1], 0.0),
    ([0.5, 0.5, 0.5, 0.5], 0.5),
])
def test_auc_extremes(scores, expected):
  assert metrics.auc([0, 0, 1, 1], scores) == expected


def test_auc_needs_both_classes():
  with pytest.raises(ValueError, match="both classes"):
    metrics.auc([1, 1, 1], [0.2, 0.3, 0.4])


def test_bad_inputs_are_named():
  with pytest.raises(ValueError, match="differ in size"):
    metrics.log_loss([0, 1], [0.5])
  with pytest.raises(ValueError, match="0 or 1"):
    metrics.ece([0, 2], [0.5, 0.5])


def test_log_loss_known_value_and_clipping():
  assert metrics.log_loss([1, 0], [0.8, 0.4]) == pytest.approx(
      -(np.log(0.8) + np.log(0.6)) / 2)
  assert np.isfinite(metrics.log_loss([1, 0], [0.0, 1.0]))


def test_ece_known_value():
  # Bin [0.2, 0.267): mean p 0.25, rate 0.5; bin [0.733, 0.8): p 0.75, rate 1.
  y = np.array([0, 1, 1, 1])
  p = np.array([0.25, 0.25, 0.75, 0.75])
  assert metrics.ece(y, p) == pytest.approx(0.5 * 0.25 + 0.5 * 0.25)


def test_ece_of_calibrated_probabilities_is_small():
  rng = np.random.default_rng(1)
  p = rng.random(200_000)
  y = (rng.random(p.size) < p).astype(int)
  assert metrics.ece(y, p) < 0.005
  assert metrics.ece(y, np.clip(p + 0.1, 0, 1)) > 0.08


def test_calibration_bins_put_one_in_last_bin():
  mean_p, mean_y, count = metrics.calibration_bins([1, 0], [1.0, 0.0], 15)
  assert count[0] == 1 and count[-1] == 1 and count.sum() == 2
  assert mean_p[-1] == 1.0 and mean_y[-1] == 1.0
  assert np.isnan(mean_p[1])


def test_skip_metrics_keys_with_prefix():
  out = metrics.skip_metrics([0, 1, 0, 1], [0.2, 0.7, 0.4, 0.6], "bayes_")
  assert set(out) == {"bayes_auc", "bayes_log_loss", "bayes_ece"}
  assert out["bayes_auc"] == 1.0


def test_reliability_plot_writes_png(tmp_path):
  rng = np.random.default_rng(2)
  p = rng.random(1000)
  y = (rng.random(1000) < p).astype(int)
  path = metrics.reliability_plot(tmp_path / "r.png",
                                  {"model": (y, p), "world": (y, p ** 1.1)})
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert [x.name for x in tmp_path.iterdir()] == ["r.png"]  # No temp left.


def test_reliability_title_names_the_split():
  assert training.reliability_title("user").endswith("held-out users")
  assert training.reliability_title("session").endswith("held-out sessions")


def test_integer_weights_equal_repeated_rows():
  rng = np.random.default_rng(1)
  y = (rng.random(200) < 0.4).astype(float)
  p = np.round(rng.random(200), 1)  # Rounded: many ties.
  w = rng.integers(0, 4, 200)
  w[:2] = 1
  repeated = (np.repeat(y, w), np.repeat(p, w))
  weighted = metrics.skip_metrics(y, p, weights=w.astype(float))
  expected = metrics.skip_metrics(*repeated)
  for key, value in expected.items():
    assert weighted[key] == pytest.approx(value, rel=1e-12), key
  # Weights of 1 give the unweighted figures.
  assert metrics.skip_metrics(y, p, weights=np.ones(200)) == pytest.approx(
      metrics.skip_metrics(y, p))


def test_bad_weights_are_named():
  y, p = np.array([0.0, 1.0]), np.array([0.2, 0.7])
  with pytest.raises(ValueError, match="weights and labels differ"):
    metrics.log_loss(y, p, weights=np.ones(3))
  with pytest.raises(ValueError, match="weights must be finite"):
    metrics.auc(y, p, weights=np.array([1.0, -1.0]))
