"""Policy evaluation spread over processes with Ray (optional extra).

`evaluate_policies` runs P policies x N episodes as independent shards. Each
shard rebuilds the environment from the gin config text of the caller,
seeds it from (seed, policy, shard) and returns its episode returns, so the
result is the same whether shards run in this process (`use_ray=False`) or as
Ray tasks on local workers or a cluster (`ray_address`).

Ray is started locally by default (`simulator.ray_session.local_ray`:
listening on 127.0.0.1 only, its own temporary folder removed at shutdown,
on Ctrl-C and on SIGTERM, no dashboard, a per-process random auth token in
the environment, so nothing is written to the home folder). To use a cluster,
bind its address in gin (`local_ray.address = 'ray://head:10001'`) or pass
`ray_address`. `agents.distributed_collection` collects training experience
on Ray actors the same way.
"""

import dataclasses
import time
from typing import Sequence

import gin
import numpy as np

from playlist_sim.policies.baselines import make_baseline_policy
from simulator.builder import EnvironmentBuilder
from simulator.ray_session import local_ray
from simulator.rollout import run_policy

__all__ = ["EvalShard", "evaluate_policies", "local_ray", "run_shard"]


@dataclasses.dataclass(frozen=True)
class EvalShard:
  """One unit of work: some episodes of one policy.

  Attributes:
    policy: a baseline name (`agents.BASELINES`).
    seed: seed of the environment and the policy for this shard.
    num_episodes: episodes to run.
    batch_size: listeners simulated at once.
    gin_config: the gin config text the environment is built from.
  """
  policy: str
  seed: int
  num_episodes: int
  batch_size: int
  gin_config: str


def run_shard(shard: EvalShard) -> np.ndarray:
  """Runs one shard in the current process and returns its episode returns."""
  with gin.unlock_config():
    gin.clear_config()
    gin.parse_config(shard.gin_config)
  env = EnvironmentBuilder().get_py_env(batch_size=shard.batch_size,
                                        seed=shard.seed)
  policy = make_baseline_policy(shard.policy, env.time_step_spec(),
                                env.action_spec(), env.environment.catalog,
                                seed=shard.seed)
  return run_policy(env, policy, shard.num_episodes, progress=False).returns


class _ShardRunner:
  """A Ray actor running shards (one process, imports paid once)."""

  def run(self, shard: EvalShard) -> np.ndarray:
    return run_shard(shard)


def evaluate_policies(policies: Sequence[str], num_episodes: int,
                      shards_per_policy: int = 4, batch_size: int = 64,
                      seed: int = 0, use_ray: bool = False,
                      num_workers: int = 2,
                      ray_address: str | None = None) -> dict:
  """Episode returns of each policy, serially or on Ray.

  Args:
    policies: baseline names.
    num_episodes: episodes per policy (split over the shards).
    shards_per_policy: independent shards per policy.
    batch_size: listeners per shard environment.
    seed: base seed.
    use_ray: run the shards as Ray tasks.
    num_workers: local Ray workers.
    ray_address: a Ray cluster address (implies use_ray).

  Returns:
    {"returns": {policy: float64 [num_episodes]}, "seconds": wall time of
    the shards, "startup_seconds": Ray start and worker warm-up (0 without
    Ray)}.

  Raises:
    ValueError: if num_episodes < shards_per_policy or either is < 1.
  """
  if shards_per_policy < 1 or num_episodes < shards_per_policy:
    raise ValueError(f"need 1 <= shards_per_policy <= num_episodes, got "
                     f"{shards_per_policy} and {num_episodes}")
  config = gin.config_str()
  sizes = np.full(shards_per_policy, num_episodes // shards_per_policy)
  sizes[:num_episodes % shards_per_policy] += 1
  shards = [EvalShard(policy, int(seed * 1_000_003 + p * 1009 + s), int(n),
                      batch_size, config)
            for p, policy in enumerate(policies)
            for s, n in enumerate(sizes)]
  start = time.perf_counter()
  startup = 0.0
  if use_ray or ray_address:
    address = {"address": ray_address} if ray_address else {}
    with local_ray(num_workers, **address) as ray:
      from ray.util import ActorPool  # pylint: disable=g-import-not-at-top
      # One actor a worker, each warmed up (imports, world) by one small
      # shard, so the timing below is the work itself; startup is reported
      # apart. The pool hands the next shard to whichever actor is free.
      actors = [ray.remote(num_cpus=1)(_ShardRunner).remote()
                for _ in range(num_workers)]
      warm = dataclasses.replace(shards[0], num_episodes=1)
      ray.get([actor.run.remote(warm) for actor in actors])
      startup = time.perf_counter() - start
      start = time.perf_counter()
      results = list(ActorPool(actors).map(
          lambda actor, shard: actor.run.remote(shard), shards))
  else:
    results = [run_shard(shard) for shard in shards]
    with gin.unlock_config():  # run_shard replaced the config: restore it.
      gin.clear_config()
      gin.parse_config(config)
  returns = {}
  for shard, result in zip(shards, results):
    returns.setdefault(shard.policy, []).append(result)
  return {"returns": {k: np.concatenate(v) for k, v in returns.items()},
          "seconds": time.perf_counter() - start, "startup_seconds": startup}
