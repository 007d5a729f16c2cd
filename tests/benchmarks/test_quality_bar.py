"""The time-to-quality bar and where a learning curve first clears it."""

import numpy as np
import pytest

from benchmarks.quality_bar import assess_curve, quality_bar


def _references(lookahead_gain: float, episodes: int = 400) -> dict:
  rng = np.random.default_rng(0)
  greedy_model = rng.normal(8.0, 2.0, episodes)
  greedy_oracle = greedy_model + 0.5
  return {"greedy_user_model": greedy_model, "greedy_oracle": greedy_oracle,
          "lookahead_oracle": greedy_oracle * (1.0 + lookahead_gain)}


def _final(lift: float, low: float, references: dict) -> dict:
  means = {name: {"mean_return": float(np.mean(r))}
           for name, r in references.items()}
  return {"policies": means, "episodes": 400, "differences": {
      "greedy_user_model": {"gain": lift, "difference": 0.1,
                            "ci95": [low, low + 0.2]}}}


@pytest.mark.parametrize("gain,fraction,max_lift,required", [
    (0.008, 0.5, 0.05, 0.004),   # A small world gain: half of it.
    (0.30, 0.5, 0.05, 0.05),     # A large one: issue #16's 5% at most.
    (-0.01, 0.5, 0.05, 0.0),     # No gain: only the interval counts.
    (0.02, 1.0, 0.05, 0.02)])
def test_the_bar_is_a_share_of_the_lookahead_gain_capped(gain, fraction,
                                                         max_lift, required):
  bar = quality_bar(_references(gain), fraction, max_lift)
  assert bar.lookahead_gain == pytest.approx(gain)
  assert bar.required_lift == pytest.approx(required)
  assert f"{required:.4f}" in bar.rule


def test_the_first_point_above_the_bar_with_an_interval_above_zero():
  references = _references(0.02)  # Bar: +1% over greedy-by-model.
  greedy = references["greedy_user_model"]
  shifts = [-0.2, 0.05, 0.12, 0.2]  # Lifts about -2.5%, +0.6%, +1.5%, +2.5%.
  points = [{"train_steps": 100 * i, "wall_s": 10.0 * i,
             "returns": greedy + shift} for i, shift in enumerate(shifts)]
  result = assess_curve(points, references,
                        _final(0.02, 0.05, references))
  assert [row["passed"] for row in result["curve"]] == [False, False, True,
                                                        True]
  assert result["first_passed"] == 2
  assert result["confirmed"] and result["reason"] is None
  row = result["curve"][2]
  assert row["train_steps"] == 200 and row["wall_s"] == 20.0
  assert row["mean_return"] == pytest.approx(greedy.mean() + 0.12)
  assert row["lift"] == pytest.approx(0.12 / greedy.mean())
  # Constant per-episode differences: the paired interval is the point.
  assert row["ci95"] == pytest.approx([0.12, 0.12])


def test_a_noisy_lift_does_not_pass_without_its_interval():
  references = _references(0.02)
  noise = np.random.default_rng(1).normal(0.1, 3.0, 400)
  points = [{"train_steps": 100,
             "returns": references["greedy_user_model"] + noise}]
  row = assess_curve(points, references, {})["curve"][0]
  assert row["ci95"][0] < 0 and not row["passed"]


def test_no_time_to_quality_says_why():
  references = _references(0.02)
  greedy = references["greedy_user_model"]
  never = assess_curve([{"train_steps": 100, "returns": greedy - 0.1}],
                       references, _final(-0.01, -0.1, references))
  assert never["first_passed"] is None and not never["confirmed"]
  assert never["reason"].startswith("never reached: the best point (train "
                                    "step 100)")
  unconfirmed = assess_curve([{"train_steps": 100, "returns": greedy + 0.3}],
                             references, _final(0.004, 0.01, references))
  assert unconfirmed["first_passed"] == 0 and not unconfirmed["confirmed"]
  assert "final evaluation (400 episodes)" in unconfirmed["reason"]


def test_bad_inputs_are_refused_with_what_to_do():
  references = _references(0.02)
  with pytest.raises(ValueError, match="ParametricListener"):
    quality_bar({"greedy_oracle": references["greedy_oracle"]})
  with pytest.raises(ValueError, match=r"in \(0, 1\]"):
    quality_bar(references, gain_fraction=0.0)
  with pytest.raises(ValueError, match="same episodes"):
    assess_curve([{"returns": references["greedy_user_model"][:10]}],
                 references, {})
