"""Selection weights per row: the survival programme against enumeration,
the session skip rates by hand, stabilisation, the rows no weight can
correct, the selection's minimum from metadata or detection, and the
weights undoing a selection by leaving and by the skip limit."""

import itertools
import json

import numpy as np
import pytest

from playlist_sim.data import selection
from playlist_sim.data.leaving import LeavingModel
from tests.conftest import log_table


def _enumerated_survival(run, position, q_listen, q_skip, model, m, limit):
  """P(reach m | run after `position`) by summing over every future."""
  if run >= limit:
    return 0.0
  total = 0.0
  steps = m - 1 - position
  for future in itertools.product((0, 1), repeat=steps):  # 1: a skip.
    p, r, k = 1.0 - model.hazard(run, position), run, position
    for skip in future:
      p *= q_skip if (r > 0) == bool(skip) and r > 0 else (
          1 - q_skip if r > 0 else (q_listen if skip else 1 - q_listen))
      r, k = (r + 1 if skip else 0), k + 1
      if r >= limit:
        p = 0.0
        break
      p *= 1.0 - model.hazard(r, k)
    total += p
  return total


def test_survival_matches_enumeration_over_every_future():
  model = LeavingModel(coefficients=(-1.5, 0.4, -0.1))
  m, limit = 7, 3
  cases = [(r, t) for t in range(1, m) for r in range(limit)]
  run = np.array([r for r, _ in cases])
  position = np.array([t for _, t in cases])
  rates = np.tile([0.3, 0.7], (len(cases), 1))
  got = selection.survival_probabilities(run, position, rates, model, m,
                                         limit)
  want = [_enumerated_survival(r, t, 0.3, 0.7, model, m, limit)
          for r, t in cases]
  np.testing.assert_allclose(got, want, rtol=1e-12)
  # After the minimum every session is kept; at the limit none is.
  np.testing.assert_array_equal(selection.survival_probabilities(
      np.array([0, 5, limit]), np.array([m, m + 3, 2]),
      np.full((3, 2), 0.5), model, m, limit), [1.0, 1.0, 0.0])
  with pytest.raises(selection.SelectionError, match="skip_rates"):
    selection.survival_probabilities(run, position, rates[:2], model, m,
                                     limit)


def test_session_skip_rates_after_a_listen_and_after_a_skip():
  # Session 0: L S S L S -> after a listen (rows 1, 2, 5 count the first
  # row as after a listen): skips at rows 2 and 5 of 3; after a skip
  # (rows 3, 4): one skip of 2.
  table = log_table([[1, 0, 0, 1, 0], [1, 1, 1, 1, 1]])
  rates = selection.session_skip_rates(table, prior_strength=0.0)
  np.testing.assert_allclose(rates[0], [2 / 3, 1 / 2])
  # Session 1 never skipped: after a skip it takes the log's rate.
  np.testing.assert_allclose(rates[1], [0.0, 1 / 2])
  shrunk = selection.session_skip_rates(table, prior_strength=2.0)
  overall_listen = 2 / 8
  np.testing.assert_allclose(shrunk[1, 0], (0 + 2 * overall_listen) / 7)
  with pytest.raises(selection.SelectionError, match="prior_strength"):
    selection.session_skip_rates(table, prior_strength=-1.0)


def test_weights_are_stabilised_and_zero_where_a_skip_was_never_possible():
  model = LeavingModel(coefficients=(-1.0, 0.5, 0.0),
                       consecutive_skip_limit=3)
  # Minimum 5. Session 1 reaches a run of 2 at position 2: its row 3 could
  # only have been a listen in a kept log.
  table = log_table([[1, 1, 1, 1, 1, 0], [0, 0, 1, 0, 1], [1, 0, 1, 0, 0, 1]])
  raw = selection.selection_weights(table, model, 5, cap_quantile=None)
  assert raw.row_weights.mean() == pytest.approx(1.0)
  assert raw.row_weights[6 + 2] == 0.0 and raw.num_unobservable == 1
  late = np.array([0, 0, 0, 0, 1, 1] + [0] * 5 + [0, 0, 0, 0, 1, 1], bool)
  np.testing.assert_array_equal(raw.survival[late], 1.0)
  # Earlier rows' weights are 1 / survival on the same scale.
  early = ~late & (raw.row_weights > 0)
  ratio = raw.row_weights[early] * raw.survival[early]
  np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)
  capped = selection.selection_weights(table, model, 5, cap_quantile=0.5)
  assert capped.row_weights.max() <= capped.cap + 1e-12
  assert capped.row_weights.mean() == pytest.approx(1.0)
  on = np.zeros(table.num_rows, bool)
  on[:6] = True
  part = selection.selection_weights(table, model, 5, None, normalise_on=on)
  assert part.row_weights[on].mean() == pytest.approx(1.0)
  with pytest.raises(selection.SelectionError, match="cap_quantile"):
    selection.selection_weights(table, model, 5, cap_quantile=1.5)
  with pytest.raises(selection.SelectionError, match="shorter than"):
    selection.selection_weights(table, model, 6)
  with pytest.raises(selection.SelectionError, match="normalise_on"):
    selection.selection_weights(table, model, 5, normalise_on=on[:3])


def test_selection_minimum_from_metadata_detection_or_none(tmp_path):
  long = log_table([[1] * 10, [0] * 12])
  short = log_table([[1] * 3, [0] * 12])
  path = str(tmp_path / "sessions.parquet")
  assert selection.log_selection_minimum(long) == (10, "detected")
  assert selection.log_selection_minimum(short, path) == (1, "unselected")
  (tmp_path / "metrics.json").write_text(json.dumps(
      {"min_session_length": 3}))
  assert selection.log_selection_minimum(short, path) == (3, "metadata")
  (tmp_path / "metrics.json").write_text(json.dumps(
      {"min_session_length": 5}))
  with pytest.raises(selection.SelectionError, match="session of 3"):
    selection.log_selection_minimum(short, path)
  (tmp_path / "metrics.json").write_text(json.dumps(
      {"min_session_length": "ten"}))
  with pytest.raises(selection.SelectionError, match="integer"):
    selection.log_selection_minimum(short, path)
  (tmp_path / "metrics.json").unlink()
  (tmp_path / "stage.json").write_text(json.dumps({"min_session_length": 2}))
  assert selection.log_selection_minimum(short, path) == (2, "metadata")


def _simulate(rng, num, cut, model, limit):
  """Sessions of listeners with their own skip propensity, ended by the
  skip limit, by leaving, or by the cut; returns listens and lengths."""
  propensity = rng.beta(2.0, 2.0, num)
  listens = rng.random((num, cut)) >= propensity[:, None]
  run = np.zeros(num)
  length = np.full(num, cut)
  alive = np.ones(num, bool)
  for t in range(cut):
    run = np.where(listens[:, t], 0, run + 1)
    end = alive & ((run >= limit) | (rng.random(num) <
                                     model.hazard(run, t + 1)))
    length[end] = t + 1
    alive &= ~end
  return listens, length


def test_row_weights_undo_selection_by_leaving_and_by_the_skip_limit():
  # Keeping sessions of >= 6 tracks drops the heavy skippers, who leave
  # and hit the limit of 4 skips in a row early: the kept sessions' early
  # skip rate, in each cell of (position, run before) a user model
  # conditions on, is far too low, and the row weights restore it. The
  # cells where a skip would have hit the limit show only listens and get
  # weight 0, so they are left out.
  rng = np.random.default_rng(0)
  num, cut, minimum, limit = 40000, 14, 6, 4
  model = LeavingModel(coefficients=(-2.5, 0.5, 0.0),
                       consecutive_skip_limit=limit)
  listens, length = _simulate(rng, num, cut, model, limit)
  everyone = log_table([listens[i, :length[i]] for i in range(num)])
  kept = length >= minimum
  table = log_table([listens[i, :length[i]] for i in np.flatnonzero(kept)])
  early = minimum - 1
  cells = lambda t, w=None: selection.weighted_skip_rate(  # noqa: E731
      t, w, max_position=early, by_run=True)[:, :limit - 1]
  truth = cells(everyone)
  raw = cells(table)
  w = selection.selection_weights(table, model, minimum, cap_quantile=None)
  fixed = cells(table, w.row_weights)
  seen = np.isfinite(truth) & np.isfinite(raw)
  c = selection.row_counters(table)
  support = np.bincount((c["position"] - 1) * 10 + np.minimum(
      c["run_before"], 9), minlength=10 * cut)[:10 * early].reshape(
          early, 10)[:, :limit - 1]
  seen &= support >= 500
  bias = np.abs(truth - raw)[seen]
  assert bias.max() > 0.1 and np.mean(bias) > 0.05  # The bias is visible,
  # and the weights remove most of it (a session's own skip rates are noisy
  # estimates of its propensity, so not all of it).
  assert np.mean(np.abs(fixed - truth)[seen]) < 0.25 * np.mean(bias)
  assert np.all(np.abs(fixed - truth)[seen] < 0.5 * bias + 0.01)
