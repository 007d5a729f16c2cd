"""Rank agreement and bootstrap helpers, on hand-computed values."""

import numpy as np
import pytest

from playlist_sim import evaluation as ev


@pytest.mark.parametrize("x, y, rho, tau", [
    # No ties: one swapped pair. d = (0, 1, -1, 0), sum d^2 = 2,
    # rho = 1 - 6 * 2 / (4 * 15) = 0.8; 5 concordant, 1 discordant of 6.
    ([1, 2, 3, 4], [1, 3, 2, 4], 0.8, 4 / 6),
    # Reversed order.
    ([1, 2, 3], [3, 2, 1], -1.0, -1.0),
    # Ties in both: ranks x = (1.5, 1.5, 3, 4), y = (1, 2.5, 2.5, 4);
    # centred products sum to 3.75, both variances 4.5 -> rho = 3.75 / 4.5.
    # tau-b: 4 concordant, 0 discordant, 5 untied pairs each -> 4 / 5.
    ([1, 1, 2, 3], [1, 2, 2, 3], 3.75 / 4.5, 0.8),
    # Ties in x only: ranks x = (1, 2.5, 2.5, 4), y = (1, 2, 3, 4);
    # cov = 1.5*1.5 + 0 + 0 + 1.5*1.5 = 4.5, var x 4.5, var y 5.
    # tau-b: 5 concordant, 0 discordant; 5 untied in x, 6 in y.
    ([10, 20, 20, 30], [1, 2, 3, 4], 4.5 / np.sqrt(4.5 * 5), 5 / np.sqrt(30)),
])
def test_rank_correlations_exact(x, y, rho, tau):
  assert ev.spearman(x, y) == pytest.approx(rho)
  assert ev.kendall(x, y) == pytest.approx(tau)


def test_constant_vector_gives_nan():
  assert np.isnan(ev.spearman([1, 1, 1], [1, 2, 3]))
  assert np.isnan(ev.kendall([1, 2, 3], [5, 5, 5]))


@pytest.mark.parametrize("x, y", [([1, 2], [1, 2, 3]), ([1], [1]),
                                  ([1, np.nan], [1, 2])])
def test_rank_correlation_bad_input(x, y):
  with pytest.raises(ValueError):
    ev.spearman(x, y)
  with pytest.raises(ValueError):
    ev.kendall(x, y)


def test_agreement_uses_common_policies():
  out = ev.agreement({"a": 1.0, "b": 2.0, "c": 3.0, "extra": 9.0},
                     {"a": 10.0, "b": 30.0, "c": 20.0})
  assert out["policies"] == ["a", "b", "c"]
  assert out["num_policies"] == 3
  assert out["spearman"] == pytest.approx(0.5)     # d = (0, -1, 1).
  assert out["kendall"] == pytest.approx(1 / 3)    # 2 concordant, 1 not.


def test_bootstrap_mean_and_ratio():
  values = np.arange(10.0)
  mean, low, high = ev.bootstrap_mean(values, seed=0)
  assert mean == 4.5 and low < mean < high
  assert ev.bootstrap_mean([3.0, 3.0], seed=1) == (3.0, 3.0, 3.0)
  ratio, low, high = ev.bootstrap_ratio([1, 2, 3], [2, 4, 6], seed=0)
  assert ratio == pytest.approx(0.5) and low == pytest.approx(0.5)
  assert high == pytest.approx(0.5)
  with pytest.raises(ValueError):
    ev.bootstrap_mean([])

