"""Propensity weights from prepared logs; train_user_model records them in
metrics.json beside the selection weights, and refuses, before any
training, logs that carry no propensities."""

import shutil

import pyarrow.parquet as pq
import pytest

from playlist_sim.data.propensity import PropensityError
from user_models import training
from user_models.log_inputs import prepare_inputs, propensity_row_weights


def test_row_weights_of_the_world_logs(tiny_trained):
  inputs = prepare_inputs(tiny_trained["logs"], "user")
  fit_rows = inputs.fit[inputs.data.bounds.session_index]
  weights, summary = propensity_row_weights(inputs, "LOGS", 4, 0.99,
                                            fit_rows)
  assert weights.shape == fit_rows.shape and (weights > 0).all()
  assert weights[fit_rows].mean() == pytest.approx(1.0)
  assert summary["max_weight"] == pytest.approx(weights[fit_rows].max())
  policy = summary["observable_policy"]
  # The world's logging policy scores by taste: the fit sees it through the
  # profile, and its choices are likelier than uniform ones.
  assert policy["cosine_weight"] > 0.0
  assert policy["mean_log_likelihood"] > policy["uniform_log_likelihood"]


@pytest.mark.integration
def test_propensity_weights_are_fitted_and_recorded(tiny_trained, tmp_path):
  metrics = training.train_user_model(
      str(tmp_path / "model"), tiny_trained["logs"], max_epochs=1,
      propensity_window=3, progress=False)
  info = metrics["propensity_weighting"]
  assert info["enabled"] and info["window"] == 3
  assert 0.0 < info["ess_fraction"] <= 1.0
  assert info["cap_quantile"] == 0.99 and info["max_weight"] > 1.0
  assert info["observable_policy"]["fit_sessions"] > 0
  # The held-out figures stay weighted by the selection weights only.
  assert metrics["selection_weighting"]["enabled"]
  assert "held_out" in metrics["selection_weighting"]


def test_logs_without_propensities_are_refused(tiny_trained, tmp_path):
  logs = tmp_path / "logs"
  logs.mkdir()
  shutil.copy(tiny_trained["tracks"], logs / "tracks.parquet")
  table = pq.read_table(tiny_trained["sessions"])
  pq.write_table(table.drop_columns(["propensity"]),
                 logs / "sessions.parquet")
  with pytest.raises(PropensityError, match="propensity_window = 0"):
    training.train_user_model(str(tmp_path / "model"), str(logs),
                              max_epochs=1, propensity_window=3,
                              progress=False)
  assert not (tmp_path / "model" / "user_model.keras").exists()
