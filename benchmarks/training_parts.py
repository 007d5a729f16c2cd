"""The benchmark's training parts: time to quality and collection scaling.

* `time_to_quality`: `benchmarks.time_to_quality` (the agent config trained
  from a built world's files, its learning curve judged against
  greedy-by-model and the world's oracles on the same episodes);
* `collect_workers`: environment row-steps per second of `train_eval`'s
  collection in process (W = 0) and on W local Ray workers
  (`benchmarks.collect_workers`), in the listener world.

Both read their flags (`--ttq_*`, `--collect_workers*`, defined by
`playlist_sim.commands.benchmark`) through absl's `FLAGS`.
"""

import os
from typing import Any

from absl import app
from absl import flags
import gin

from benchmarks import collect_workers as collection
from benchmarks.time_to_quality import run_time_to_quality
from playlist_sim.common.runs import isolated_gin_config, parse_gin

__all__ = ["run_collect_workers", "run_ttq", "table_collect_workers",
           "table_ttq"]

FLAGS = flags.FLAGS
_WORLD_CONFIG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
    "world.gin")


def run_ttq(settings: Any) -> dict:
  """Time to quality of the agent config (see `run_time_to_quality`)."""
  del settings  # Its own seed and sizes: the --ttq_* flags.
  if not 0.0 < FLAGS.ttq_gain_fraction <= 1.0:
    raise app.UsageError(f"--ttq_gain_fraction must be in (0, 1], got "
                         f"{FLAGS.ttq_gain_fraction}")
  return run_time_to_quality(
      FLAGS.root_dir, FLAGS.ttq_world_dir, FLAGS.ttq_agent_config,
      seed=FLAGS.ttq_seed, eval_interval=FLAGS.ttq_eval_interval,
      eval_episodes=FLAGS.ttq_eval_episodes,
      gain_fraction=FLAGS.ttq_gain_fraction, max_lift=FLAGS.ttq_max_lift,
      collect_workers=FLAGS.ttq_collect_workers,
      bindings=tuple(FLAGS.ttq_bindings or ()))


def table_ttq(results: dict) -> str:
  """The curve, the bar and the time to quality as a table."""
  ttq = results["time_to_quality"]
  lines = [f"time to quality of {ttq['agent_config']} (seed {ttq['seed']}, "
           f"world {ttq['world_dir']}, {ttq['eval_episodes']} held-out "
           "episodes per point, common random numbers)",
           f"bar: {ttq['bar']['rule']}",
           f"{'steps':>6}  {'wall s':>7}  {'mean return':>11}  "
           f"{'lift':>7}  {'paired 95% CI of difference':>28}  passed"]
  for row in ttq["curve"]:
    lines.append(f"{row['train_steps']:>6}  {row['wall_s']:>7.1f}  "
                 f"{row['mean_return']:>11.3f}  {row['lift']:>+7.2%}  "
                 f"[{row['ci95'][0]:>+9.4f}, {row['ci95'][1]:>+9.4f}]"
                 f"{'':>8}  {row['passed']}")
  lines.append("references: " + ", ".join(
      f"{name} {mean:.3f}" for name, mean in ttq["references"].items()))
  final = ttq["final"]
  if final is not None:
    lines.append(f"final comparison ({final['episodes']} episodes): lift "
                 f"{final['lift']:+.2%}, interval [{final['ci95'][0]:+.4f}, "
                 f"{final['ci95'][1]:+.4f}], passed {final['passed']}")
  seconds = results["time_to_quality_s"]
  lines.append(f"time_to_quality_s: {seconds:.1f}" if seconds is not None
               else f"time_to_quality_s: null ({ttq['reason']})")
  lines.append(f"load average before / after: "
               f"{ttq['load_average_before'][0]:.2f} / "
               f"{ttq['load_average_after'][0]:.2f}; plot {ttq['plot']}")
  return "\n".join(lines)


def run_collect_workers(settings: Any) -> dict:
  """Collection row-steps/s for each W of --collect_workers."""
  del settings
  try:
    workers = [int(w) for w in FLAGS.collect_workers]
  except ValueError as e:
    raise app.UsageError(f"--collect_workers must be integers, got "
                         f"{FLAGS.collect_workers}") from e
  if not workers or min(workers) < 0:
    raise app.UsageError(f"--collect_workers must be >= 0, got {workers}")
  batch, steps = FLAGS.collect_workers_batch_size, FLAGS.collect_workers_steps
  rates = {}
  load_before = os.getloadavg()
  for count in workers:
    with isolated_gin_config():  # The listener world, whatever was parsed.
      gin.clear_config()
      parse_gin([_WORLD_CONFIG], [])
      rates[str(count)] = (collection.in_process(batch, steps) if count == 0
                           else collection.on_workers(count, batch, steps))
  base = rates.get("0")
  return {"collect_workers_row_steps_per_s": rates,
          "collect_workers_measurements": {
              "batch_size": batch, "steps_per_row": steps,
              "ratio_to_in_process": ({w: r / base for w, r in rates.items()}
                                      if base else None),
              "load_average_before": load_before,
              "load_average_after": os.getloadavg(),
              "cpu_count": os.cpu_count()}}


def table_collect_workers(results: dict) -> str:
  """Row-steps/s per W, with the ratio to the in-process path."""
  rates = results["collect_workers_row_steps_per_s"]
  m = results["collect_workers_measurements"]
  lines = [f"collection, B={m['batch_size']} listeners per environment, "
           f"{m['steps_per_row']} steps per row (W = 0: in process; W > 0: "
           f"Ray workers), {m['cpu_count']} CPUs, load average "
           f"{m['load_average_before'][0]:.2f} -> "
           f"{m['load_average_after'][0]:.2f}",
           f"{'W':>3}  {'row-steps/s':>12}  {'x W=0':>6}"]
  for count, rate in rates.items():
    ratio = (m["ratio_to_in_process"] or {}).get(count)
    lines.append(f"{count:>3}  {rate:>12,.0f}  "
                 + (f"{ratio:>5.2f}x" if ratio else f"{'':>6}"))
  return "\n".join(lines)
