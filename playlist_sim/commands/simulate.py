r"""Runs a policy in the simulator and writes episodes and metrics.

    playlist-sim simulate --gin_file simulate --policy cosine \
        --num_episodes 200 --seed 0 --root_dir DIR

Writes DIR/episodes.parquet (one row per track heard), DIR/metrics.json, the
gin config of the run and DIR/run.json.
"""

from absl import flags

from playlist_sim.policies.baselines import BASELINES
from playlist_sim.common import runs
from playlist_sim.jobs.simulate import simulate

__all__ = ["DEFAULT_GIN_FILES", "KIND", "SEED_CONFIGURABLES", "run"]

KIND = "simulate"
# `simulate.seed` bound in gin is the run's seed (it must agree with --seed).
SEED_CONFIGURABLES = ("simulate",)
DEFAULT_GIN_FILES = ["configs/simulate.gin"]

runs.define_common_flags(DEFAULT_GIN_FILES)
flags.DEFINE_enum("policy", "random", list(BASELINES), "Policy to run.")
flags.DEFINE_integer("num_episodes", 200, "Episodes to simulate.",
                     lower_bound=1)
flags.DEFINE_integer("batch_size", 32, "Listeners simulated at once.",
                     lower_bound=1)
flags.DEFINE_bool("track_episodes", True, "Write DIR/episodes.parquet.")


def run(values: flags.FlagValues, run_folder: runs.RunFolder) -> None:
  """Simulates and prints the headline figures."""
  metrics = simulate(run_folder.root_dir, policy=values.policy,
                     num_episodes=values.num_episodes,
                     batch_size=values.batch_size, seed=values.seed,
                     track_episodes=values.track_episodes)
  print(f"mean return {metrics['mean_return']:.3f}, mean length "
        f"{metrics['mean_length']:.2f}, skip rate {metrics['skip_rate']:.3f}; "
        f"wrote {values.root_dir}")
