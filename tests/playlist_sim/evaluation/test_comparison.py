"""Paired differences between an agent and its baselines."""

import numpy as np
import pytest

from playlist_sim.evaluation import comparison


def test_paired_differences_follow_the_episode_pairs():
  rng = np.random.default_rng(0)
  base = rng.normal(10.0, 3.0, 400)
  returns = {"agent": base + 0.5 + rng.normal(0, 0.1, 400), "greedy": base,
             "same": base.copy()}
  diffs = comparison.paired_differences(returns, "agent", seed=1)
  assert set(diffs) == {"greedy", "same"}
  greedy = diffs["greedy"]
  assert greedy["difference"] == pytest.approx(
      returns["agent"].mean() - base.mean())
  assert greedy["gain"] == pytest.approx(
      returns["agent"].mean() / base.mean() - 1.0)
  low, high = greedy["ci95"]
  assert 0 < low <= greedy["difference"] <= high
  # Pairing removes the shared episode noise: far tighter than unpaired.
  unpaired = comparison.paired_differences(returns, "agent", seed=1,
                                           paired=False)["greedy"]["ci95"]
  assert high - low < (unpaired[1] - unpaired[0]) / 5


def test_an_agent_against_itself_differs_by_nothing():
  returns = {"agent": np.arange(10.0), "copy": np.arange(10.0)}
  diff = comparison.paired_differences(returns, "agent", seed=0)["copy"]
  assert diff["difference"] == 0 and diff["ci95"] == [0.0, 0.0]
  assert diff["gain"] == 0


def test_unknown_baseline_is_named():
  with pytest.raises(ValueError, match="telepathy"):
    comparison.baseline_policies(["random", "telepathy"], None, None, 0)
