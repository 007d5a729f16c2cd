"""The calibrated world's logs look like the public dataset's; its session end
is explicit, and the consecutive-skip limit is estimated from cut logs."""

import json
import os
import subprocess
import sys

import gin
import numpy as np
import pytest

import simulator
import user_models
from playlist_sim.data import mssd_comparison
from playlist_sim.data import log_stats
from playlist_sim.data import logs
from playlist_sim.data.sessions import consecutive_skip_limit_from_logs
from playlist_sim.jobs.log_generation import generate_logs
from tests.conftest import REPO_ROOT, log_table, make_env
from playlist_sim.data.mssd_reference import load_mssd_reference


def _generate(root, sessions, seed=0):
  gin.clear_config()
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  limit = gin.query_parameter("PlaylistEnvironment.consecutive_skip_limit")
  summary = generate_logs(str(root), num_sessions=sessions, seed=seed,
                          progress=False)
  gin.clear_config()
  return summary, limit


@pytest.fixture(scope="module")
def calibrated_logs(tmp_path_factory):
  root = tmp_path_factory.mktemp("calibrated")
  summary, limit = _generate(root, 3000)
  table = logs.read_sessions(summary["sessions_path"])
  stats = mssd_comparison.log_statistics(
      table, logs.read_tracks(summary["tracks_path"]))
  return root, summary, limit, table, stats


def _checks(stats):
  return {c["statistic"]: c for c in
          mssd_comparison.compare_with_mssd(stats, load_mssd_reference())}


def test_selection_keeps_ten_to_twenty_tracks(calibrated_logs):
  _, summary, _, table, _ = calibrated_logs
  lengths = log_stats.session_boundaries(table).lengths
  assert summary["num_sessions"] == 3000 == len(lengths)
  assert lengths.min() >= 10 and lengths.max() == 20
  assert summary["sessions_simulated"] > 3000  # Short sessions were dropped.


def test_small_calibrated_log_is_near_mssd(calibrated_logs):
  # 3,000 sessions: sampling noise needs looser bounds than the tolerances
  # (the slow test below holds 20,000 sessions to the tolerances).
  stats = calibrated_logs[4]
  checks = _checks(stats)
  for name, check in checks.items():
    assert check["within"] is not None, name
    if name.startswith("skip_2 at position"):
      assert abs(check["ours"] - check["mssd"]) < 0.08, name
    elif name.startswith("session length"):
      assert check["ours"] < 0.08
    elif " q" in name or name.startswith("ended_otherwise"):
      assert check["within"], name  # The catalog is exact at any log size.
    else:
      assert abs(check["ours"] - check["mssd"]) < 0.04, name


@pytest.mark.slow
def test_twenty_thousand_sessions_within_every_tolerance(tmp_path):
  summary, _ = _generate(tmp_path, 20000)
  stats = mssd_comparison.log_statistics(
      logs.read_sessions(summary["sessions_path"]),
      logs.read_tracks(summary["tracks_path"]))
  outside = {name: (c["ours"], c["mssd"], c["tolerance"])
             for name, c in _checks(stats).items() if not c["within"]}
  assert not outside


def test_log_statistics_exact_on_a_smalllog_table():
  table = log_table([[1] * 10, [0] * 5 + [1] * 15])
  stats = mssd_comparison.log_statistics(table)
  assert stats["sessions"] == 2 and stats["rows"] == 30
  assert stats["skip_2_mean"] == pytest.approx(5 / 30)
  assert stats["skip_2_by_session_position"]["1"] == 0.5
  assert stats["skip_2_by_session_position"]["11"] == 0.0
  assert stats["session_length_share"] == {"10": 0.5, "20": 0.5}
  assert stats["reason_end_share"] is None  # Not in this table.
  real = load_mssd_reference()["full_training_set"]["session_length_share"]
  expected_tv = 0.5 * (abs(0.5 - real["10"]) + abs(0.5 - real["20"]) +
                       sum(real[str(k)] for k in range(11, 20)))
  checks = _checks(stats)
  tv = checks["session length shares (TV distance)"]
  assert tv["ours"] == pytest.approx(expected_tv)
  assert tv["within"] is False
  assert checks["premium"]["within"] is None


def test_hazard_censors_sessions_cut_at_the_cap():
  # Ends with 3 skips at length 20 (cut: censored) / at length 12 (left).
  cut = [1] * 17 + [0, 0, 0]
  left = [1] * 9 + [0, 0, 0]
  hazard = log_stats.leave_hazard_by_skip_run(log_table([cut, left, left]))
  np.testing.assert_array_equal(hazard.run_lengths, [1, 2, 3])
  np.testing.assert_array_equal(hazard.at_risk, [3, 3, 2])
  np.testing.assert_array_equal(hazard.left, [0, 0, 2])
  assert log_stats.consecutive_skip_limit_censored(
      log_table([cut, left, left]), min_at_risk=1) == 3
  with pytest.raises(ValueError, match="hazard_threshold"):
    log_stats.consecutive_skip_limit_censored(log_table([left]), 0.0)


def test_estimated_limit_is_the_worlds(calibrated_logs):
  root, summary, limit, table, _ = calibrated_logs
  estimate = consecutive_skip_limit_from_logs(summary["sessions_path"])
  assert estimate == limit
  hazard = log_stats.leave_hazard_by_skip_run(table)
  # Below the limit listeners leave softly (the listener's hazard); at it,
  # always, unless the session was cut there.
  assert (hazard.hazard[:limit - 1] < 0.5).all()
  assert hazard.hazard[limit - 1] == 1.0
  with pytest.raises(ValueError, match="method"):
    consecutive_skip_limit_from_logs(summary["sessions_path"],
                                     method="median")


@pytest.mark.integration
def test_log_stats_script_writes_json_and_plot(calibrated_logs, tmp_path):
  root = calibrated_logs[0]
  out = subprocess.run(
      [sys.executable, "scripts/log_stats.py", "--sessions_path",
       str(root / "sessions.parquet"), "--tracks_path",
       str(root / "tracks.parquet"), "--root_dir", str(tmp_path)],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr
  assert "skip_2 at position 1" in out.stdout
  result = json.loads((tmp_path / "log_stats.json").read_text())
  assert result["num_measured"] == len(result["checks"])
  assert result["statistics"]["sessions"] == 3000
  assert (tmp_path / "log_stats.png").stat().st_size > 1000
  missing = subprocess.run([sys.executable, "scripts/log_stats.py"],
                           cwd=REPO_ROOT, capture_output=True, text=True,
                           timeout=300)
  assert missing.returncode != 0 and "--logs_dir" in missing.stderr


def test_listener_leave_hazard_grows_with_skips_in_a_row(small_world):
  listener = user_models.ParametricListener(small_world)
  ctx = _context(np.array([0, 0, 3, 3]), np.array([5, 15, 5, 15]))
  assert listener.leave_probability(ctx) is None  # Never leaves by default.
  leaving = user_models.ParametricListener(
      small_world, leave_bias=-2.0, leave_consecutive_skip_weight=0.5,
      leave_position_weight=0.1)
  p = leaving.leave_probability(ctx)
  expected = 1 / (1 + np.exp(-(-2.0 + 0.5 * np.array([0, 0, 3, 3]) -
                               0.1 * np.array([5, 15, 5, 15]))))
  np.testing.assert_allclose(p, expected)
  with pytest.raises(ValueError, match="leave_position_weight"):
    user_models.ParametricListener(small_world, leave_position_weight=-1.0)


@pytest.mark.parametrize("crn", [False, True])
def test_environment_ends_sessions_the_listener_leaves(small_world, crn):
  sure = user_models.ParametricListener(small_world, leave_bias=30.0)
  env = make_env(small_world, user_model=sure, batch_size=4,
                 common_random_numbers=crn)
  env.reset()
  result = env.step(np.zeros(4, np.int64))
  assert (result.step_type == 2).all()
  assert {simulator.TERMINATION_REASONS[r]
          for r in result.termination_reason} == {"listener_left"}
  never = make_env(small_world, batch_size=4, common_random_numbers=crn,
                   user_model=user_models.ParametricListener(small_world))
  never.reset()
  assert (never.step(np.zeros(4, np.int64)).termination_reason == 0).all()


def _context(consecutive_skips, position):
  r = len(position)
  return user_models.SessionContext(
      rows=np.arange(r), user_ids=np.zeros(r, np.int64),
      user_features=np.zeros((r, 8), np.float32),
      position=position.astype(np.int32),
      history_ids=np.zeros((r, 2), np.int32),
      history_responses=np.full((r, 2), -1, np.int32),
      consecutive_skips=consecutive_skips.astype(np.int32),
      num_skips=consecutive_skips.astype(np.int32))


def test_unreachable_selection_raises(tmp_path):
  gin.parse_config_file(os.path.join(REPO_ROOT, "configs", "world.gin"))
  gin.parse_config("SyntheticWorld.num_tracks = 300\n"
                   "SyntheticWorld.num_users = 50")
  with pytest.raises(ValueError, match="min_session_length 25"):
    generate_logs(str(tmp_path), num_sessions=10, min_session_length=25,
                  max_session_length=30, progress=False)
