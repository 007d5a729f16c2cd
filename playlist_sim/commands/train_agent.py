r"""Trains and evaluates a playlist agent (AH-DQN or DQN).

    playlist-sim train-agent --gin_file ahdqn --root_dir DIR
    playlist-sim train-agent --gin_file dqn --root_dir DIR \
        --gin_bindings 'train_eval.num_iterations = 2000'

Writes TensorBoard summaries (DIR/train, DIR/eval), checkpoints
(DIR/checkpoint; rerunning with the same DIR resumes, and the learning curve,
loss history, steps and wall time carry over), the greedy policy as a
SavedModel (DIR/policy), DIR/metrics.json, the gin config and DIR/run.json.
A resume whose operative config differs from the checkpoint's is refused,
listing the differing bindings, unless --allow_config_change. See
`agents.train_eval.train_eval` for every hyperparameter.
"""

from absl import flags

from agents.train_eval import train_eval
from playlist_sim.common import runs

__all__ = ["DEFAULT_GIN_FILES", "KIND", "RERUN_WITH_NEW_CONFIG",
           "SEED_CONFIGURABLES", "run"]

KIND = "train_agent"
# `train_eval.seed` bound in gin is the run's seed (it must agree with --seed).
SEED_CONFIGURABLES = ("train_eval",)
DEFAULT_GIN_FILES = ["configs/ahdqn.gin"]
# A finished run given more iterations (or another binding) goes on to
# train_eval, which lists the differences and needs --allow_config_change.
RERUN_WITH_NEW_CONFIG = True

runs.define_common_flags(DEFAULT_GIN_FILES)
flags.DEFINE_bool("allow_config_change", False,
                  "Resume a checkpoint even though the operative config "
                  "(hyperparameters, world) differs from the one it was "
                  "trained with.")


def run(values: flags.FlagValues, run_folder: runs.RunFolder) -> None:
  """Trains, evaluates and prints the comparison with the baselines."""
  metrics = train_eval(run_folder.root_dir, seed=values.seed,
                       allow_config_change=values.allow_config_change)
  print(f"{metrics['agent']}: final eval return "
        f"{metrics['final_eval_return']:.3f} (best "
        f"{metrics['best_eval_return']:.3f}) after {metrics['global_step']} "
        f"train steps in {metrics['wall_time_s']:.0f} s; wrote "
        f"{values.root_dir}")
  for name, result in metrics["policies"].items():
    print(f"  {name:<17} {result['mean_return']:7.3f}  95% CI "
          f"[{result['ci_low']:.3f}, {result['ci_high']:.3f}]")
  for name, diff in metrics.get("differences", {}).items():
    low, high = diff["ci95"]
    print(f"  {metrics['agent']} - {name:<17} {diff['difference']:+7.3f}  "
          f"95% CI [{low:+.3f}, {high:+.3f}]  ({diff['gain']:+.1%})")
