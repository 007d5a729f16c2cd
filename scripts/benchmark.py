r"""Measures how fast parts of the simulator run on this machine.

Not a test: it prints what it measured and writes it to
`root_dir/benchmark.json`, together with the gin configuration
(`operative_config.gin`: the parameters actually used; `config.gin`: the whole
parsed configuration).

Parts (`--only` picks one; by default every part runs):

* `user_model`: rows/s of a user model (`--user_model_path`, default a
  128-256-256-128-3 MLP) at batch 1, 32, 256, 4096 for Keras `model(x)`,
  `tf.function`, LiteRT fp32, int8 (dynamic range), int8_full, fp16 and the
  bare int8 interpreter, each backend in its own process (single thread),
  with ratios to Keras and Gop/s.
* `env`: environment steps per second of the natively batched
  `PlaylistEnvironment` (one `TFAgtPyEnvironment` with batch size B) against
  TF-Agents' `BatchedPyEnvironment` (multithreading=False) over B copies of
  the B=1 environment, at each B of `--batch_sizes`. All environments share
  the user model, samplers and world built from gin; both are stepped with
  the same pre-generated random valid actions, and each call counts B steps.
  Each measurement runs `--warmup_seconds` and then `--seconds` of wall time.

Usage:

  python scripts/benchmark.py --root_dir /tmp/bench
  python scripts/benchmark.py --root_dir /tmp/bench --only env \
      --gin_file configs/simulate.gin --seed 0 --seconds 2.0 \
      --batch_sizes 1,32,256,1024

`benchmark.json` holds `env_steps_per_s.<B>.{batched,list,ratio}` (ratio is
batched / list), the raw counts under `env_measurements`, the settings under
`settings` and a `machine` block (CPUs, platform, Python, NumPy, TensorFlow
and TF-Agents versions).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=g-import-not-at-top,wrong-import-position
from user_models import _keras2  # noqa: F401  (must run before TensorFlow)

import dataclasses
import json
import platform
import subprocess
import sys
import time
from typing import Callable, Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf
import tf_agents
from tf_agents.environments import batched_py_environment
from tf_agents.specs import array_spec

import simulator
from simulator import io_utils
from simulator import runs
import user_models  # noqa: F401  (registers its gin configurables)
from user_models.base import AbstractUserModel
# pylint: enable=g-import-not-at-top,wrong-import-position

_REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DEFAULT_GIN_FILE = os.path.join(_REPO_DIR, "configs", "simulate.gin")

#: Distinct pre-generated action batches, cycled through while stepping.
_NUM_ACTION_BATCHES = 64
#: The issue's target: batched / list speed-up at this batch size.
_TARGET_BATCH_SIZE, _TARGET_RATIO = 256, 10.0

# --root_dir, --seed (environments and actions), --gin_file, --gin_bindings.
runs.define_common_flags(default_gin_files=[_DEFAULT_GIN_FILE])
flags.DEFINE_float("seconds", 2.0, "Wall time of each measurement.",
                   lower_bound=0.0)
flags.DEFINE_float("warmup_seconds", 0.2,
                   "Wall time stepped before each measurement starts.",
                   lower_bound=0.0)
flags.DEFINE_list("batch_sizes", ["1", "32", "256", "1024"],
                  "Batch sizes B of the env part, comma separated.")
flags.DEFINE_string("user_model_path", None,
                    "A single-input .keras user model for the user_model "
                    "part; default: a 128-256-256-128-3 reference MLP.")
_USER_MODEL_BATCHES = (1, 32, 256, 4096)

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


@dataclasses.dataclass(frozen=True)
class Part:
  """A benchmark part.

  Attributes:
    run: measures; returns the entries it adds to benchmark.json.
    table: formats those entries as a readable table.
  """
  run: Callable[[Settings], dict]
  table: Callable[[dict], str]


# -- measuring ----------------------------------------------------------------


def measure(step: Callable[[np.ndarray], object], actions: Sequence,
            seconds: float, warmup_seconds: float) -> tuple[int, float]:
  """Calls `step` on the actions in turn for a fixed wall time.

  Args:
    step: the function timed, called with one element of `actions`.
    actions: pre-generated arguments, cycled through.
    seconds: wall time measured (at least one call is made).
    warmup_seconds: wall time stepped, untimed, before measuring.

  Returns:
    (number of timed calls, their wall time in seconds).
  """
  n = len(actions)
  i = 0
  deadline = time.perf_counter() + warmup_seconds
  while time.perf_counter() < deadline:
    step(actions[i % n])
    i += 1
  calls = 0
  start = time.perf_counter()
  end = start + seconds
  while True:
    step(actions[(i + calls) % n])
    calls += 1
    now = time.perf_counter()
    if now >= end:
      return calls, now - start


def machine_info() -> dict:
  """The machine and software the numbers were measured on, and its load."""
  try:
    usable_cpus = len(os.sched_getaffinity(0))
  except AttributeError:  # Not on Linux.
    usable_cpus = os.cpu_count()
  try:
    load = [round(x, 2) for x in os.getloadavg()]
  except OSError:
    load = None
  return {
      "cpu_count": os.cpu_count(),
      "usable_cpu_count": usable_cpus,
      "processor": platform.processor() or platform.machine(),
      "platform": platform.platform(),
      "python": sys.version.split()[0],
      "numpy": np.__version__,
      "tensorflow": tf.__version__,
      "tf_agents": tf_agents.__version__,
      # Other processes compete for the CPUs when this is high.
      "load_average_1_5_15_min": load,
  }


# -- part: env ----------------------------------------------------------------


def _is_stateful(user_model: AbstractUserModel) -> bool:
  cls = type(user_model)
  return (cls.begin_sessions is not AbstractUserModel.begin_sessions or
          cls.observe is not AbstractUserModel.observe)


def run_env(settings: Settings) -> dict:
  """Steps/s of the batched environment and of the list baseline.

  Args:
    settings: seed, wall times and batch sizes.

  Returns:
    {"env_steps_per_s": {B: {"batched", "list", "ratio"}},
     "env_measurements": {B: raw counts and build times}}, B as a string.
  """
  builder = simulator.EnvironmentBuilder()
  if _is_stateful(builder.user_model):
    logging.warning(
        "%s keeps per-row session state, but the list baseline shares it "
        "between B environments that all use row 0: its responses are not "
        "those of B independent listeners (the timing is still indicative).",
        type(builder.user_model).__name__)
  rng = np.random.RandomState(settings.seed)
  rates, raw = {}, {}
  for b in settings.batch_sizes:
    start = time.perf_counter()
    batched = builder.get_py_env(batch_size=b, seed=settings.seed)
    batched_build = time.perf_counter() - start
    start = time.perf_counter()
    copies = [builder.get_py_env(unbatched=True, batch_size=1,
                                 seed=settings.seed + i) for i in range(b)]
    listed = batched_py_environment.BatchedPyEnvironment(
        copies, multithreading=False)
    list_build = time.perf_counter() - start
    actions = array_spec.sample_spec_nest(
        batched.action_spec(), rng, outer_dims=(_NUM_ACTION_BATCHES, b))

    counts = {}
    for name, env in (("batched", batched), ("list", listed)):
      env.reset()
      calls, elapsed = measure(env.step, actions, settings.seconds,
                               settings.warmup_seconds)
      counts[name] = {"calls": calls, "seconds": elapsed,
                      "steps_per_s": calls * b / elapsed}
      logging.info("env B=%d %-7s: %d calls in %.2f s = %.0f steps/s", b, name,
                   calls, elapsed, counts[name]["steps_per_s"])
      env.close()
    ratio = counts["batched"]["steps_per_s"] / counts["list"]["steps_per_s"]
    rates[str(b)] = {"batched": counts["batched"]["steps_per_s"],
                     "list": counts["list"]["steps_per_s"], "ratio": ratio}
    raw[str(b)] = {"batched": counts["batched"], "list": counts["list"],
                   "batched_build_seconds": batched_build,
                   "list_build_seconds": list_build}
    logging.info("env B=%d: batched / list = %.1fx (list built in %.2f s)", b,
                 ratio, list_build)
  return {"env_steps_per_s": rates, "env_measurements": raw}


def table_env(results: dict) -> str:
  """The env part's results as a table."""
  rates = results["env_steps_per_s"]
  lines = [
      "env steps/s: batched PlaylistEnvironment vs BatchedPyEnvironment of B "
      "copies (multithreading=False)",
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
  return "\n".join(lines)


def run_user_model(settings: Settings) -> dict:
  """Rows/s per user-model backend, each backend in its own process."""
  from user_models import serving_benchmark  # pylint: disable=g-import-not-at-top
  results, gops = {}, {}
  for backend in serving_benchmark.BACKENDS:
    cmd = [sys.executable, "-m", "user_models.serving_benchmark",
           "--backend", backend, "--seconds", str(settings.seconds),
           "--batches", ",".join(str(b) for b in _USER_MODEL_BATCHES)]
    if FLAGS.user_model_path:
      cmd += ["--model_path", FLAGS.user_model_path]
    logging.info("user_model %s ...", backend)
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


#: Every part, in running order. Later: ahdqn, train, replay, ray.
PARTS: dict[str, Part] = {
    "env": Part(run=run_env, table=table_env),
    "user_model": Part(run=run_user_model, table=table_user_model),
}

flags.DEFINE_enum("only", None, list(PARTS),
                  "Run only this part (default: every part).")


# -- script -------------------------------------------------------------------


def _batch_sizes(values: Sequence[str]) -> tuple[int, ...]:
  try:
    sizes = tuple(int(v) for v in values)
  except ValueError as e:
    raise app.UsageError(f"--batch_sizes must be integers, got {values}") from e
  if not sizes or min(sizes) < 1:
    raise app.UsageError(f"--batch_sizes must be positive, got {values}")
  return sizes


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  root_dir = io_utils.ensure_writable_dir(FLAGS.root_dir)
  settings = Settings(seed=FLAGS.seed, seconds=FLAGS.seconds,
                      warmup_seconds=FLAGS.warmup_seconds,
                      batch_sizes=_batch_sizes(FLAGS.batch_sizes))
  runs.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings)

  names = [FLAGS.only] if FLAGS.only else list(PARTS)
  output = {"machine": machine_info(),
            "settings": dict(dataclasses.asdict(settings), parts=names,
                             gin_files=list(FLAGS.gin_file),
                             gin_bindings=list(FLAGS.gin_bindings))}
  logging.info("machine: %s", output["machine"])
  tables = []
  for name in names:
    logging.info("part %s ...", name)
    start = time.perf_counter()
    results = PARTS[name].run(settings)
    logging.info("part %s done in %.1f s", name, time.perf_counter() - start)
    output.update(results)
    tables.append(PARTS[name].table(results))

  path = runs.write_run_files(root_dir, output, "benchmark.json")
  print("\n\n".join(tables))
  print(f"\nwrote {path}")


if __name__ == "__main__":
  app.run(main)
