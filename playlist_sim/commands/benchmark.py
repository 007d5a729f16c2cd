r"""Measures how fast parts of the simulator run on this machine.

The benchmarks live in the repository's `benchmarks/` folder, outside the
installed packages: run them from a clone (`python scripts/benchmark.py` or
`playlist-sim benchmark` with the clone installed in editable mode). An
installation without the folder stops with a `BenchmarksNotFoundError` that
says so. Like every command, a run takes its folder's lock and writes
`run.json`.

Not a test: it prints what it measured and writes it to
`root_dir/benchmark.json`, together with the gin configuration
(`operative_config.gin`: the parameters actually used; `config.gin`: the whole
parsed configuration).

Parts (`--only` picks some, comma separated; by default every part but
`time_to_quality` runs):

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
  The user model in the loop is `--user_model`: by default an int8 LiteRT CWM
  (random weights, the trained architecture; see
  `benchmarks.parts.int8_cwm_user_model`), or a `.tflite` path from
  `scripts/quantize_user_model.py`, or `gin` for the gin config's model.
  At B=256 it also times the environment with AH-DQN's greedy policy
  choosing the actions (`env_with_ahdqn_steps_per_s`).
* `ahdqn`: median latency of one greedy AH-DQN decision at batch 1 for pool
  sizes K = `--pool_sizes` (the policy's `action` in an XLA-compiled
  `tf.function`).
* `train`: AH-DQN `agent.train` steps/s (batch 256, `common.function`) on a
  replay buffer filled from the environment.
* `replay`: bytes per transition in AH-DQN's replay buffer at K = 500.
* `ray`: evaluation of 2 policies x `--ray_episodes` episodes on 2 local Ray
  workers against the same shards in one process (identical returns
  checked); Ray's startup and worker warm-up are reported apart. Then
  `agents.distributed_collection` on 2 Ray actors against the same workers
  in one process (`--ray_collection_steps`, 0 skips it; identical data
  checked).
* `read_logs`: seconds and peak resident memory of reading logs in the
  public dataset's layout (`benchmarks/read_logs.py`): a session log of
  `log_mini.csv`'s size (`--read_rows`, 167,880 rows, 21 columns) with its
  track file (`--read_tracks`, 50,704 tracks), then one real daily file's
  size (`--read_large_rows`, 3 million rows; 0 skips it). The files are
  generated into root_dir/read_logs (and removed afterwards unless
  `--keep_read_files`); each is read in a fresh process.
* `collect_workers`: environment row-steps/s of `train_eval`'s collection in
  process (W = 0) and on W local Ray workers for each W of
  `--collect_workers` (listener world, B = `--collect_workers_batch_size`).
* `time_to_quality` (only with `--only`): trains `--ttq_agent_config` from
  the built world in `--ttq_world_dir` and records its learning curve (world
  return on held-out users, the same episodes at every point) against wall
  seconds and train steps, greedy-by-model and the world's oracles on those
  episodes, and `time_to_quality_s`: the first wall time the agent clears
  the bar (`--ttq_gain_fraction` of the lookahead oracle's gain over
  greedy-by-model, at most `--ttq_max_lift`, paired 95% interval above
  zero) confirmed by the final comparison, or null with the reason; plus
  root_dir/time_to_quality.png (see docs/time_to_quality.md).

Usage:

  playlist-sim benchmark --root_dir /tmp/bench
  playlist-sim benchmark --root_dir /tmp/bench --only env \
      --gin_file configs/simulate.gin --seed 0 --seconds 2.0 \
      --batch_sizes 1,32,256,1024

`benchmark.json` holds `env_steps_per_s.<B>.{batched,list,ratio}` (ratio is
batched / list), `user_model_rows_per_s.<backend>.<batch>`,
`ahdqn_decision_ms.<K>`, `train_steps_per_s`, `replay_bytes_per_transition`,
`ray_speedup`, `read_logs.<rows>.{read_seconds,peak_rss_mib,...}`,
`collect_workers_row_steps_per_s.<W>`, `time_to_quality_s` with
`time_to_quality.{bar,curve,final,reason,references,...}`, the raw
figures under `*_measurements`, the settings under
`settings` and a `machine` block (CPUs, platform, Python, NumPy, TensorFlow
and TF-Agents versions, load average).
"""

import importlib
import os
import sys

from absl import flags

from playlist_sim.common import runs

__all__ = ["BenchmarksNotFoundError", "DEFAULT_GIN_FILES", "KIND",
           "PART_NAMES", "run"]

KIND = "benchmark"
# --root_dir, --seed (environments and actions), --gin_file, --gin_bindings.
DEFAULT_GIN_FILES = ["simulate"]
#: The parts of `benchmarks/main.py`, in running order.
PART_NAMES = ("env", "user_model", "ahdqn", "train", "replay", "ray",
              "read_logs", "collect_workers", "time_to_quality")
# The clone's root, which holds `benchmarks/` beside the packages.
_CLONE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

runs.define_common_flags(DEFAULT_GIN_FILES)
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
flags.DEFINE_string("user_model", "int8",
                    "User model of the env part: 'int8' (an int8 LiteRT CWM "
                    "built in a temporary folder), 'gin' (the gin config's), "
                    "or a .tflite file from scripts/quantize_user_model.py.")
flags.DEFINE_list("pool_sizes", ["50", "200", "1000", "2000"],
                  "Pool sizes K of the ahdqn part.")
flags.DEFINE_integer("decision_calls", 300,
                     "Timed calls per pool size in the ahdqn part.")
flags.DEFINE_integer("train_steps", 100, "Timed train steps (train part).")
flags.DEFINE_integer("train_batch_size", 256,
                     "Transitions per train step (train part).")
flags.DEFINE_integer("replay_pool_size", 500, "K of the replay part.")
flags.DEFINE_integer("ray_episodes", 100000,
                     "Episodes per policy in the ray part (2 policies).")
flags.DEFINE_integer("ray_workers", 2, "Local Ray workers (ray part).")
flags.DEFINE_integer("ray_collection_steps", 30,
                     "Timed steps per worker of Ray experience collection "
                     "(ray part; 0 skips it).")
flags.DEFINE_integer("ray_collection_batch_size", 256,
                     "Listeners per collection worker (ray part).")
flags.DEFINE_integer("read_rows", 167_880,
                     "Session-log rows of the read_logs part's small file "
                     "(the public log_mini.csv's).")
flags.DEFINE_integer("read_tracks", 50_704,
                     "Tracks of the read_logs part (tf_mini.csv's).")
flags.DEFINE_integer("read_large_rows", 3_000_000,
                     "Rows of the read_logs part's large file (one real "
                     "daily file; 0 skips it).")
flags.DEFINE_bool("keep_read_files", False,
                  "Keep the read_logs part's generated files.")
flags.DEFINE_list("collect_workers", ["0", "1", "2", "4"],
                  "Ray collect workers W of the collect_workers part (0: "
                  "train_eval's in-process collection).")
flags.DEFINE_integer("collect_workers_steps", 20,
                     "Timed batched steps per row (collect_workers part).")
flags.DEFINE_integer("collect_workers_batch_size", 256,
                     "Listeners per environment (collect_workers part).")
flags.DEFINE_string("ttq_world_dir", "runs",
                    "time_to_quality: the built world (logs/ and "
                    "quantized_users/ below it; the agent config's "
                    "prerequisites).")
flags.DEFINE_string("ttq_agent_config", "configs/ahdqn.gin",
                    "time_to_quality: the agent's gin config.")
flags.DEFINE_integer("ttq_seed", 1, "time_to_quality: the agent's seed.")
flags.DEFINE_integer("ttq_eval_interval", 250,
                     "time_to_quality: train steps between curve points.",
                     lower_bound=1)
flags.DEFINE_integer("ttq_eval_episodes", 2000,
                     "time_to_quality: held-out episodes per point and in "
                     "the final comparison.", lower_bound=1)
flags.DEFINE_float("ttq_gain_fraction", 0.5,
                   "time_to_quality: share of the world's lookahead-oracle "
                   "gain (over its greedy oracle) the agent must add to "
                   "greedy-by-model (issue #20).")
flags.DEFINE_float("ttq_max_lift", 0.05,
                   "time_to_quality: the lift required at most (issue #16's "
                   "5%, for worlds whose lookahead gain is large).")
flags.DEFINE_integer("ttq_collect_workers", 0,
                     "time_to_quality: train_eval.collect_workers.",
                     lower_bound=0)
flags.DEFINE_multi_string("ttq_bindings", [],
                          "time_to_quality: extra gin bindings of the agent "
                          "config (after the world's files).")
flags.DEFINE_list("only", None,
                  f"Run only these parts, comma separated, from "
                  f"{list(PART_NAMES)} (default: every part).")


class BenchmarksNotFoundError(RuntimeError):
  """The benchmarks are not installed: they run from a clone."""


def _benchmarks():
  """The clone's `benchmarks.main` module (see the module docstring)."""
  if not os.path.isfile(os.path.join(_CLONE_DIR, "benchmarks", "main.py")):
    raise BenchmarksNotFoundError(
        f"the benchmarks are not part of the installed package: no "
        f"benchmarks/main.py beside {os.path.join(_CLONE_DIR, 'playlist_sim')}"
        ". Run them from a clone of the repository: `python "
        "scripts/benchmark.py ...`, or `pip install -e .` there and run "
        "`playlist-sim benchmark ...`")
  if _CLONE_DIR not in sys.path:
    sys.path.insert(0, _CLONE_DIR)
  return importlib.import_module("benchmarks.main")


def run(values: flags.FlagValues, run_folder: runs.RunFolder) -> None:
  """Runs the benchmark's parts in the run folder."""
  del values  # The parts read the flags themselves (benchmarks/main.py).
  _benchmarks().run_benchmark(run_folder.root_dir)
