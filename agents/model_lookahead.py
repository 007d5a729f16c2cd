"""How much sequencing gain a learned user model holds: lookahead by it.

`playlist_sim.policies.oracle.OraclePolicy` ranks candidates by a
`ParametricListener`'s true probabilities, greedily or with a one-step
lookahead. `ModelListener`
gives it any `AbstractUserModel` (the int8 CWM of the learned simulator)
instead, so the same two policies run on what the learned model predicts.
If lookahead-by-the-model beats greedy-by-the-model in the world, the model
carries an order effect that an agent trained in it can learn; if not, no
agent trained in that simulator will find it.

    python -m agents.model_lookahead --world_dir runs/w0 --world_seed 0 \
        --eval_seed 2 --num_episodes 2000

(`world_dir` holds logs/ and quantized_users/ as in configs/ahdqn.gin's
header.) Prints both mean returns and the paired difference with a normal
95% interval; the episodes are the held-out users' of configs/ahdqn.gin's
evaluation, with common random numbers.
"""

import argparse
import dataclasses
import os

import numpy as np

from agents.environments import scoped_builder
from playlist_sim.policies.oracle import OraclePolicy
from simulator.rollout import run_policy
from playlist_sim.common.runs import parse_gin
from user_models.base import AbstractUserModel, SessionContext

__all__ = ["ModelListener", "lookahead_gain"]


class ModelListener:
  """The `listen_probability` of `OraclePolicy`'s listener, from any model."""

  def __init__(self, user_model: AbstractUserModel):
    """Wraps `user_model` (its last response level is the listen)."""
    self.user_model = user_model

  def listen_probability(self, context: SessionContext, track_ids: np.ndarray,
                         independent: bool = False) -> np.ndarray:
    """P(listen) of each placed track.

    Args:
      context: the sessions asked about (R rows).
      track_ids: int [R, k] catalog rows.
      independent: each of the k tracks as the next one (ranking
        candidates), instead of a slate played in order.

    Returns:
      float [R, k] listen probabilities.
    """
    track_ids = np.asarray(track_ids)
    if not independent:
      return self.user_model.predict(context, track_ids)[..., -1]
    rows, k = track_ids.shape
    repeat = np.repeat(np.arange(rows), k)
    expanded = SessionContext(**{
        f.name: getattr(context, f.name)[repeat]
        for f in dataclasses.fields(context)})
    probabilities = self.user_model.predict(expanded,
                                            track_ids.reshape(-1, 1))
    return probabilities[:, 0, -1].reshape(rows, k)


def lookahead_gain(num_episodes: int, seed: int,
                   batch_size: int = 250) -> dict:
  """Greedy and lookahead by the `train` scope's model, in the `eval` world.

  Gin must be parsed (configs/ahdqn.gin with its files bound).

  Args:
    num_episodes: paired episodes per policy.
    seed: the evaluation environment's seed (a run with seed A evaluates
      with A + 1).
    batch_size: listeners stepped together.

  Returns:
    {"greedy_model", "lookahead_model": mean returns, "difference",
     "ci95": [low, high] of the paired difference}.
  """
  model = scoped_builder("train").user_model
  builder = scoped_builder("eval")
  returns = {}
  for name, lookahead in (("greedy_model", False), ("lookahead_model", True)):
    env = builder.get_py_env(batch_size=batch_size, seed=seed,
                             common_random_numbers=True)
    policy = OraclePolicy(env.environment, ModelListener(model),
                          lookahead=lookahead)
    returns[name] = run_policy(env, policy, num_episodes,
                               progress=False).returns
    env.close()
  difference = returns["lookahead_model"] - returns["greedy_model"]
  half = 1.96 * difference.std(ddof=1) / np.sqrt(len(difference))
  return {"greedy_model": float(returns["greedy_model"].mean()),
          "lookahead_model": float(returns["lookahead_model"].mean()),
          "difference": float(difference.mean()),
          "ci95": [float(difference.mean() - half),
                   float(difference.mean() + half)]}


def _main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--world_dir", required=True)
  parser.add_argument("--world_seed", type=int, default=0)
  parser.add_argument("--eval_seed", type=int, default=1)
  parser.add_argument("--num_episodes", type=int, default=2000)
  args = parser.parse_args()
  files = {"SESSIONS": "logs/sessions.parquet",
           "TRACKS": "logs/tracks.parquet",
           "USER_MODEL_PATH": "quantized_users/user_model.int8.tflite"}
  parse_gin(["configs/ahdqn.gin"],
            [f"SyntheticWorld.seed = {args.world_seed}"] +
            [f"{name} = {os.path.join(args.world_dir, path)!r}"
             for name, path in files.items()])
  result = lookahead_gain(args.num_episodes, args.eval_seed)
  low, high = result["ci95"]
  print(f"greedy by the model {result['greedy_model']:.4f}, lookahead by "
        f"the model {result['lookahead_model']:.4f}, difference "
        f"{result['difference']:+.4f} [{low:+.4f}, {high:+.4f}] "
        f"({result['difference'] / result['greedy_model']:+.2%})")


if __name__ == "__main__":
  _main()
