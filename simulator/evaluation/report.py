"""The evaluation report: report.md with PNG plots (matplotlib, Agg).

Plots: return by policy with 95% intervals (simulator and world side by
side), skip rate by playlist position, offline estimates against the online
truth (the simulator and every logged-data estimator), and the estimators'
relative error against the target's distance from the logging policy.
"""

import os

import numpy as np

from simulator.io_utils import atomic_path

__all__ = ["PLOTS", "write_report"]

PLOTS = ("return_by_policy.png", "skip_rate_by_position.png",
         "offline_vs_online.png", "estimator_error.png")
_COLORS = {"simulator": "tab:orange", "world": "tab:blue"}


def _save(fig, path: str) -> None:
  fig.tight_layout()
  with atomic_path(path) as tmp:
    fig.savefig(tmp, format="png", dpi=90)


def _return_by_policy(plt, evaluation: dict, path: str) -> None:
  names = sorted(evaluation["policies"], key=lambda n: -evaluation[
      "policies"][n]["world"]["mean_return"])
  fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.5))
  y = np.arange(len(names))
  for offset, env_name in ((-0.17, "simulator"), (0.17, "world")):
    m = [evaluation["policies"][n][env_name] for n in names]
    mean = np.array([x["mean_return"] for x in m])
    err = np.array([[x["mean_return"] - x["ci_low"] for x in m],
                    [x["ci_high"] - x["mean_return"] for x in m]])
    ax.errorbar(mean, y + offset, xerr=err, fmt="o", capsize=3,
                color=_COLORS[env_name], label=env_name)
  ax.set_yticks(y, names)
  ax.invert_yaxis()
  ax.set_xlabel("mean return (listens per session), 95% bootstrap interval")
  ax.legend(loc="lower right")
  ax.grid(axis="x", alpha=0.3)
  _save(fig, path)
  plt.close(fig)


def _skip_by_position(plt, evaluation: dict, path: str) -> None:
  fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
  count = len(evaluation["policies"])
  for ax, env_name in zip(axes, ("simulator", "world")):
    ax.set_prop_cycle(color=plt.cm.tab20(np.linspace(0, 1, max(count, 2))))
    for name, by_env in evaluation["policies"].items():
      m = by_env[env_name]
      rates = np.array([np.nan if r is None else r
                        for r in m["skip_rate_by_position"]])
      # Positions few sessions reach are noise: leave them out.
      rates[np.asarray(m["tracks_by_position"]) < 30] = np.nan
      ax.plot(np.arange(1, len(rates) + 1), rates, label=name, lw=1.2)
    ax.set_title(env_name)
    ax.set_xlabel("playlist position")
    ax.grid(alpha=0.3)
  axes[0].set_ylabel("skip rate (positions with >= 30 tracks)")
  axes[1].legend(fontsize=7, ncol=2)
  _save(fig, path)
  plt.close(fig)


def _offline_vs_online(plt, evaluation: dict, path: str) -> None:
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
  ax = axes[0]
  policies = evaluation["policies"]
  truth = [m["world"]["mean_return"] for m in policies.values()]
  ax.scatter(truth, [m["simulator"]["mean_return"] for m in policies.values()],
             label="learned simulator", color=_COLORS["simulator"])
  for n, m in policies.items():
    ax.annotate(n, (m["world"]["mean_return"], m["simulator"]["mean_return"]),
                fontsize=6, alpha=0.7)
  estimators = evaluation.get("estimators", {})
  markers = iter("sD^vP*X")
  panels = {"session return": axes[0], "listen rate of the next track":
            axes[1]}
  # Session estimates far off the policies' range are drawn at its edge.
  values = truth + [m["simulator"]["mean_return"] for m in policies.values()]
  span = max(values) - min(values)
  ceiling = max(values) + 0.3 * span
  for est_name, by_target in estimators.items():
    rows = [r for r in by_target.values() if r["truth"] is not None]
    if not rows:
      continue
    estimates = np.array([r["estimate"] for r in rows])
    session = rows[0]["quantity"] == "session return"
    clipped = session & (estimates > ceiling)
    label = est_name + (f" ({clipped.sum()} above the plot, clipped)"
                        if clipped.any() else "")
    panels[rows[0]["quantity"]].scatter(
        [r["truth"] for r in rows],
        np.minimum(estimates, ceiling) if session else estimates,
        label=label, marker=next(markers, "o"), alpha=0.8)
  for ax, title in ((axes[0], "session return (policies)"),
                    (axes[1], "next-track listen rate (bandit estimators)")):
    lims = np.array(ax.get_xlim() + ax.get_ylim())
    low, high = lims.min(), lims.max()
    ax.plot([low, high], [low, high], "k--", lw=0.8, label="y = x")
    ax.set_xlabel("online truth (listener world)")
    ax.set_ylabel("offline estimate")
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
  del truth
  _save(fig, path)
  plt.close(fig)


def _estimator_error(plt, evaluation: dict, path: str) -> None:
  fig, ax = plt.subplots(figsize=(7, 4.5))
  targets = evaluation.get("targets", {})
  for est_name, by_target in evaluation.get("estimators", {}).items():
    pts = sorted((targets[n]["kl_from_logging"],
                  max(r["relative_error"], 1e-4))
                 for n, r in by_target.items()
                 if r["relative_error"] is not None and n in targets)
    if pts:
      ax.plot(*zip(*pts), marker="o", label=est_name)
  ax.axhline(0.1, color="k", ls=":", lw=0.8, label="10% error")
  ax.set_yscale("log")
  ax.set_xlabel("KL(target || logging) per decision")
  ax.set_ylabel("relative error vs world truth (floor 1e-4)")
  ax.set_title("bandit (ips, snips, dm, dr) and session (pdis, wpdis, "
               "sequential_dr) estimators", fontsize=9)
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  _save(fig, path)
  plt.close(fig)


def _cell(m: dict) -> str:
  return f"{m['mean']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def _markdown(evaluation: dict) -> str:
  out = ["# Policy evaluation", "",
         f"{evaluation['num_episodes']} held-out episodes per policy and "
         "environment, paired (common random numbers); intervals are "
         "bootstrap 95%. `simulator`: the learned user model "
         f"(`{evaluation['user_model_path']}`); `world`: the listener world "
         "(the online truth).", "",
         "## Summary", "",
         "| policy | simulator return | world return | world listens/session "
         "| world skip rate | world session length | world ended by skips |",
         "| --- | --- | --- | --- | --- | --- | --- |"]
  by_truth = sorted(evaluation["policies"].items(),
                    key=lambda item: -item[1]["world"]["mean_return"])
  for name, by_env in by_truth:  # Best first, by the online truth.
    w = by_env["world"]
    ended = w["termination"].get("consecutive_skips")
    out.append(f"| {name} | {_cell(by_env['simulator']['return'])} | "
               f"{_cell(w['return'])} | {_cell(w['listens_per_session'])} | "
               f"{_cell(w['skip_rate'])} | {_cell(w['session_length'])} | "
               f"{_cell(ended) if ended else '-'} |")
  out += ["", "![return by policy](return_by_policy.png)", "",
          "![skip rate by position](skip_rate_by_position.png)", "",
          "## Offline-online agreement", "",
          "| offline estimate | Spearman | Kendall | policies |",
          "| --- | --- | --- | --- |"]
  for est_name, a in evaluation.get("agreement", {}).items():
    out.append(f"| {est_name} | {a['spearman']:+.3f} | {a['kendall']:+.3f} |"
               f" {a['num_policies']} |")
  out += ["", "![offline vs online](offline_vs_online.png)", ""]
  estimators = evaluation.get("estimators")
  if estimators:
    targets = evaluation["targets"]
    names = sorted(targets, key=lambda n: targets[n]["kl_from_logging"] or 0)
    out += ["## Logged-data estimators", "",
            "From a logging run of "
            f"{evaluation['logged_decisions']['sessions']} sessions in the "
            "world. Relative error against the world truth; targets by KL "
            "from the logging policy.", "",
            "| estimator | " + " | ".join(
                f"{n} (KL {targets[n]['kl_from_logging']:.2f})"
                for n in names) + " |",
            "| --- |" + " --- |" * len(names)]
    for est_name, by_target in estimators.items():
      out.append(f"| {est_name} | " + " | ".join(
          f"{100 * by_target[n]['relative_error']:.1f}%"
          if by_target[n]["relative_error"] is not None else "-"
          for n in names) + " |")
    out.append("")
    for est_name, by_target in estimators.items():
      broken = [(targets[n]["kl_from_logging"] or 0.0, n)
                for n, r in by_target.items()
                if (r["relative_error"] or 0.0) > 0.1]
      out.append(f"- {est_name}: " + (
          "within 10% for every target." if not broken else
          f"first beyond 10% at KL {min(broken)[0]:.2f} ({min(broken)[1]}); "
          f"beyond 10% for {len(broken)} of {len(by_target)} targets."))
    out += ["", "![estimator error](estimator_error.png)", ""]
  return "\n".join(out) + "\n"


def write_report(evaluation: dict, root_dir: str) -> dict:
  """Writes report.md and the PNG plots into root_dir.

  Args:
    evaluation: the `evaluate_policies` result.
    root_dir: output folder.

  Returns:
    {"report": path of report.md, "plots": [paths]}.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  makers = (_return_by_policy, _skip_by_position, _offline_vs_online,
            _estimator_error)
  plots = []
  for name, make in zip(PLOTS, makers):
    path = os.path.join(root_dir, name)
    make(plt, evaluation, path)
    plots.append(path)
  report = os.path.join(root_dir, "report.md")
  with atomic_path(report) as tmp:
    with open(tmp, "w") as f:
      f.write(_markdown(evaluation))
  return {"report": report, "plots": plots}
