"""The taste ceiling: the world's response to a taste read from the logs."""

import json
import os

import gin
import numpy as np
import pytest

from benchmarks import taste_ceiling as taste_ceiling_script
from tests.conftest import REPO_ROOT
from user_models.listener import ParametricListener
from user_models.log_inputs import prepare_inputs
from user_models.taste_ceiling import EVIDENCE, taste_ceiling, taste_evidence


@pytest.fixture(scope="module")
def world_and_inputs(tiny_trained):
  """The tiny logs' world (as tests/user_models/conftest.py built it)."""
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config("SyntheticWorld.num_tracks = 400")
  listener = ParametricListener()
  gin.clear_config()
  return listener, prepare_inputs(tiny_trained["logs"], split_by="user")


def test_a_listeners_own_taste_gives_the_worlds_own_logits(world_and_inputs):
  listener, inputs = world_and_inputs
  ctx, tracks = inputs.context, inputs.data.track_rows[:, None]
  own = listener.world.user_taste[np.asarray(ctx.user_ids)]
  np.testing.assert_array_equal(
      listener.listen_logits(ctx, tracks, taste=own),
      listener.listen_logits(ctx, tracks))
  with pytest.raises(ValueError, match=r"taste must be \[R, 8\]"):
    listener.listen_logits(ctx, tracks, taste=own[:, :4])


def test_exact_evidence_reaches_the_world_and_a_profile_does_not(
    world_and_inputs):
  listener, inputs = world_and_inputs
  own = listener.world.user_taste[np.asarray(inputs.context.user_ids)]
  out = taste_ceiling(listener, inputs,
                      {"exact": own, "nothing": np.zeros((len(own), 0))})
  # The linear read of the taste itself is the taste.
  assert out["exact_auc"] == pytest.approx(out["world_auc"], abs=1e-9)
  # Without evidence every listener gets the mean taste: worse than the
  # world, better than chance (quality, fatigue and the rest are exact).
  assert 0.5 < out["nothing_auc"] < out["world_auc"]
  assert out["rows"] == int(inputs.data.held_out[
      inputs.data.bounds.session_index].sum())


def test_the_evidence_kinds_and_their_widths(world_and_inputs):
  _, inputs = world_and_inputs
  evidence = taste_evidence(inputs)
  rows = len(inputs.data.track_rows)
  assert tuple(evidence) == EVIDENCE
  assert evidence["profile"].shape == (rows, 8)
  # Mean listened and skipped vectors, and the log-count of each.
  assert evidence["listens_and_skips"].shape == (rows, 18)
  assert np.isfinite(evidence["listens_and_skips"]).all()
  out = taste_ceiling(world_and_inputs[0], inputs, evidence)
  for kind in EVIDENCE:
    assert 0.5 < out[f"{kind}_auc"] <= out["world_auc"] + 0.02


def test_the_research_script_prints_and_writes_the_ceiling(
    world_and_inputs, tiny_trained, tmp_path, capsys):
  listener, inputs = world_and_inputs
  out_path = tmp_path / "ceiling.json"
  try:
    out = taste_ceiling_script.main([
        "--logs_dir", tiny_trained["logs"], "--gin_bindings",
        "SyntheticWorld.num_tracks = 400", "--json_out", str(out_path)])
  finally:
    gin.clear_config()
  assert json.loads(out_path.read_text()) == out
  assert out == taste_ceiling(listener, inputs)
  assert "taste read from profile" in capsys.readouterr().out


def test_visible_totals_count_the_users_other_sessions(world_and_inputs):
  data = world_and_inputs[1].data
  rows = len(data.track_rows)
  sums, counts = data.visible_totals(np.ones(rows), np.ones((rows, 1)),
                                     leave_session_out=True)
  lengths = np.diff(data.bounds.offsets)
  user_rows = {u: lengths[data.session_users == u].sum()
               for u in np.unique(data.session_users)}
  expected = np.array([user_rows[u] for u in data.session_users]) - lengths
  np.testing.assert_array_equal(counts, expected)
  np.testing.assert_array_equal(sums[:, 0], expected)
  # The profile is the visible listens' mean acoustic vector.
  np.testing.assert_allclose(data.taste_profiles(True),
                             data.session_profile, atol=0)
