"""The evaluation report: report.md and report.html with PNG plots.

Both documents are rendered from one list of blocks (headings, paragraphs,
tables, lists, images): `report.md` links the PNGs beside it, `report.html`
is self-contained (the plots inline as base64 PNG), and neither holds an
absolute path (files are named relative to the report's folder). Plots:
return by policy with 95% intervals (simulator and world), skip rate by
playlist position (one panel per policy), offline estimates against the
online truth, and the estimators' relative error against the target's
distance from the logging policy (`playlist_sim.evaluation.report_plots`). A
legend table explains every policy name
(`playlist_sim.evaluation.policy_names`).
"""

import base64
import html
import os
import re

from playlist_sim.evaluation import report_plots
from playlist_sim.policies.softmax import SoftmaxSpec
from playlist_sim.evaluation.policy_names import describe_policy, policy_family
from playlist_sim.common.io_utils import atomic_path

__all__ = ["PLOTS", "report_blocks", "to_html", "to_markdown",
           "write_report"]

PLOTS = ("return_by_policy.png", "skip_rate_by_position.png",
         "offline_vs_online.png", "estimator_error.png")
_MAKERS = dict(zip(PLOTS, (
    report_plots.return_by_policy, report_plots.skip_rate_by_position,
    report_plots.offline_vs_online, report_plots.estimator_error)))


def _cell(m: dict) -> str:
  return f"{m['mean']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def _relative(path: str | None, root_dir: str) -> str:
  """`path` relative to the report's folder (never absolute)."""
  if not path:
    return "-"
  return os.path.relpath(os.path.abspath(path), os.path.abspath(root_dir))


def _summary_table(evaluation: dict) -> tuple:
  policies = evaluation["policies"]
  by_truth = sorted(policies.items(),
                    key=lambda item: -item[1]["world"]["mean_return"])
  # With a reward of 1 per listen the return *is* listens per session: one
  # column then, not two identical ones.
  same = all(m["world"]["return"] == m["world"]["listens_per_session"]
             for _, m in by_truth)
  header = ["policy", "simulator return", "world return"]
  header += [] if same else ["world listens/session"]
  header += ["world skip rate", "world session length",
             "world ended by skips"]
  rows = []
  for name, by_env in by_truth:  # Best first, by the online truth.
    w = by_env["world"]
    ended = w["termination"].get("consecutive_skips")
    row = [name, _cell(by_env["simulator"]["return"]), _cell(w["return"])]
    row += [] if same else [_cell(w["listens_per_session"])]
    row += [_cell(w["skip_rate"]), _cell(w["session_length"]),
            _cell(ended) if ended else "-"]
    rows.append(row)
  return ("table", header, rows), same


def _legend_table(evaluation: dict) -> tuple:
  stochastic = {n: SoftmaxSpec(**s) for n, s in
                evaluation.get("stochastic_specs", {}).items()} or None
  saved = evaluation.get("saved_policies") or {}
  rows = [[name, policy_family(name, stochastic),
           describe_policy(name, stochastic, saved)]
          for name in sorted(evaluation["policies"],
                             key=lambda n: -evaluation["policies"][n][
                                 "world"]["mean_return"])]
  return ("table", ["policy", "family", "what it does"], rows)


def _estimator_blocks(evaluation: dict) -> list:
  estimators = evaluation.get("estimators")
  if not estimators:
    return []
  targets = evaluation["targets"]
  names = sorted(targets, key=lambda n: targets[n]["kl_from_logging"] or 0)
  rows = [[est] + [f"{100 * by[n]['relative_error']:.1f}%"
                   if by[n]["relative_error"] is not None else "-"
                   for n in names] for est, by in estimators.items()]
  notes = []
  for est_name, by_target in estimators.items():
    broken = [(targets[n]["kl_from_logging"] or 0.0, n)
              for n, r in by_target.items()
              if (r["relative_error"] or 0.0) > 0.1]
    notes.append(f"{est_name}: " + (
        "within 10% for every target." if not broken else
        f"first beyond 10% at KL {min(broken)[0]:.2f} ({min(broken)[1]}); "
        f"beyond 10% for {len(broken)} of {len(by_target)} targets."))
  return [
      ("h2", "Logged-data estimators"),
      ("p", f"From a logging run of "
            f"{evaluation['logged_decisions']['sessions']} sessions in the "
            "world. Relative error against the world truth; targets sorted "
            "by KL from the logging policy."),
      ("table", ["estimator"] + [
          f"{n} (KL {targets[n]['kl_from_logging']:.2f})" for n in names],
       rows),
      ("list", notes),
      ("img", "estimator error", "estimator_error.png")]


def _paired_blocks(evaluation: dict) -> list:
  """The agents against greedy-by-model, episode by episode."""
  paired = evaluation.get("paired") or {}
  if not paired:
    return []
  rows = []
  for name, by_env in paired.items():
    for env, p in by_env.items():
      low, high = p["ci95"]
      rows.append([name, env, f"{p['difference']:+.3f} [{low:+.3f}, "
                   f"{high:+.3f}]", f"{100 * p['gain']:+.1f}%",
                   "yes" if low > 0 else "no"])
  return [("h2", "Agents against greedy by the learned model"),
          ("p", "Per-episode return differences on the same episodes "
                "(paired bootstrap 95% interval): what an agent trained in "
                "the learned simulator must win, in the world above all."),
          ("table", ["agent", "environment", "difference", "lift",
                     "interval above zero"], rows)]


def report_blocks(evaluation: dict, root_dir: str) -> list:
  """The report as blocks: ("h1"|"h2"|"p", text), ("table", header, rows),
  ("list", items) and ("img", alt, file name)."""
  summary, merged = _summary_table(evaluation)
  model = _relative(evaluation.get("user_model_path"), root_dir)
  blocks = [
      ("h1", "Policy evaluation"),
      ("p", f"{evaluation['num_episodes']} held-out episodes per policy and "
            "environment, paired (common random numbers); intervals are "
            "bootstrap 95%. `simulator`: the learned user model "
            f"(`{model}`); `world`: the listener world (the online truth)."
            + (" The return is the number of listens per session (reward 1 "
               "per listen)." if merged else "")),
      ("h2", "Summary"), summary,
      ("img", "return by policy", "return_by_policy.png"),
      ("img", "skip rate by position", "skip_rate_by_position.png"),
      *_paired_blocks(evaluation),
      ("h2", "Policies"), _legend_table(evaluation),
      ("h2", "Offline-online agreement"),
      ("p", "Rank agreement between each offline estimate and the world's "
            "truth over the policies it can estimate (the logged-data "
            "estimators only cover the logging policy family)."),
      ("table", ["offline estimate", "Spearman", "Kendall", "policies"],
       [[name, f"{a['spearman']:+.3f}", f"{a['kendall']:+.3f}",
         str(a["num_policies"])]
        for name, a in evaluation.get("agreement", {}).items()]),
      ("img", "offline vs online", "offline_vs_online.png"),
  ]
  return blocks + _estimator_blocks(evaluation)


def to_markdown(blocks: list) -> str:
  """Markdown of `blocks` (images link the PNG files beside it)."""
  out = []
  for kind, *args in blocks:
    if kind in ("h1", "h2"):
      out += [("# " if kind == "h1" else "## ") + args[0], ""]
    elif kind == "p":
      out += [args[0], ""]
    elif kind == "table":
      header, rows = args
      out += ["| " + " | ".join(header) + " |",
              "| " + " | ".join("---" for _ in header) + " |"]
      out += ["| " + " | ".join(row) + " |" for row in rows] + [""]
    elif kind == "list":
      out += [f"- {item}" for item in args[0]] + [""]
    elif kind == "img":
      out += [f"![{args[0]}]({args[1]})", ""]
  return "\n".join(out)


def _inline(text: str) -> str:
  """Escaped HTML with `code` spans."""
  return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}table{border-collapse:collapse;
margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}
tr:nth-child(even) td{background:#fafafa}img{max-width:100%;margin:1em 0}
code{background:#f3f3f3;padding:0 3px}"""


def to_html(blocks: list, root_dir: str) -> str:
  """One self-contained HTML page of `blocks` (PNGs inline, base64)."""
  out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         "<title>Policy evaluation</title>", f"<style>{_CSS}</style>",
         "</head><body>"]
  for kind, *args in blocks:
    if kind in ("h1", "h2", "p"):
      out.append(f"<{kind}>{_inline(args[0])}</{kind}>")
    elif kind == "table":
      header, rows = args
      out.append("<table><thead><tr>" + "".join(
          f"<th>{_inline(h)}</th>" for h in header) + "</tr></thead><tbody>")
      out += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) +
              "</tr>" for row in rows]
      out.append("</tbody></table>")
    elif kind == "list":
      out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in args[0])
                 + "</ul>")
    elif kind == "img":
      with open(os.path.join(root_dir, args[1]), "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
      out.append(f'<img alt="{html.escape(args[0])}" '
                 f'src="data:image/png;base64,{data}">')
  out.append("</body></html>")
  return "\n".join(out) + "\n"


def _write_text(path: str, text: str) -> None:
  with atomic_path(path) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(text)


def write_report(evaluation: dict, root_dir: str) -> dict:
  """Writes report.md, report.html and the PNG plots into root_dir.

  Args:
    evaluation: the `evaluate_policies` result.
    root_dir: output folder.

  Returns:
    {"report": path of report.md, "html": path of report.html,
     "plots": [paths]}.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  plots = []
  for name in PLOTS:
    path = os.path.join(root_dir, name)
    _MAKERS[name](plt, evaluation, path)
    plots.append(path)
  blocks = report_blocks(evaluation, root_dir)
  report = os.path.join(root_dir, "report.md")
  _write_text(report, to_markdown(blocks))
  page = os.path.join(root_dir, "report.html")
  _write_text(page, to_html(blocks, root_dir))
  return {"report": report, "html": page, "plots": plots}
