"""The final comparison of a trained agent with its baselines.

`train_eval` (and the PPO loop in `agents.ppo`) evaluate the trained policy and
each baseline on the same held-out episodes of the evaluation environment
(the listener world in the default configs). With the environment's common
random numbers the returns are paired by episode, so the difference between
the agent and a baseline has a paired bootstrap interval.

Baselines by name:

* `random`, `popularity`, `cosine` (`agents.BASELINES`);
* `greedy_user_model`: greedy by predicted P(listen) of the *training*
  environment's user model (the learned simulator, e.g. the int8 CWM): the
  strong myopic baseline that knows what the agent was trained on, and
  nothing more;
* `greedy_oracle`, `lookahead_oracle`: greedy (one-step lookahead) by the
  evaluation world's true probabilities; only when the evaluation user model
  is a `ParametricListener`.
"""

from typing import Callable, Mapping, Sequence

import numpy as np

from playlist_sim.evaluation.stats import bootstrap_mean
from playlist_sim.policies.baselines import BASELINES
from playlist_sim.policies.registry import GREEDY_USER_MODEL
from playlist_sim.policies.registry import ORACLES
from playlist_sim.policies.registry import make_policy
from simulator.rollout import run_policy
from user_models.base import AbstractUserModel
from user_models.listener import ParametricListener

__all__ = ["ORACLES", "GREEDY_USER_MODEL", "baseline_policies",
           "compare_policies",
           "final_comparison", "paired_differences", "run_metrics"]



def baseline_policies(names: Sequence[str], train_user_model: AbstractUserModel,
                      eval_user_model: AbstractUserModel,
                      seed: int) -> dict[str, Callable]:
  """Baseline factories by name (see the module docstring).

  Args:
    names: baseline names; oracles are skipped when the evaluation user model
      is not a `ParametricListener`.
    train_user_model: the training environment's user model (for
      `greedy_user_model`).
    eval_user_model: the evaluation environment's user model.
    seed: seed of the random baseline.

  Returns:
    name -> function of a batched environment giving a PyPolicy.

  Raises:
    ValueError: for an unknown name.
  """
  known = BASELINES + ORACLES + (GREEDY_USER_MODEL,)
  unknown = [name for name in names if name not in known]
  if unknown:
    raise ValueError(f"unknown baselines {unknown}; choose from {known}")
  policies = {}
  for name in names:
    if name in ORACLES and not isinstance(eval_user_model, ParametricListener):
      continue
    # The greedy baseline ranks by the training user model in every world.
    policies[name] = lambda env, name=name: make_policy(
        name, env, scorer=train_user_model, seed=seed)
  return policies


def compare_policies(make_env: Callable[[], object],
                     policies: Mapping[str, Callable[[object], object]],
                     num_episodes: int, seed: int) -> dict:
  """Runs each policy in a fresh environment and summarises the returns.

  With an environment of common random numbers, every policy meets the same
  episodes, and `returns` are paired by episode across policies.

  Args:
    make_env: builds a batched environment over a `PlaylistEnvironment`.
    policies: name -> function of the environment giving a PyPolicy for
      batched time steps.
    num_episodes: episodes per policy.
    seed: seed of the bootstrap.

  Returns:
    name -> {mean_return, ci_low, ci_high, mean_length, returns}.
  """
  results = {}
  for name, build_policy in policies.items():
    env = make_env()
    stats = run_policy(env, build_policy(env), num_episodes, progress=False)
    env.close()
    mean, low, high = bootstrap_mean(stats.returns, seed)
    results[name] = {"mean_return": mean, "ci_low": low, "ci_high": high,
                     "mean_length": float(stats.lengths.mean()),
                     "returns": stats.returns}
  return results


def paired_differences(returns: dict[str, np.ndarray], agent_name: str,
                       seed: int, paired: bool = True,
                       n_bootstrap: int = 2000) -> dict[str, dict]:
  """The agent's mean return against each baseline's, with a 95% interval.

  Args:
    returns: policy name -> returns of its episodes (the agent's included).
    agent_name: the agent's key in `returns`.
    seed: seed of the bootstrap.
    paired: returns are paired by episode (common random numbers): bootstrap
      the per-episode differences; otherwise resample each side apart.
    n_bootstrap: bootstrap resamples.

  Returns:
    baseline name -> {"difference", "ci95": [low, high], "gain"} where gain
    is the relative difference agent / baseline - 1.
  """
  ours = np.asarray(returns[agent_name], np.float64)
  result = {}
  for name, theirs in returns.items():
    if name == agent_name:
      continue
    theirs = np.asarray(theirs, np.float64)
    rng = np.random.default_rng(seed)
    if paired and len(theirs) == len(ours):
      diffs = rng.choice(ours - theirs, (n_bootstrap, len(ours))).mean(1)
    else:
      diffs = (rng.choice(ours, (n_bootstrap, len(ours))).mean(1) -
               rng.choice(theirs, (n_bootstrap, len(theirs))).mean(1))
    low, high = np.quantile(diffs, [0.025, 0.975])
    result[name] = {
        "difference": float(ours.mean() - theirs.mean()),
        "ci95": [float(low), float(high)],
        "gain": float(ours.mean() / theirs.mean() - 1.0)
                if theirs.mean() != 0 else float("nan"),
    }
  return result


def final_comparison(agent_name: str, agent_policy, make_eval_env: Callable,
                     baselines: Sequence[str],
                     train_user_model: AbstractUserModel,
                     eval_user_model: AbstractUserModel, num_episodes: int,
                     seed: int, paired: bool) -> dict:
  """Evaluates the agent and its baselines on the same held-out episodes.

  Args:
    agent_name: the agent's name in the result.
    agent_policy: the trained greedy policy (a PyPolicy for batched steps).
    make_eval_env: builds a fresh evaluation environment.
    baselines: baseline names (see `baseline_policies`).
    train_user_model: the training environment's user model.
    eval_user_model: the evaluation environment's user model.
    num_episodes: episodes per policy.
    seed: seed of the random baseline and the bootstraps.
    paired: the evaluation environment has common random numbers.

  Returns:
    {"policies": name -> {mean_return, ci_low, ci_high, mean_length},
    "differences": baseline -> see `paired_differences`}.
  """
  policies = {agent_name: lambda env: agent_policy}
  policies.update(baseline_policies(baselines, train_user_model,
                                    eval_user_model, seed))
  comparison = compare_policies(make_eval_env, policies, num_episodes, seed)
  return {
      "policies": {name: {k: v for k, v in r.items() if k != "returns"}
                   for name, r in comparison.items()},
      "differences": paired_differences(
          {name: r["returns"] for name, r in comparison.items()}, agent_name,
          seed, paired=paired),
  }


def run_metrics(agent_name: str, comparison: dict, curve: list,
                final_loss: float | None, env_steps: int, seconds: float,
                final_eval_episodes: int) -> dict:
  """The metrics every agent's run writes, around its `final_comparison`.

  Args:
    agent_name: the agent's name in `comparison`.
    comparison: the result of `final_comparison`.
    curve: the evaluation curve, [step, seconds, mean return] rows.
    final_loss: the last training loss (None if nothing was trained).
    env_steps: environment row-steps collected in this run.
    seconds: wall time of the training loop.
    final_eval_episodes: episodes of the final evaluation.

  Returns:
    The agent, final and best evaluation return, the curve, the loss,
    steps, wall time and speed, and the comparison's keys; callers add
    their own step counters.
  """
  final = comparison["policies"][agent_name]["mean_return"]
  return {
      "agent": agent_name,
      "final_eval_return": final,
      "best_eval_return": max([r for _, _, r in curve] + [final]),
      "eval_curve": curve,
      "final_loss": final_loss,
      "env_steps": env_steps,
      "wall_time_s": seconds,
      "env_steps_per_s": env_steps / max(seconds, 1e-9),
      "final_eval_episodes": final_eval_episodes,
      **comparison,
  }
