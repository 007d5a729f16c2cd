"""The evaluation report's plots (matplotlib, Agg), drawn for many policies.

Every plot stays readable with a dozen or more policies: policies are rows
(labelled on the axis) or small multiples (one titled panel each), never a
colour each; the few colours used (Okabe-Ito, distinguishable with colour
blindness) mean the same thing in every plot, and legends sit outside the
data.
"""

import math

import numpy as np

from playlist_sim.common.io_utils import atomic_path

__all__ = ["COLORS", "estimator_error", "offline_vs_online",
           "return_by_policy", "skip_rate_by_position"]

#: Okabe-Ito colours: one per environment, then one per estimator.
COLORS = {"simulator": "#E69F00", "world": "#0072B2"}
_ESTIMATOR_STYLE = {  # colour, marker (Paul Tol's where Okabe-Ito ran out)
    "ips": ("#56B4E9", "s"), "snips": ("#332288", "D"),
    "dm": ("#999933", "^"), "dr": ("#882255", "v"),
    "pdis": ("#009E73", "P"), "wpdis": ("#CC79A7", "X"),
    "sequential_dr": ("#D55E00", "*"),
    "clipped_sequential_dr": ("#44AA99", "h"),
    "targeted_simulator": ("#117733", "<"),
    "anchored_simulator": ("#AA4499", ">"),
}
# Positions reached by fewer sessions are noise: left out of skip curves.
_MIN_TRACKS = 30


def _save(fig, path: str) -> None:
  with atomic_path(path) as tmp:
    fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")


def _style(name: str, index: int) -> tuple[str, str]:
  fallback = ("#999999", "osD^vP*X"[index % 8])
  return _ESTIMATOR_STYLE.get(name, fallback)


def _by_truth(evaluation: dict) -> list[str]:
  """Policy names, best first by the world's mean return."""
  return sorted(evaluation["policies"], key=lambda n: -evaluation[
      "policies"][n]["world"]["mean_return"])


def return_by_policy(plt, evaluation: dict, path: str) -> None:
  """Mean return with 95% intervals, simulator and world, one row each."""
  names = _by_truth(evaluation)
  fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(names) + 1.6))
  y = np.arange(len(names))
  for offset, env_name in ((-0.17, "simulator"), (0.17, "world")):
    m = [evaluation["policies"][n][env_name] for n in names]
    mean = np.array([x["mean_return"] for x in m])
    err = np.array([[x["mean_return"] - x["ci_low"] for x in m],
                    [x["ci_high"] - x["mean_return"] for x in m]])
    ax.errorbar(mean, y + offset, xerr=err, fmt="o", capsize=3,
                color=COLORS[env_name], label=env_name)
  ax.set_yticks(y, names)
  ax.invert_yaxis()
  ax.set_xlabel("mean return (listens per session), 95% bootstrap interval")
  ax.set_title("Return by policy, best first (world = online truth)",
               pad=22)
  ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2,
            frameon=False)
  ax.grid(axis="x", alpha=0.3)
  _save(fig, path)
  plt.close(fig)


def _skip_curve(m: dict) -> np.ndarray:
  rates = np.array([np.nan if r is None else r
                    for r in m["skip_rate_by_position"]], float)
  rates[np.asarray(m["tracks_by_position"]) < _MIN_TRACKS] = np.nan
  return rates


def skip_rate_by_position(plt, evaluation: dict, path: str) -> None:
  """Small multiples: one panel per policy, simulator against world."""
  names = _by_truth(evaluation)
  cols = min(5, len(names))
  rows = math.ceil(len(names) / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.1 * rows + 0.9),
                           sharex=True, sharey=True, squeeze=False)
  curves = {n: {e: _skip_curve(evaluation["policies"][n][e])
                for e in ("simulator", "world")} for n in names}
  for i, ax in enumerate(axes.flat):
    if i >= len(names):
      ax.axis("off")
      continue
    name = names[i]
    for other in names:  # Context: every policy's world curve, faint.
      w = curves[other]["world"]
      ax.plot(np.arange(1, len(w) + 1), w, color="#DDDDDD", lw=0.8,
              zorder=1)
    for env_name, ls in (("world", "-"), ("simulator", "--")):
      c = curves[name][env_name]
      ax.plot(np.arange(1, len(c) + 1), c, color=COLORS[env_name], ls=ls,
              lw=1.8, zorder=2, label=env_name)
    ax.set_title(name, fontsize=10)
    ax.grid(alpha=0.3)
    ax.set_ylim(0, 1)
  for ax in axes[-1]:
    ax.set_xlabel("playlist position")
  for ax in axes[:, 0]:
    ax.set_ylabel("skip rate")
  handles, labels = axes.flat[0].get_legend_handles_labels()
  handles.append(plt.Line2D([], [], color="#DDDDDD", lw=0.8))
  labels.append("other policies (world)")
  top = 1 - 0.9 / fig.get_figheight()
  fig.subplots_adjust(top=top, hspace=0.35, wspace=0.08, left=0.06,
                      right=0.99, bottom=0.5 / fig.get_figheight())
  fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False,
             bbox_to_anchor=(0.5, top + 0.02))
  fig.suptitle(f"Skip rate by playlist position (positions with >= "
               f"{_MIN_TRACKS} tracks), best policy first", y=0.995)
  _save(fig, path)
  plt.close(fig)


def _session_panel(ax, evaluation: dict) -> list[str]:
  """Rows of policies: truth, simulator and session estimators."""
  names = _by_truth(evaluation)
  policies = evaluation["policies"]
  y = np.arange(len(names))
  truth = np.array([policies[n]["world"]["mean_return"] for n in names])
  sim = np.array([policies[n]["simulator"]["mean_return"] for n in names])
  span = max(truth.max(), sim.max()) - min(truth.min(), sim.min())
  low = min(truth.min(), sim.min()) - 0.15 * span
  high = max(truth.max(), sim.max()) + 0.15 * span
  ax.hlines(y, low, high, color="#EEEEEE", lw=0.8, zorder=0)
  ax.scatter(truth, y, marker="|", s=260, color="black", lw=2,
             label="online truth (world)", zorder=3)
  ax.scatter(sim, y, color=COLORS["simulator"], s=30,
             label="learned simulator", zorder=4)
  clipped_notes = []
  for i, (est_name, by_target) in enumerate(
      evaluation.get("estimators", {}).items()):
    rows = [(names.index(n), r["estimate"]) for n, r in by_target.items()
            if n in names and r["quantity"] == "session return"
            and r["estimate"] is not None]
    if not rows:
      continue
    color, marker = _style(est_name, i)
    idx, est = (np.array(v) for v in zip(*rows))
    out = (est > high) | (est < low)
    if out.any():
      clipped_notes.append(f"{est_name}: {out.sum()} off the axis")
    ax.scatter(np.clip(est, low, high), idx + 0.22, marker=marker,
               color=color, s=28, alpha=0.9, label=est_name, zorder=2)
  ax.set_yticks(y, names)
  ax.set_ylim(len(names) - 0.4, -0.6)
  ax.set_xlim(low, high)
  ax.set_xlabel("session return (listens per session)")
  ax.set_title("session return: truth vs offline estimates")
  return clipped_notes


def offline_vs_online(plt, evaluation: dict, path: str) -> None:
  """Left: per policy, the truth against each offline estimate; right:
  the bandit estimators' next-track listen rate against its truth."""
  names = _by_truth(evaluation)
  fig, (left, right) = plt.subplots(
      1, 2, figsize=(12, 0.33 * len(names) + 2.6),
      gridspec_kw={"width_ratios": [1.3, 1]})
  notes = _session_panel(left, evaluation)
  for i, (est_name, by_target) in enumerate(
      evaluation.get("estimators", {}).items()):
    rows = [r for r in by_target.values() if r["truth"] is not None
            and r["quantity"] != "session return"]
    if rows:
      color, marker = _style(est_name, i)
      right.scatter([r["truth"] for r in rows], [r["estimate"] for r in rows],
                    marker=marker, color=color, s=30, alpha=0.85,
                    label=est_name)
  if right.collections:
    lims = np.array(right.get_xlim() + right.get_ylim())
    right.plot([lims.min(), lims.max()], [lims.min(), lims.max()], "k--",
               lw=0.8, label="y = x (perfect)")
    right.set_xlabel("online truth (listener world)")
    right.set_ylabel("offline estimate")
    right.set_title("next-track listen rate (bandit estimators)")
    right.grid(alpha=0.3)
  else:
    right.axis("off")
  handles, labels = [], []
  for ax in (left, right):
    for h, lab in zip(*ax.get_legend_handles_labels()):
      if lab not in labels:
        handles.append(h)
        labels.append(lab)
  fig.legend(handles, labels, loc="upper center", ncol=5, frameon=False,
             bbox_to_anchor=(0.5, 0.0))
  if notes:
    fig.text(0.01, -0.08, "Clipped to the axis: " + "; ".join(notes),
             fontsize=8)
  fig.tight_layout()
  _save(fig, path)
  plt.close(fig)


def estimator_error(plt, evaluation: dict, path: str) -> None:
  """Relative error of each estimator against the target's KL."""
  fig, ax = plt.subplots(figsize=(8, 4.5))
  targets = evaluation.get("targets", {})
  for i, (est_name, by_target) in enumerate(
      evaluation.get("estimators", {}).items()):
    pts = sorted((targets[n]["kl_from_logging"],
                  max(r["relative_error"], 1e-4))
                 for n, r in by_target.items()
                 if r["relative_error"] is not None and n in targets)
    if pts:
      color, marker = _style(est_name, i)
      ls = "-" if est_name in ("ips", "snips", "dm", "dr") else ":"
      ax.plot(*zip(*pts), marker=marker, color=color, ls=ls, label=est_name)
  ax.axhline(0.1, color="k", ls="--", lw=0.8, label="10% error")
  ax.set_yscale("log")
  ax.set_xlabel("KL(target || logging) per decision")
  ax.set_ylabel("relative error vs world truth (floor 1e-4)")
  ax.set_title("Logged-data estimators: relative error by the target's "
               "distance from the\nlogging policy (solid: bandit "
               "estimators; dotted: session estimators)", fontsize=10)
  ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
            frameon=False)
  ax.grid(alpha=0.3)
  _save(fig, path)
  plt.close(fig)
