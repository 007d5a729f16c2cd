"""What the logs' taste evidence is worth: the world's AUC given it.

    python benchmarks/taste_ceiling.py --logs_dir LOGS --split_by user \
        [--gin_bindings "SyntheticWorld.seed = 7"]

Prints, on the held-out rows of the split the user models train with, the
world's own AUC of P(skip) and its AUC when each listener's taste is
replaced by its best linear read from the logs' evidence: the profile the
models read, or their listens and skips (`user_models.taste_ceiling`). The
gap between the world's own figure and these is what no user model of
these logs closes by learning the response function better (docs/
user_models.md). A research tool of the repository (not installed, not a
`playlist-sim` command): it prints, and writes JSON only with --json_out.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

import gin  # noqa: E402

from user_models.listener import ParametricListener  # noqa: E402
from user_models.log_inputs import prepare_inputs  # noqa: E402
from user_models.taste_ceiling import EVIDENCE, taste_ceiling  # noqa: E402


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--logs_dir", required=True)
  parser.add_argument("--split_by", default="user",
                      choices=("user", "session"))
  parser.add_argument("--split_seed", type=int, default=0)
  parser.add_argument("--gin_file", action="append",
                      default=["configs/world.gin"])
  parser.add_argument("--gin_bindings", action="append", default=[])
  parser.add_argument("--json_out", default=None)
  args = parser.parse_args(argv)
  gin.parse_config_files_and_bindings(args.gin_file, args.gin_bindings)
  inputs = prepare_inputs(args.logs_dir, split_by=args.split_by,
                          split_seed=args.split_seed)
  out = taste_ceiling(ParametricListener(), inputs)
  print(f"held-out {args.split_by}s, {out['rows']} rows: AUC of P(skip)")
  print(f"  world, each listener's own taste   {out['world_auc']:.4f}")
  for kind in EVIDENCE:
    print(f"  world, taste read from {kind:17s} {out[kind + '_auc']:.4f}")
  if args.json_out:
    with open(args.json_out, "w") as f:
      json.dump(out, f, indent=1)
  return out


if __name__ == "__main__":
  main()
