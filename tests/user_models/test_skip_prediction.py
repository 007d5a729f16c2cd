"""The Skip Prediction Challenge's task: halves, metric, baselines, no leak."""

import dataclasses
import shutil

import numpy as np
import pytest

from playlist_sim.data.log_stats import LISTEN_LEVEL, SKIP_1, SKIP_2
from user_models import features
from user_models import log_inputs
from user_models import skip_prediction as sp
from user_models.keras_user_model import load_user_model


def _challenge_evaluator(submission, groundtruth):
  """The challenge's evaluation as its organisers published it (aicrowd
  starter kit: per session, add s / c on each correct prediction, s the
  correct predictions so far, c the 1-based position; divide by the length;
  average over sessions; first-prediction accuracy beside it), written out
  loop by loop as the reference the vectorised metric must match."""
  total_aa, total_first = 0.0, 0.0
  for sub, tru in zip(submission, groundtruth):
    right, acc = 0.0, 0.0
    for position, (x, y) in enumerate(zip(sub, tru), start=1):
      if x == y:
        right += 1.0
        acc += right / position
    total_aa += acc / len(tru)
    total_first += float(sub[0] == tru[0])
  return total_aa / len(groundtruth), total_first / len(groundtruth)


def test_average_accuracy_of_hand_computed_sessions():
  correct = np.array([1, 1, 1, 0, 1,   0, 1, 1, 1, 1,   1, 1,   0], bool)
  offsets = np.array([0, 5, 10, 12, 13])
  aa = sp.average_accuracies(correct, offsets)
  # (1/1 + 2/2 + 3/3 + 0 + 4/5) / 5; (0 + 1/2 + 2/3 + 3/4 + 4/5) / 5.
  np.testing.assert_allclose(aa, [3.8 / 5, (0.5 + 2 / 3 + 0.75 + 0.8) / 5,
                                  1.0, 0.0])


def test_metric_matches_the_challenge_evaluator_on_random_sessions():
  rng = np.random.default_rng(3)
  lengths = rng.integers(5, 11, size=200)  # Second halves of 10..20 tracks.
  offsets = np.concatenate([[0], np.cumsum(lengths)])
  truth = rng.random(offsets[-1]) < 0.45
  predicted = np.where(rng.random(offsets[-1]) < 0.7, truth, ~truth)
  def split(a):
    return [a[s:e] for s, e in zip(offsets[:-1], offsets[1:])]
  want_aa, want_first = _challenge_evaluator(split(predicted.astype(int)),
                                             split(truth.astype(int)))
  assert sp.mean_average_accuracy(predicted, truth, offsets) == (
      pytest.approx(want_aa, abs=1e-12))
  assert sp.first_prediction_accuracy(predicted, truth, offsets) == (
      pytest.approx(want_first, abs=1e-12))


def test_average_accuracy_rejects_offsets_that_do_not_cover_predictions():
  with pytest.raises(ValueError, match="offsets must run from 0 to 3"):
    sp.average_accuracies(np.ones(3, bool), np.array([0, 2]))


def test_challenge_split_gives_floor_half_as_first_half():
  offsets = np.array([0, 10, 21, 41, 42])  # Lengths 10, 11, 20, 1.
  split = sp.challenge_split(offsets, np.array([True, True, True, True]))
  np.testing.assert_array_equal(split.sessions, [0, 1, 2])  # 1 track: out.
  np.testing.assert_array_equal(split.first_half, [5, 5, 10])
  np.testing.assert_array_equal(np.diff(split.offsets), [5, 6, 10])
  np.testing.assert_array_equal(split.rows[:6], [5, 6, 7, 8, 9, 15])
  assert split.rows[-1] == 40
  with pytest.raises(ValueError, match="two tracks"):
    sp.challenge_split(offsets, np.array([3]))


def test_expected_counts_equal_the_logged_counts_when_outcomes_are_known():
  levels = np.array([SKIP_1, LISTEN_LEVEL, SKIP_2, SKIP_1, 3, LISTEN_LEVEL])
  offsets = np.array([0, 6])
  context = features.logged_contexts(np.arange(6), levels, offsets,
                                     np.zeros(6, int), np.zeros((6, 8)))
  p_skip = (levels != LISTEN_LEVEL).astype(float)
  rows = np.arange(6)
  num, run = sp._expected_counts(p_skip, rows, rows)
  np.testing.assert_array_equal(num, context.num_skips)
  np.testing.assert_array_equal(run, context.consecutive_skips)
  # Unknown outcomes: the expected run is sum_j prod of the last j P(skip).
  num, run = sp._expected_counts(np.array([1.0, 0.5, 0.5]), np.array([2]),
                                 np.array([2]))
  assert num[0] == pytest.approx(1.5)
  assert run[0] == pytest.approx(0.5 + 0.5 * 1.0)  # Row 1, then rows 1-0.


def _with_levels(inputs, levels):
  """The inputs as if the logs had these levels (contexts rebuilt)."""
  data = dataclasses.replace(inputs.data, levels=levels)
  context = features.logged_contexts(
      data.track_rows, levels, data.bounds.offsets, data.row_users,
      np.asarray(inputs.context.user_features))
  return dataclasses.replace(inputs, data=data, context=context)


@pytest.mark.parametrize("kind", ["cwm", "swm"])
def test_second_half_outcomes_never_reach_the_model(tiny_trained, kind):
  model = load_user_model(tiny_trained[kind])
  inputs = log_inputs.prepare_inputs(tiny_trained["logs"])
  split = sp.challenge_split(inputs.data.bounds.offsets,
                             inputs.data.held_out)
  probs = sp.predict_second_half(model, inputs, split)
  assert probs.shape == (len(split.rows), features.NUM_LEVELS)
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
  flipped = inputs.data.levels.copy()
  flipped[split.rows] = np.where(flipped[split.rows] == LISTEN_LEVEL, SKIP_1,
                                 LISTEN_LEVEL)
  again = sp.predict_second_half(model, _with_levels(inputs, flipped), split)
  np.testing.assert_allclose(again, probs, atol=1e-6)
  # The first half does reach it.
  first = np.setdiff1d(np.arange(len(flipped)), split.rows)
  flipped[first] = np.where(flipped[first] == LISTEN_LEVEL, SKIP_1,
                            LISTEN_LEVEL)
  changed = sp.predict_second_half(model, _with_levels(inputs, flipped),
                                   split)
  assert np.abs(changed - probs).max() > 1e-4


def test_evaluate_reports_model_and_both_baselines(tiny_trained):
  model = load_user_model(tiny_trained["cwm"])
  inputs = log_inputs.prepare_inputs(tiny_trained["logs"])
  result = sp.evaluate_skip_prediction(model, inputs, inputs.data.held_out)
  for scores in (result, result["repeat_last_skip"],
                 result["majority_class"]):
    assert 0.0 <= scores["mean_average_accuracy"] <= 1.0
    assert 0.0 <= scores["first_prediction_accuracy"] <= 1.0
  skip_2 = inputs.data.levels <= SKIP_2
  train_rows = ~inputs.data.held_out[inputs.data.bounds.session_index]
  assert result["majority_class"]["value"] == bool(
      skip_2[train_rows].mean() > 0.5)
  # Repeat-last-skip, session by session with the challenge's evaluator.
  offsets = inputs.data.bounds.offsets
  subs, truths = [], []
  for s in np.flatnonzero(inputs.data.held_out):
    start, end = offsets[s], offsets[s + 1]
    half = (end - start) // 2
    truths.append(skip_2[start + half:end].astype(int))
    subs.append(np.full(len(truths[-1]), int(skip_2[start + half - 1])))
  want_aa, want_first = _challenge_evaluator(subs, truths)
  assert result["repeat_last_skip"]["mean_average_accuracy"] == (
      pytest.approx(want_aa))
  assert result["repeat_last_skip"]["first_prediction_accuracy"] == (
      pytest.approx(want_first))
  assert result["num_sessions"] == len(truths)
  assert result["num_predictions"] == sum(len(t) for t in truths)


def test_benchmark_without_a_recorded_split_says_what_to_bind(tiny_trained,
                                                              tmp_path):
  lone = tmp_path / "user_model.keras"
  shutil.copy(tiny_trained["cwm"], lone)  # No metrics.json beside it.
  with pytest.raises(ValueError, match="skip_prediction_benchmark.split_by"):
    sp.skip_prediction_benchmark(str(tmp_path / "out"), tiny_trained["logs"],
                                 str(lone))
  result = sp.skip_prediction_benchmark(
      str(tmp_path / "out"), tiny_trained["logs"], str(lone),
      split_by="session", holdout_fraction=0.2, split_seed=0)
  assert result["model_type"] == "cwm"
  assert result["split"] == {"split_by": "session", "holdout_fraction": 0.2,
                             "split_seed": 0}
