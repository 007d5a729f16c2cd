"""The evaluation report: report.md and a self-contained report.html."""

import base64
import re

import numpy as np

from playlist_sim.evaluation import report
from playlist_sim.policies.softmax import DEFAULT_STOCHASTIC
from playlist_sim.evaluation.policy_names import describe_policy, policy_family

_POLICIES = ["ahdqn", "random", "greedy", "logging", "softmax_t0.2",
             "taste_softmax", "greedy_oracle", "my_agent"]
_TARGETS = ["logging", "softmax_t0.2", "taste_softmax"]


def _interval(mean):
  return {"mean": mean, "ci_low": mean - 0.5, "ci_high": mean + 0.5}


def _env_metrics(rng, mean):
  rates = list(rng.uniform(0.1, 0.7, 12)) + [None]
  return {"mean_return": mean, "ci_low": mean - 0.5, "ci_high": mean + 0.5,
          "return": _interval(mean), "listens_per_session": _interval(mean),
          "skip_rate": _interval(0.4), "session_length": _interval(10.0),
          "termination": {"consecutive_skips": _interval(0.9)},
          "skip_rate_by_position": rates,
          "tracks_by_position": [100] * 10 + [5] * 3}


def _evaluation(root):
  rng = np.random.default_rng(0)
  policies = {n: {"simulator": _env_metrics(rng, 5 + i + 0.3),
                  "world": _env_metrics(rng, 5 + i)}
              for i, n in enumerate(_POLICIES)}
  estimators = {
      est: {t: {"estimate": 7.0 + j, "truth": 7.0,
                "relative_error": 0.01 * (j + 1),
                "quantity": quantity}
            for j, t in enumerate(_TARGETS)}
      for est, quantity in (("ips", "listen rate of the next track"),
                            ("pdis", "session return"))}
  return {
      "num_episodes": 40, "policies": policies,
      "user_model_path": str(root / "quantized" / "user_model.int8.tflite"),
      "agreement": {"simulator": {"spearman": 0.9, "kendall": 0.8,
                                  "num_policies": len(_POLICIES)}},
      "estimators": estimators,
      "targets": {t: {"kl_from_logging": 0.1 * j}
                  for j, t in enumerate(_TARGETS)},
      "logged_decisions": {"sessions": 50, "decisions": 400},
      "saved_policies": {"ahdqn": str(root / "ahdqn" / "policy"),
                         "my_agent": str(root / "my_agent" / "policy")},
      "stochastic_specs": {n: vars(DEFAULT_STOCHASTIC[n]) for n in _TARGETS},
      "paired": {"ahdqn": {"world": {
          "difference": 0.137, "ci95": [0.081, 0.19], "gain": 0.0167}}},
  }


def test_report_md_and_html(tmp_path):
  evaluation = _evaluation(tmp_path)
  written = report.write_report(evaluation, str(tmp_path))
  md = (tmp_path / "report.md").read_text()
  page = (tmp_path / "report.html").read_text()
  assert written["html"] == str(tmp_path / "report.html")
  for text in (md, page):
    assert str(tmp_path) not in text  # No absolute paths.
    assert "quantized/user_model.int8.tflite" in text
  # Return and listens/session are equal here: one column, said in words.
  header = next(line for line in md.splitlines() if line.startswith(
      "| policy | simulator return"))
  assert "listens/session" not in header
  assert "reward 1 per listen" in md
  assert "| ahdqn | world | +0.137 [+0.081, +0.190] | +1.7% | yes |" in md
  # The legend table names and explains every policy.
  for name in _POLICIES:
    assert re.search(rf"^\| {re.escape(name)} \| \w", md, re.M)
    assert describe_policy(name, DEFAULT_STOCHASTIC,
                           evaluation["saved_policies"]) in md
  # Every plot inline in the HTML, as PNG data.
  images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
  assert len(images) == len(report.PLOTS)
  for data in images:
    assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
  for plot in report.PLOTS:
    assert f"({plot})" in md and plot not in page


def test_listens_column_kept_when_it_differs(tmp_path):
  evaluation = _evaluation(tmp_path)
  world = evaluation["policies"]["random"]["world"]
  world["listens_per_session"] = _interval(3.0)
  md = report.to_markdown(report.report_blocks(evaluation, str(tmp_path)))
  assert "world listens/session" in md
  assert "reward 1 per listen" not in md


def test_policy_descriptions():
  assert "logs" in describe_policy("logging")
  assert "0.2" in describe_policy("softmax_t0.2")
  assert "uniform choice 50%" in describe_policy("logging_eps0.5")
  assert "no popularity" in describe_policy("taste_softmax")
  assert "true" in describe_policy("greedy_oracle")
  assert policy_family("greedy_oracle") == "oracle"
  assert policy_family("softmax_t0.03") == "logging policy family"
  assert policy_family("unknown_agent") == "agent"
  assert "no description" in describe_policy("unknown_agent")
