"""Where one iteration of AH-DQN's training loop spends its time.

    python benchmarks/loop_profile.py --world_dir runs --iterations 200

builds the run loop's environments and AH-DQN's collect and train steps
from the agent config (configs/ahdqn.gin with the world's files, as
`benchmarks.time_to_quality`), fills the replay buffer, then times
`--iterations` iterations as the loop runs them (collect, train) and each
piece of them alone, in the same process, one after the other:

* `env_step`: one batched step of the training environment without the
  learned model's candidate scores (the learned simulator's response, the
  samplers, the observation);
* `model_scores`: the same step with the scores (the observation wrapper of
  `train_eval.user_model_scores`): the difference is the scoring;
* `policy_action`: the epsilon-greedy collect policy's action on one time
  step (a `tf.function`);
* `replay_sample`: one n-step sample of `batch_size` transitions from the
  replay buffer (no prefetch);
* `train_step`: one `agent.train` on a fixed sample;

and, before them, the one-off costs: the initial replay fill and the first
collect and train calls (which trace their `tf.function`s).

It prints milliseconds per call and per iteration as JSON (with the load
average: on a shared machine compare ratios within one run, not absolute
times).
"""

import argparse
import inspect
import json
import os
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=wrong-import-position
import agents  # noqa: E402,F401  (Keras 2 before TensorFlow)
import gin  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tf_agents.utils import common  # noqa: E402

from agents.q_learning import q_learning_steps  # noqa: E402
from agents.run_loop import LoopSettings, build_environments  # noqa: E402
from agents.train_eval import train_eval  # noqa: E402
from benchmarks.time_to_quality import world_bindings  # noqa: E402
from playlist_sim.common.runs import parse_gin  # noqa: E402
# pylint: enable=wrong-import-position

__all__ = ["profile_loop"]


def _hyperparameters() -> types.SimpleNamespace:
  """`train_eval`'s arguments under the parsed config."""
  values = {}
  for name, parameter in inspect.signature(train_eval).parameters.items():
    try:
      values[name] = gin.query_parameter(f"train_eval.{name}")
    except ValueError:
      values[name] = parameter.default
  return types.SimpleNamespace(**values)


def _ms(function, calls: int) -> float:
  """Median milliseconds of `calls` calls after one warm-up call."""
  function()
  times = []
  for _ in range(calls):
    start = time.perf_counter()
    function()
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times))


def _random_actions(py_env, rng: np.random.Generator):
  """A valid random candidate index per row of the current time step."""
  mask = py_env.current_time_step().observation["candidate_mask"]
  return np.array([rng.choice(np.flatnonzero(row)) for row in mask],
                  np.int32)


def profile_loop(iterations: int, seed: int = 1) -> dict:
  """Times the loop and its pieces (see the module docstring).

  Args:
    iterations: timed calls of each piece.
    seed: the run's seed.

  Returns:
    Milliseconds per call of each piece, per iteration of the loop, and the
    settings.
  """
  hp = _hyperparameters()
  hp.seed = seed
  settings = LoopSettings(
      num_iterations=hp.num_iterations, seed=seed,
      env_batch_size=hp.env_batch_size, eval_batch_size=hp.eval_batch_size,
      eval_common_random_numbers=True, eval_interval=hp.eval_interval,
      num_eval_episodes=hp.num_eval_episodes,
      final_eval_episodes=hp.final_eval_episodes, baselines=(),
      checkpoint_interval=hp.checkpoint_interval,
      user_model_scores=hp.user_model_scores, progress=False)
  tf.keras.utils.set_random_seed(seed)
  envs = build_environments(settings)
  steps = q_learning_steps(envs, hp)
  result = {}
  # The one-off costs: the initial replay fill, then the first collect and
  # train calls, which trace (and compile) their functions.
  for name, call in (("initial_fill_s", steps.after_restore),
                     ("first_collect_s", steps.collect),
                     ("first_train_s", lambda: steps.train(10**9))):
    start = time.perf_counter()
    call()
    result[name] = time.perf_counter() - start
  result.update(loop_collect_ms=_ms(steps.collect, iterations),
                loop_train_ms=_ms(lambda: steps.train(10**9), iterations))
  rng = np.random.default_rng(seed)
  scored = envs.py_env
  # Below the score wrapper (when the config scores candidates).
  inner = scored.wrapped_env() if envs.scorer is not None else scored
  for name, env in (("env_step", inner), ("env_step_with_scores", scored)):
    env.reset()
    result[f"{name}_ms"] = _ms(lambda env=env: env.step(
        _random_actions(env, rng)), iterations)
  result["model_scores_ms"] = (result["env_step_with_scores_ms"] -
                               result["env_step_ms"])
  time_step = envs.tf_env.reset()
  policy = steps.agent.collect_policy
  state = policy.get_initial_state(envs.tf_env.batch_size)
  action = common.function(policy.action)
  result["policy_action_ms"] = _ms(lambda: action(time_step, state),
                                   iterations)
  buffer = steps.checkpointed.get("replay_buffer")
  if buffer is not None:
    sample = common.function(lambda: buffer.get_next(
        sample_batch_size=hp.batch_size, num_steps=hp.n_step_update + 1))
    result["replay_sample_ms"] = _ms(sample, iterations)
    experience, _ = sample()
    train = common.function(steps.agent.train)
    result["train_step_ms"] = _ms(lambda: train(experience), iterations)
  result.update(iterations=iterations, env_batch_size=hp.env_batch_size,
                collect_steps_per_iteration=hp.collect_steps_per_iteration,
                train_steps_per_iteration=hp.train_steps_per_iteration,
                batch_size=hp.batch_size, load_average=os.getloadavg())
  if steps.close is not None:
    steps.close()
  return result


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--world_dir", default="runs")
  parser.add_argument("--agent_config", default="configs/ahdqn.gin")
  parser.add_argument("--iterations", type=int, default=200)
  parser.add_argument("--seed", type=int, default=1)
  parser.add_argument("--gin_bindings", action="append", default=[])
  args = parser.parse_args()
  parse_gin([args.agent_config],
            world_bindings(args.world_dir) + args.gin_bindings)
  print(json.dumps(profile_loop(args.iterations, args.seed), indent=1))


if __name__ == "__main__":
  main()
