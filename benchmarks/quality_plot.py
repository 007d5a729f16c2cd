"""The time-to-quality learning curve as a PNG, beside its references.

Two panels, against wall seconds and against train steps: the agent's mean
world return at each point with its paired 95% interval (relative to
greedy-by-model, shifted onto the greedy line), greedy-by-the-same-model,
the world's greedy and lookahead oracles (all on the curve's episodes), the
bar, and the time to quality when there is one.
"""

import os
from collections.abc import Mapping

import matplotlib
matplotlib.use("Agg")  # Files only: no display on a benchmark machine.
# pylint: disable=wrong-import-position
from matplotlib import pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.quality_bar import GREEDY_MODEL  # noqa: E402
# pylint: enable=wrong-import-position

__all__ = ["plot_curve"]

_STYLES = {GREEDY_MODEL: ("greedy by the learned model", "tab:blue", "-"),
           "greedy_oracle": ("greedy oracle (world truth)", "tab:gray", "--"),
           "lookahead_oracle": ("lookahead oracle (world truth)", "black",
                                ":")}


def plot_curve(path: str, assessed: Mapping, references: Mapping[str,
                                                                  np.ndarray],
               time_to_quality_s: float | None) -> str:
  """Writes the curve's PNG.

  Args:
    path: the PNG's path.
    assessed: `benchmarks.quality_bar.assess_curve`'s result, each point
      with `wall_s` and `train_steps`.
    references: baseline name -> per-episode returns on the curve's
      episodes.
    time_to_quality_s: the time to quality, or None.

  Returns:
    The path written.
  """
  curve = assessed["curve"]
  greedy = float(np.mean(references[GREEDY_MODEL]))
  bar = greedy * (1.0 + assessed["bar"]["required_lift"])
  means = np.array([row["mean_return"] for row in curve])
  # The paired interval of the difference, drawn around the agent's mean.
  low = np.array([greedy + row["ci95"][0] for row in curve])
  high = np.array([greedy + row["ci95"][1] for row in curve])
  figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
  for axis, key, label in ((axes[0], "wall_s", "wall seconds (setup + "
                            "training, without evaluations)"),
                           (axes[1], "train_steps", "train steps")):
    x = np.array([row[key] for row in curve], np.float64)
    axis.fill_between(x, low, high, color="tab:orange", alpha=0.25,
                      label="paired 95% interval vs greedy-by-model")
    axis.plot(x, means, "o-", color="tab:orange", label="AH-DQN")
    for name, (text, color, style) in _STYLES.items():
      if name in references:
        axis.axhline(float(np.mean(references[name])), color=color,
                     linestyle=style, label=text)
    axis.axhline(bar, color="tab:red", linewidth=0.8,
                 label=f"bar (+{assessed['bar']['required_lift']:.2%})")
    if time_to_quality_s is not None and key == "wall_s":
      axis.axvline(time_to_quality_s, color="tab:green",
                   label=f"time to quality {time_to_quality_s:.0f} s")
    axis.set_xlabel(label)
    axis.grid(alpha=0.3)
  axes[0].set_ylabel("mean world return, held-out users")
  axes[1].legend(fontsize=7, loc="lower right")
  figure.suptitle("Time to quality" + (
      f": {time_to_quality_s:.0f} s" if time_to_quality_s is not None else
      ": bar not reached"))
  figure.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  figure.savefig(path, dpi=110)
  plt.close(figure)
  return path
