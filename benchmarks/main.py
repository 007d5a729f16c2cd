"""The benchmark's parts and their run (see `playlist-sim benchmark --help`).

Run from a clone: `python scripts/benchmark.py` or `playlist-sim benchmark`
(whose module, `playlist_sim.commands.benchmark`, defines the flags read
here through `FLAGS`).
"""

from user_models import _keras2  # noqa: F401  (must run before TensorFlow)

import dataclasses
import os
import json
import logging
import subprocess
import sys
import time
from typing import Callable, Sequence

from absl import app
from absl import flags
import numpy as np

from benchmarks import env as env_benchmark
from benchmarks import parts as benchmarks
from benchmarks import read_logs as log_read_benchmark
from benchmarks import serving as serving_benchmark
from benchmarks import training_parts
from playlist_sim.common import runs
import simulator
import user_models  # noqa: F401  (registers its gin configurables)
from user_models.base import AbstractUserModel
from user_models.litert_user_model import LiteRTUserModel

__all__ = ["OPT_IN_PARTS", "PARTS", "Part", "Settings", "run_benchmark"]

_log = logging.getLogger(__name__)

# The clone's root: the user-model backends run there as
# `python -m benchmarks.serving`.
_REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The issue's target: batched / list speed-up at this batch size.
_TARGET_BATCH_SIZE, _TARGET_RATIO = 256, 10.0

_USER_MODEL_BATCHES = (1, 32, 256, 4096)
#: Targets of the issue (#8).
_TARGET_STEPS_PER_S = 50_000
_TARGET_DECISION_K, _TARGET_DECISION_MS = 1000, 1.0
_TARGET_REPLAY_BYTES = 4096
_TARGET_RAY_SPEEDUP = 1.6
#: Targets of issue #14: log_mini's size read in seconds, a daily file's
#: peak memory in MiB.
_TARGET_READ_SECONDS, _TARGET_READ_PEAK_MIB = 10.0, 2048

FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class Settings:
  """What every part is given.

  Attributes:
    seed: seed of environments and actions.
    seconds: wall time of each measurement.
    warmup_seconds: wall time stepped before each measurement.
    batch_sizes: batch sizes of the env part.
  """
  seed: int
  seconds: float
  warmup_seconds: float
  batch_sizes: tuple[int, ...]
  pool_sizes: tuple[int, ...] = (50, 200, 1000, 2000)


@dataclasses.dataclass(frozen=True)
class Part:
  """A benchmark part.

  Attributes:
    run: measures; returns the entries it adds to benchmark.json.
    table: formats those entries as a readable table.
  """
  run: Callable[[Settings], dict]
  table: Callable[[dict], str]


# -- part: env ----------------------------------------------------------------


def run_env(settings: Settings) -> dict:
  """Steps/s of the batched environment and of the list baseline.

  Args:
    settings: seed, wall times and batch sizes.

  Returns:
    {"env_steps_per_s": {B: {"batched", "list", "ratio"}},
     "env_measurements": {B: raw counts and build times},
     "env_with_ahdqn_steps_per_s": {"256": steps/s}}, B as a string.
  """
  builder = simulator.EnvironmentBuilder()
  builder.user_model = _env_user_model(builder)
  name = type(builder.user_model).__name__
  _log.info("env user model: %s", name)
  if env_benchmark.is_stateful(builder.user_model):
    _log.warning(
        "%s keeps per-row session state, but the list baseline shares it "
        "between B environments that all use row 0: its responses are not "
        "those of B independent listeners (the timing is still indicative).",
        name)
  measured = env_benchmark.env_steps_per_s(
      builder, settings.batch_sizes, settings.seconds,
      settings.warmup_seconds, seed=settings.seed,
      acting_batch_sizes=(_TARGET_BATCH_SIZE,))
  raw = dict(measured["raw"], user_model=FLAGS.user_model,
             user_model_class=name)
  return {"env_steps_per_s": measured["rates"], "env_measurements": raw,
          "env_with_ahdqn_steps_per_s": measured["acting"]}


def _env_user_model(builder) -> AbstractUserModel:
  """The user model in the env part's loop (see --user_model)."""
  choice = FLAGS.user_model
  sampler = builder.episode_sampler
  if choice == "gin":
    return builder.user_model
  if choice == "int8":
    return benchmarks.int8_cwm_user_model(
        sampler.catalog, sampler.user_feature_dim,
        model_dir=os.path.join(FLAGS.root_dir, "int8_cwm"))
  if not choice.endswith(".tflite") or not os.path.isfile(choice):
    raise app.UsageError(f"--user_model must be 'int8', 'gin' or an existing "
                         f".tflite file, got {choice!r}")
  return LiteRTUserModel(choice, sampler.catalog,
                         user_feature_dim=sampler.user_feature_dim)


def table_env(results: dict) -> str:
  """The env part's results as a table."""
  rates = results["env_steps_per_s"]
  model = results["env_measurements"]["user_model_class"]
  lines = [
      "env steps/s: batched PlaylistEnvironment vs BatchedPyEnvironment of B "
      f"copies (multithreading=False), user model {model}",
      f"{'B':>6}  {'batched steps/s':>16}  {'list steps/s':>13}  {'ratio':>7}",
  ]
  for b, row in sorted(rates.items(), key=lambda kv: int(kv[0])):
    lines.append(f"{int(b):>6}  {row['batched']:>16,.0f}  {row['list']:>13,.0f}"
                 f"  {row['ratio']:>6.1f}x")
  target = rates.get(str(_TARGET_BATCH_SIZE))
  if target is not None:
    verdict = "met" if target["ratio"] >= _TARGET_RATIO else "NOT met"
    lines.append(f"target >= {_TARGET_RATIO:.0f}x at B={_TARGET_BATCH_SIZE}: "
                 f"{verdict} ({target['ratio']:.1f}x)")
    verdict = "met" if target["batched"] >= _TARGET_STEPS_PER_S else "NOT met"
    lines.append(f"target >= {_TARGET_STEPS_PER_S:,} steps/s at "
                 f"B={_TARGET_BATCH_SIZE}: {verdict}")
  for b, rate in results.get("env_with_ahdqn_steps_per_s", {}).items():
    lines.append(f"B={b} with AH-DQN (greedy, XLA) choosing the actions: "
                 f"{rate:,.0f} steps/s")
  return "\n".join(lines)


def run_user_model(settings: Settings) -> dict:
  """Rows/s per user-model backend, each backend in its own process."""
  results, gops = {}, {}
  for backend in serving_benchmark.BACKENDS:
    cmd = [sys.executable, "-m", "benchmarks.serving",
           "--backend", backend, "--seconds", str(settings.seconds),
           "--batches", ",".join(str(b) for b in _USER_MODEL_BATCHES)]
    if FLAGS.user_model_path:
      cmd += ["--model_path", FLAGS.user_model_path]
    _log.info("user_model %s ...", backend)
    out = subprocess.run(cmd, capture_output=True, text=True, check=False,
                         cwd=_REPO_DIR)
    if out.returncode != 0:
      raise RuntimeError(f"backend {backend} failed: {out.stderr[-2000:]}")
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    results[backend] = measured["rows_per_s"]
    gops[backend] = measured["gops"]
  keras = results["keras"]
  ratios = {b: {k: v / keras[k] for k, v in r.items()}
            for b, r in results.items()}
  return {"user_model_rows_per_s": results, "user_model_gops": gops,
          "user_model_ratio_to_keras": ratios}


def table_user_model(results: dict) -> str:
  rows = results["user_model_rows_per_s"]
  ratios = results["user_model_ratio_to_keras"]
  batches = list(next(iter(rows.values())))
  lines = ["user model rows/s (x Keras model(x)), one process per backend",
           f"{'backend':<12}" + "".join(f"{'B=' + b:>22}" for b in batches)]
  for backend, by_batch in rows.items():
    lines.append(f"{backend:<12}" + "".join(
        f"{by_batch[b]:>14,.0f} ({ratios[backend][b]:>4.1f}x)"
        for b in batches))
  wrapper = rows["int8"]["256"] / rows["int8_bare"]["256"] \
      if "256" in rows["int8"] else float("nan")
  lines.append(f"LiteRTRunner / bare interpreter at B=256: {wrapper:.2f}")
  return "\n".join(lines)


# -- parts: ahdqn, train, replay, ray ------------------------------------------


def _catalog_features() -> np.ndarray:
  return simulator.EnvironmentBuilder().episode_sampler.catalog.features


def run_ahdqn(settings: Settings) -> dict:
  """Greedy AH-DQN decision latency at batch 1 per pool size."""
  measured = benchmarks.ahdqn_decision_ms(
      _catalog_features(), settings.pool_sizes, calls=FLAGS.decision_calls,
      seed=settings.seed)
  return {"ahdqn_decision_ms": measured["median_ms"],
          "ahdqn_measurements": measured}


def table_ahdqn(results: dict) -> str:
  median = results["ahdqn_decision_ms"]
  p90 = results["ahdqn_measurements"]["p90_ms"]
  plain = results["ahdqn_measurements"]["no_xla_median_ms"]
  lines = ["AH-DQN greedy decision at batch 1 (XLA tf.function)",
           f"{'K':>6}  {'median ms':>10}  {'p90 ms':>8}  {'us/candidate':>13}"
           f"  {'no XLA ms':>10}"]
  for k, ms in median.items():
    lines.append(f"{int(k):>6}  {ms:>10.3f}  {p90[k]:>8.3f}  "
                 f"{1e3 * ms / int(k):>13.3f}  {plain.get(k, np.nan):>10.3f}")
  ks = sorted(int(k) for k in median)
  if len(ks) > 1:
    growth = median[str(ks[-1])] / median[str(ks[0])]
    lines.append(f"K {ks[0]} -> {ks[-1]}: time x{growth:.2f} (linear would "
                 f"be x{ks[-1] / ks[0]:.0f}): "
                 f"{'sub-linear' if growth <= ks[-1] / ks[0] else 'WORSE'}")
  target = median.get(str(_TARGET_DECISION_K))
  if target is not None:
    verdict = "met" if target <= _TARGET_DECISION_MS else "NOT met"
    lines.append(f"target <= {_TARGET_DECISION_MS} ms at K="
                 f"{_TARGET_DECISION_K}: {verdict}")
  return "\n".join(lines)


def run_train(settings: Settings) -> dict:
  """AH-DQN train steps/s on a filled replay buffer."""
  env = simulator.EnvironmentBuilder().get_py_env(batch_size=256,
                                                  seed=settings.seed)
  measured = benchmarks.train_steps_per_s(
      env, num_steps=FLAGS.train_steps, batch_size=FLAGS.train_batch_size,
      seed=settings.seed)
  env.close()
  return {"train_steps_per_s": measured["steps_per_s"],
          "train_measurements": measured}


def table_train(results: dict) -> str:
  m = results["train_measurements"]
  return (f"AH-DQN agent.train: {results['train_steps_per_s']:,.1f} steps/s "
          f"(batch {m['batch_size']}, {m['num_steps']} steps in "
          f"{m['seconds']:.2f} s)")


def run_replay(settings: Settings) -> dict:
  """Replay-buffer bytes per transition at K = --replay_pool_size."""
  del settings
  features = _catalog_features()
  measured = benchmarks.replay_bytes_per_transition(
      features, pool_size=FLAGS.replay_pool_size)
  # The same at twice the feature width: ids, not features, are stored.
  wide = benchmarks.replay_bytes_per_transition(
      np.concatenate([features, features], axis=1),
      pool_size=FLAGS.replay_pool_size)
  measured["stored_at_double_feature_width"] = wide["stored"]
  measured["pool_size"] = FLAGS.replay_pool_size
  return {"replay_bytes_per_transition": measured["stored"],
          "replay_measurements": measured}


def table_replay(results: dict) -> str:
  m = results["replay_measurements"]
  stored = results["replay_bytes_per_transition"]
  verdict = "met" if stored <= _TARGET_REPLAY_BYTES else "NOT met"
  return (f"replay buffer at K={m['pool_size']}: {stored:,.0f} B/transition "
          f"stored ({m['spec']:,.0f} B in the data spec; "
          f"{m['stored_at_double_feature_width']:,.0f} B with features twice "
          f"as wide); target <= {_TARGET_REPLAY_BYTES} B: {verdict}")


def run_ray(settings: Settings) -> dict:
  """Ray evaluation speed-up over the same work in one process."""
  measured = benchmarks.ray_speedup(
      ["random", "cosine"], FLAGS.ray_episodes,
      shards_per_policy=2 * FLAGS.ray_workers, num_workers=FLAGS.ray_workers,
      seed=settings.seed)
  if FLAGS.ray_collection_steps:
    collection = benchmarks.ray_collection_speedup(
        num_workers=FLAGS.ray_workers, num_steps=FLAGS.ray_collection_steps,
        batch_size=FLAGS.ray_collection_batch_size, seed=settings.seed)
    measured.update({f"collection_{k}": v for k, v in collection.items()})
  return {"ray_speedup": measured["speedup"], "ray_measurements": measured}


def table_ray(results: dict) -> str:
  m = results["ray_measurements"]
  verdict = ("met" if results["ray_speedup"] >= _TARGET_RAY_SPEEDUP and
             m["identical"] else "NOT met")
  return (f"Ray evaluation, {m['episodes']} episodes: {m['serial_seconds']:.2f}"
          f" s in one process, {m['ray_seconds']:.2f} s on {m['num_workers']} "
          f"workers = {results['ray_speedup']:.2f}x (startup + warm-up "
          f"{m['ray_startup_seconds']:.1f} s apart); identical returns: "
          f"{m['identical']}; target >= {_TARGET_RAY_SPEEDUP}x: {verdict}"
          + ("" if "collection_speedup" not in m else
             f"\nRay experience collection (AH-DQN, {m['num_workers']} "
             f"workers): {m['collection_serial_steps_per_s']:,.0f} steps/s in "
             f"one process, {m['collection_ray_steps_per_s']:,.0f} on Ray = "
             f"{m['collection_speedup']:.2f}x; identical data: "
             f"{m['collection_identical']}"))


def run_read_logs(settings: Settings) -> dict:
  """Read seconds and peak memory of public-layout logs of two sizes."""
  folder = os.path.join(FLAGS.root_dir, "read_logs")
  measured = {}
  sizes = [FLAGS.read_rows] + ([FLAGS.read_large_rows]
                               if FLAGS.read_large_rows else [])
  for rows in sizes:
    logging.info("read_logs: writing %d rows ...", rows)
    paths = log_read_benchmark.write_public_layout(
        folder, rows, FLAGS.read_tracks, seed=settings.seed, name=str(rows))
    logging.info("read_logs: reading %d rows ...", rows)
    measured[str(rows)] = log_read_benchmark.measure_read(*paths)
    if not FLAGS.keep_read_files:
      for path in paths:
        os.remove(path)
  return {"read_logs": measured}


def table_read_logs(results: dict) -> str:
  lines = []
  for rows, m in results["read_logs"].items():
    lines.append(
        f"read_sessions + read_tracks, {int(rows):,} rows x {m['columns']} "
        f"columns ({m['sessions_file_mib']:,.0f} MiB CSV) + {m['tracks']:,} "
        f"tracks: {m['read_seconds']:.1f} s (tracks "
        f"{m['read_tracks_seconds']:.1f} s), peak RSS "
        f"{m['peak_rss_mib']:,.0f} MiB ({m['rss_after_imports_mib']:,.0f} "
        "MiB after imports)")
  small = results["read_logs"][str(FLAGS.read_rows)]
  lines.append(f"target: log_mini's size in < {_TARGET_READ_SECONDS:.0f} s: "
               + ("met" if small["read_seconds"] < _TARGET_READ_SECONDS else
                  "NOT met"))
  if FLAGS.read_large_rows:
    large = results["read_logs"][str(FLAGS.read_large_rows)]
    lines.append(f"target: {FLAGS.read_large_rows:,} rows in peak RSS < "
                 f"{_TARGET_READ_PEAK_MIB:,} MiB: " +
                 ("met" if large["peak_rss_mib"] < _TARGET_READ_PEAK_MIB else
                  "NOT met"))
  return "\n".join(lines)


#: Every part, in running order.
PARTS: dict[str, Part] = {
    "env": Part(run=run_env, table=table_env),
    "user_model": Part(run=run_user_model, table=table_user_model),
    "ahdqn": Part(run=run_ahdqn, table=table_ahdqn),
    "train": Part(run=run_train, table=table_train),
    "replay": Part(run=run_replay, table=table_replay),
    "ray": Part(run=run_ray, table=table_ray),
    "read_logs": Part(run=run_read_logs, table=table_read_logs),
    "collect_workers": Part(run=training_parts.run_collect_workers,
                            table=training_parts.table_collect_workers),
    "time_to_quality": Part(run=training_parts.run_ttq,
                            table=training_parts.table_ttq),
}

#: Parts that run only when `--only` names them: they train for minutes and
#: need a built world.
OPT_IN_PARTS = ("time_to_quality",)

# -- script -------------------------------------------------------------------


def _sizes(values: Sequence[str], flag: str) -> tuple[int, ...]:
  try:
    sizes = tuple(int(v) for v in values)
  except ValueError as e:
    raise app.UsageError(f"--{flag} must be integers, got {values}") from e
  if not sizes or min(sizes) < 1:
    raise app.UsageError(f"--{flag} must be positive, got {values}")
  return sizes


def run_benchmark(root_dir: str) -> dict:
  """Runs the parts `--only` names (all but `OPT_IN_PARTS` by default) and
  writes benchmark.json.

  The flags are those of `playlist_sim.commands.benchmark`; gin is parsed
  (and the run folder locked) by the command's runner before this runs.

  Args:
    root_dir: the run folder, which receives benchmark.json and the gin
      configs (and the parts' temporary files).

  Returns:
    What benchmark.json holds.

  Raises:
    app.UsageError: for bad sizes or unknown parts.
  """
  settings = Settings(seed=FLAGS.seed, seconds=FLAGS.seconds,
                      warmup_seconds=FLAGS.warmup_seconds,
                      batch_sizes=_sizes(FLAGS.batch_sizes, "batch_sizes"),
                      pool_sizes=_sizes(FLAGS.pool_sizes, "pool_sizes"))
  names = (list(FLAGS.only) if FLAGS.only else
           [name for name in PARTS if name not in OPT_IN_PARTS])
  unknown = sorted(set(names) - set(PARTS))
  if unknown:
    raise app.UsageError(f"--only: unknown parts {unknown}; choose from "
                         f"{list(PARTS)}")
  output = {"machine": env_benchmark.machine_info(),
            "settings": dict(dataclasses.asdict(settings), parts=names,
                             gin_files=list(FLAGS.gin_file),
                             gin_bindings=list(FLAGS.gin_bindings))}
  _log.info("machine: %s", output["machine"])
  tables = []
  for name in names:
    _log.info("part %s ...", name)
    start = time.perf_counter()
    results = PARTS[name].run(settings)
    _log.info("part %s done in %.1f s", name, time.perf_counter() - start)
    output.update(results)
    tables.append(PARTS[name].table(results))

  path = runs.write_run_files(root_dir, output, "benchmark.json")
  print("\n\n".join(tables))
  print(f"\nwrote {path}")
  return output
