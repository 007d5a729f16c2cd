"""Collection throughput of train_eval's paths: in process vs W Ray workers.

    python benchmarks/collect_workers.py --workers 0 1 2 --steps 20

For W = 0, the in-process path of `agents.q_learning` (a `DynamicStepDriver`
with AH-DQN's epsilon-greedy collect policy in one environment of B
listeners); for W > 0, `DistributedCollector` with W local Ray workers of B
listeners each, the policy's weights sent with every call, as
`train_eval(collect_workers=W)` does. Each path is timed over `--steps`
batched steps per row after one warm-up call; it prints environment
row-steps per second (and the load average, since the machine may be
shared) as JSON. The world is configs/world.gin (the listener world, no
learned-model files needed).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=wrong-import-position
import agents  # noqa: E402  (Keras 2 before TensorFlow)
import gin  # noqa: E402
import tensorflow as tf  # noqa: E402
from tf_agents.drivers import dynamic_step_driver  # noqa: E402
from tf_agents.environments import tf_py_environment  # noqa: E402
from tf_agents.utils import common  # noqa: E402

from agents.distributed_collection import DistributedCollector  # noqa: E402
from agents.environments import make_env  # noqa: E402
from playlist_sim.common.runs import parse_gin  # noqa: E402
# pylint: enable=wrong-import-position


def _agent(tf_env, catalog):
  return agents.create_ahdqn_agent(
      tf_env.time_step_spec(), tf_env.action_spec(), catalog.features,
      tf.keras.optimizers.Adam(), epsilon_greedy=0.1)


def in_process(batch_size: int, steps: int) -> float:
  """Row-steps per second of the in-process collect driver."""
  py_env = make_env("train", batch_size, 0)
  tf_env = tf_py_environment.TFPyEnvironment(py_env)
  agent = _agent(tf_env, py_env.environment.catalog)
  run = common.function(dynamic_step_driver.DynamicStepDriver(
      tf_env, agent.collect_policy, num_steps=batch_size * steps).run)
  time_step, state = run()  # Warm-up: traces the driver.
  start = time.perf_counter()
  run(time_step=time_step, policy_state=state)
  return batch_size * steps / (time.perf_counter() - start)


def on_workers(workers: int, batch_size: int, steps: int) -> float:
  """Row-steps per second of `DistributedCollector` on local Ray."""
  py_env = make_env("train", batch_size, 0)
  tf_env = tf_py_environment.TFPyEnvironment(py_env)
  agent = _agent(tf_env, py_env.environment.catalog)
  with DistributedCollector(num_workers=workers, batch_size=batch_size,
                            use_ray=True) as collector:
    collector.collect(agent.policy, steps, epsilon=0.1)  # Warm-up.
    start = time.perf_counter()
    collector.collect(agent.policy, steps, epsilon=0.1)
    seconds = time.perf_counter() - start
  return workers * batch_size * steps / seconds


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--batch_size", type=int, default=256)
  parser.add_argument("--steps", type=int, default=20)
  args = parser.parse_args()
  parse_gin(["configs/world.gin"], [], [])
  results = {"batch_size": args.batch_size, "steps_per_row": args.steps,
             "load_average_before": os.getloadavg()[0]}
  for workers in args.workers:
    rate = (in_process(args.batch_size, args.steps) if workers == 0 else
            on_workers(workers, args.batch_size, args.steps))
    results[f"row_steps_per_s_w{workers}"] = round(rate)
    gin.clear_config()
    parse_gin(["configs/world.gin"], [], [])
  results["load_average_after"] = os.getloadavg()[0]
  print(json.dumps(results, indent=1))


if __name__ == "__main__":
  main()
