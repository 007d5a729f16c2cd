"""Where learned user models err along policies' own trajectories in the world.

    python benchmarks/model_bias.py --logs_dir LOGS --model A=PATH [--model B=PATH] \
        --policies greedy,cosine,random --gin_bindings "SyntheticWorld.seed = 7"

Runs each policy in the listener world (configs/evaluate.gin's world, the
held-out users of the split the models trained on) and prints, for every
placed track, the world's mean P(listen) against each model's: overall, by
the first model's score decile, by position and by the world's fatigue.
Greedy ranks by the first model. See docs/model_bias.md. A research tool of
the repository (not installed, not a `playlist-sim` command): it prints,
and writes JSON only with --json_out.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import gin  # noqa: E402

from playlist_sim.data.log_files import find_log_files  # noqa: E402
from playlist_sim.data.session_end import learned_session_end  # noqa: E402
from playlist_sim.data.sessions import LogSplit  # noqa: E402
from playlist_sim.data.world import SyntheticWorld  # noqa: E402
from playlist_sim.evaluation import model_bias  # noqa: E402
from user_models.keras_user_model import KerasUserModel  # noqa: E402
from user_models.listener import ParametricListener  # noqa: E402
from user_models.litert_user_model import LiteRTUserModel  # noqa: E402


def _print(policy: str, table: dict, names: list) -> None:
  head = "  ".join([f"{'world':>7}"] + [f"{n:>7} {'gap':>6}" for n in names])
  print(f"\n== {policy}: mean P(listen) ({table['all']['rows']} tracks)")

  def line(label, row):
    if row["world"] is None:
      return
    vals = [f"{row['world']:7.3f}"] + [
        f"{row[n]:7.3f} {row[n] - row['world']:+6.3f}" for n in names]
    print(f"  {label:>12} {row['rows']:>7}  " + "  ".join(vals))
  print(f"  {'cut':>12} {'rows':>7}  {head}")
  line("all", table["all"])
  for d, row in enumerate(table["by_decile"]):
    line(f"decile {d}", row)
  for k, row in table["by_position"].items():
    line(f"pos {k}", row)
  for k, row in table["by_fatigue"].items():
    line(f"F {k}", row)


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--logs_dir", required=True)
  parser.add_argument("--model", action="append", required=True,
                      help="NAME=PATH of a .keras or .tflite user model")
  parser.add_argument("--policies", default="greedy,cosine,random,logging")
  parser.add_argument("--num_episodes", type=int, default=500)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--split_by", default="user")
  parser.add_argument("--split", default="test", choices=("test", "train"),
                      help="the held-out listeners, or those trained on")
  parser.add_argument("--gin_file", action="append",
                      default=["configs/evaluate.gin"])
  parser.add_argument("--gin_bindings", action="append", default=[])
  parser.add_argument("--json_out", default=None)
  args = parser.parse_args(argv)
  gin.parse_config_files_and_bindings(args.gin_file, args.gin_bindings)
  tracks = find_log_files(args.logs_dir)[1]
  models = {}
  for spec in args.model:
    name, sep, path = spec.partition("=")
    if not sep or not os.path.exists(path):
      raise SystemExit(f"--model {spec!r}: give NAME=PATH of an existing "
                       "user model file")
    cls = LiteRTUserModel if path.endswith(".tflite") else KerasUserModel
    models[name] = cls(path, tracks)
  names = list(models)
  first_path = args.model[0].partition("=")[2]
  limit = learned_session_end(args.logs_dir, first_path).consecutive_skip_limit
  with gin.config_scope("world"):
    world = ParametricListener(SyntheticWorld())
  split = LogSplit(args.split_by, 0.2, 0)
  out = {}
  for policy in args.policies.split(","):
    record = model_bias.record_policy_states(
        world, models, args.logs_dir, policy, models[names[0]],
        args.num_episodes, args.seed, split, limit, args.split)
    out[policy] = model_bias.gap_table(record, names[0])
    _print(policy, out[policy], names)
  if args.json_out:
    with open(args.json_out, "w") as f:
      json.dump(out, f, indent=1)
  return out


if __name__ == "__main__":
  main()
