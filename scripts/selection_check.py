"""Checks selection weights against logs that were not selected.

    python scripts/selection_check.py --selected_logs KEPT --all_logs ALL

KEPT are logs selected on length (e.g. `generate_logs.py`'s default: >= 10
tracks, cut at 20), ALL the same world and logging policy without the
selection (`--gin_bindings "generate_logs.min_session_length = 1"`). Fits the
leaving model on KEPT, weights its rows by 1 / P(reach the minimum | row)
(`playlist_sim.data.selection`) for several prior strengths and caps, and
prints the skip rate at positions 1..m-1 of KEPT, raw and weighted, against
ALL's: by position, and by (position, skip run before the row), the cells
a user model conditions on. This is how the defaults were chosen (on world
seed 101); `--json_out` writes the figures.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from playlist_sim.data import logs, selection  # noqa: E402
from playlist_sim.data.leaving import fit_leaving_model  # noqa: E402
from playlist_sim.data.log_files import find_log_files  # noqa: E402

_PRIORS = (0.0, 1.0, 4.0, 16.0, 1e9)
_CAPS = (None, 0.999, 0.99, 0.95)
# Cells of (position, run) with fewer rows in ALL are too noisy to judge.
_MIN_CELL_ROWS = 200


def _gaps(rate: np.ndarray, truth: np.ndarray, support: np.ndarray,
          early: int) -> dict:
  """Largest and support-weighted mean absolute gaps over positions < m."""
  gap = np.abs(rate[:early] - truth[:early])
  ok = (support[:early] >= _MIN_CELL_ROWS) & np.isfinite(gap)
  if not ok.any():
    raise SystemExit("no (position, run) cell of the unselected logs has "
                     f"{_MIN_CELL_ROWS} rows; generate more sessions")
  return {"max": float(gap[ok].max()),
          "mean": float(np.average(gap[ok], weights=support[:early][ok]))}


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--selected_logs", required=True)
  parser.add_argument("--all_logs", required=True)
  parser.add_argument("--json_out", default=None)
  args = parser.parse_args(argv)
  kept_path = find_log_files(args.selected_logs)[0]
  kept = logs.read_sessions(kept_path)
  everyone = logs.read_sessions(find_log_files(args.all_logs)[0])
  minimum, source = selection.log_selection_minimum(kept, kept_path)
  if minimum <= 1:
    raise SystemExit(f"--selected_logs {args.selected_logs}: the logs are not"
                     " selected on length")
  leaving = fit_leaving_model(kept, minimum)
  early = minimum - 1
  truth = selection.weighted_skip_rate(everyone)
  truth_cells = selection.weighted_skip_rate(everyone, by_run=True)
  c = selection.row_counters(everyone)
  support = np.bincount((c["position"] - 1) * 10 +
                        np.minimum(c["run_before"], 9), minlength=200)
  support = support[:200].reshape(20, 10)
  pos_support = support.sum(1)

  def score(w):
    return {"by_position": _gaps(selection.weighted_skip_rate(kept, w),
                                 truth, pos_support, early),
            "by_position_and_run": _gaps(
                selection.weighted_skip_rate(kept, w, by_run=True),
                truth_cells, support, early)}

  result = {"min_session_length": minimum, "source": source,
            "leaving_model": list(leaving.coefficients),
            "consecutive_skip_limit": leaving.consecutive_skip_limit,
            "all": truth[:early].round(4).tolist(),
            "kept_unweighted": score(None), "variants": {}}
  print(f"selection >= {minimum} ({source}); leaving model "
        f"{np.round(leaving.coefficients, 3).tolist()}, N = "
        f"{leaving.consecutive_skip_limit}")
  print(f"skip rate, positions 1..{early}, all sessions: "
        f"{np.round(truth[:early], 3)}")
  raw = selection.weighted_skip_rate(kept)[:early]
  print(f"  kept, unweighted: {np.round(raw, 3)}")
  print("  gaps to all (by position max/mean; by position and run max/mean)")
  u = result["kept_unweighted"]
  print(f"  unweighted                {u['by_position']['max']:.4f} "
        f"{u['by_position']['mean']:.4f}  {u['by_position_and_run']['max']:.4f}"
        f" {u['by_position_and_run']['mean']:.4f}")
  for prior in _PRIORS:
    for cap in _CAPS:
      w = selection.selection_weights(kept, leaving, minimum,
                                      cap_quantile=cap, prior_strength=prior)
      s = score(w.row_weights)
      result["variants"][f"prior={prior:g},cap={cap}"] = {**s, **w.summary()}
      print(f"  prior {prior:<5g} cap {str(cap):5s}      "
            f"{s['by_position']['max']:.4f} {s['by_position']['mean']:.4f}  "
            f"{s['by_position_and_run']['max']:.4f} "
            f"{s['by_position_and_run']['mean']:.4f}   largest weight "
            f"{w.row_weights.max():.2f}, ESS share "
            f"{w.summary()['effective_sample_share']:.3f}")
  if args.json_out:
    with open(args.json_out, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1)
  return result


if __name__ == "__main__":
  main()
