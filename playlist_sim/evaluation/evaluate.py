"""Offline evaluation of a set of policies, checked against the online truth.

    # With configs/evaluate.gin parsed:
    evaluate_policies(root_dir, logs_dir, user_model_path)

Every policy (baselines, greedy by the learned simulator, saved agents, and
the stochastic score policies of `policies.DEFAULT_STOCHASTIC`) runs on the
same held-out episodes of the logs (common random numbers) in two
environments: `simulator`, the learned user model (the offline estimate), and
`world`, the ground-truth listener (the online truth). The logged-data
estimators then estimate the stochastic policies' values from a logging run
in the world (`logged`), the session-level ones also with the learned
simulator targeted to the logged data and anchored to the logged return
(`targeted`), and rank correlations measure how well each offline estimate
orders the policies. Writes `root_dir/evaluation.json`:

    policies.<policy>.<simulator|world>: mean_return, ci_low, ci_high, ...
    estimators.<estimator>.<policy>: estimate, ci_low, ci_high, truth,
                                     relative_error, quantity
                                     (targeted_simulator: listen_logit_shift)
    targets.<policy>: kl_from_logging, effective_sample_size, max_weight
    agreement.<simulator|estimator>: spearman, kendall, num_policies
                                     (estimators: max_relative_error)
    paired.<saved policy>.<simulator|world>: the agent against greedy by
        the learned simulator on the same episodes: difference, ci95 (paired
        bootstrap), gain (`playlist_sim.evaluation.comparison.
        paired_differences`, as in an agent's metrics.json)
    leaving_model: the simulator's leaving model (`playlist_sim.data.leaving`, read
                   from leaving_model.json beside the user model), or None
    split: split_by, holdout_fraction, split_seed of the logs' split whose
           held-out part gave the episodes
    consecutive_skip_limit: the environments' skip limit
    session_end: how the simulator's sessions end (the skip limit, its
                 source, the leaving model; `playlist_sim.data.session_end`)

and the report (`root_dir/report.md` with PNG plots, `playlist_sim.evaluation.
report`).
"""

import dataclasses
import os
import time
from typing import Sequence

import gin

from playlist_sim.common.io_utils import ensure_writable_dir, write_json
from playlist_sim.data.leaving import LEAVING_MODEL_FILE
from playlist_sim.data.session_end import SessionEnd, learned_session_end
from playlist_sim.data.log_files import find_log_files
from playlist_sim.data.sessions import LogSplit
from playlist_sim.data.world import SyntheticWorld
from playlist_sim.evaluation import logged
from playlist_sim.evaluation import targeted
from playlist_sim.evaluation.comparison import paired_differences
from playlist_sim.evaluation.report import write_report
from playlist_sim.evaluation.saved_policies import check_policy_folders
from playlist_sim.evaluation.saved_policies import check_policy_specs
from playlist_sim.evaluation.saved_policies import parse_policy_flags
from playlist_sim.evaluation.simulated import held_out_env
from playlist_sim.evaluation.simulated import run_logged_episodes
from playlist_sim.evaluation.simulated import summarize_run
from playlist_sim.evaluation.stats import agreement
from playlist_sim.evaluation.stats import bootstrap_mean
from playlist_sim.policies.registry import make_policy
from playlist_sim.policies.softmax import DEFAULT_STOCHASTIC
from user_models.keras_user_model import KerasUserModel
from user_models.listener import ParametricListener
from user_models.litert_user_model import LiteRTUserModel

__all__ = ["ENVIRONMENTS", "evaluate_policies", "format_table",
           "parse_policy_flags"]

ENVIRONMENTS = ("simulator", "world")


def _world_model():
  with gin.config_scope("world"):
    world = SyntheticWorld()
  return ParametricListener(world)


@dataclasses.dataclass(frozen=True)
class _Setting:
  """What every step of one evaluation shares (built by `evaluate_policies`).

  Attributes:
    logs_dir: the logs.
    seed: seed of the episodes, the policies and the bootstraps.
    batch_size: listeners simulated at once.
    models: environment name -> its user model.
    scorer: the learned model greedy ranks with (not an environment's).
    leaving: the simulator's leaving model, or None.
    log_split: the logs' split, or None for `LogEpisodeSampler`'s own.
    skip_limit: the environments' consecutive-skip limit.
    session_end: the simulator's session end (skip limit, leaving model).
  """
  logs_dir: str
  seed: int
  batch_size: int
  models: dict
  scorer: object
  leaving: object
  log_split: LogSplit | None
  skip_limit: int
  session_end: SessionEnd

  def env(self, batch_size: int):
    """A held-out environment in the world, on this evaluation's split."""
    return held_out_env(self.models["world"], self.logs_dir, self.seed,
                        batch_size=batch_size, log_split=self.log_split,
                        consecutive_skip_limit=self.skip_limit)


def _run(setting: _Setting, name: str, env_name: str, user_model,
         saved: dict, stochastic_specs: dict, num_episodes: int):
  """One policy on the evaluation's episodes in one environment, whose
  listeners are `user_model` (the world's listeners leave on their own,
  the simulator's by its leaving model)."""
  def build(env):
    return make_policy(name, env, scorer=setting.scorer,
                       stochastic=stochastic_specs, saved_policies=saved,
                       seed=setting.seed)
  return run_logged_episodes(
      user_model, setting.logs_dir, build, num_episodes, setting.seed,
      setting.batch_size,
      leaving_model=setting.leaving if env_name == "simulator" else None,
      log_split=setting.log_split, consecutive_skip_limit=setting.skip_limit)


def _run_policies(setting: _Setting, names: Sequence[str], saved: dict,
                  stochastic_specs: dict, num_episodes: int
                  ) -> tuple[dict, dict]:
  """Every policy in both environments, on the same seeded episodes.

  Returns:
    (policy -> environment -> summary, stochastic policy -> its return to
    go in the simulator, which the estimators' DM term uses, policy ->
    environment -> per-episode returns).
  """
  policies, return_to_go, returns = {}, {}, {}
  for name in names:
    policies[name], returns[name] = {}, {}
    for env_name in ENVIRONMENTS:
      run = _run(setting, name, env_name, setting.models[env_name], saved,
                 stochastic_specs, num_episodes)
      policies[name][env_name] = summarize_run(run, setting.seed)
      returns[name][env_name] = run.stats.returns
      if env_name == "simulator" and name in stochastic_specs:
        return_to_go[name] = run.return_to_go()
  return policies, return_to_go, returns


def _paired_with_greedy(returns: dict, agents: Sequence[str],
                        seed: int) -> dict:
  """Each saved policy against greedy-by-the-learned-simulator, paired:
  the comparison an agent trained in that simulator has to win."""
  if "greedy" not in returns:
    return {}
  return {name: {env: paired_differences(
      {name: returns[name][env], "greedy": returns["greedy"][env]}, name,
      seed)["greedy"] for env in ENVIRONMENTS} for name in agents}


def _logged_estimates(setting: _Setting, result: dict,
                      stochastic_specs: dict, return_to_go: dict,
                      num_logged_sessions: int, n_bootstrap: int,
                      num_episodes: int) -> None:
  """Runs the estimators on a logging run in the world, into `result`,
  with the targeted simulator (`targeted`) on `num_episodes` episodes."""
  world = setting.models["world"]
  decisions = logged.log_decisions(
      world, setting.logs_dir, num_logged_sessions, setting.seed + 1000,
      batch_size=setting.batch_size, log_split=setting.log_split,
      consecutive_skip_limit=setting.skip_limit)
  env = setting.env(batch_size=1)
  limit = env.environment.consecutive_skip_limit
  targets = {n: make_policy(n, env, stochastic=stochastic_specs,
                            seed=setting.seed)
             for n in stochastic_specs}
  world_probs = logged.candidate_listen_probabilities(world, decisions)
  model_probs = logged.candidate_listen_probabilities(setting.scorer,
                                                      decisions)
  target_probs = logged.target_probabilities(decisions, targets)
  truth = {n: result["policies"][n]["world"]["mean_return"]
           for n in stochastic_specs}
  estimates, target_info = logged.check_estimators(
      decisions, targets, world_probs, model_probs, truth, return_to_go,
      limit, seed=setting.seed, n_bootstrap=n_bootstrap,
      leaving_model=setting.leaving, candidate_probabilities=target_probs)

  def simulate(name: str, delta: float) -> tuple[float, float, float]:
    shifted = targeted.ListenShiftedModel(setting.models["simulator"], delta)
    run = _run(setting, name, "simulator", shifted, {}, stochastic_specs,
               num_episodes)
    summary = summarize_run(run, setting.seed)
    return summary["mean_return"], summary["ci_low"], summary["ci_high"]
  estimates["targeted_simulator"] = targeted.targeted_estimates(
      target_probs, model_probs, estimates["dr"], truth, simulate)
  if estimates["targeted_simulator"].get("logging", {}).get("estimate", 0) > 0:
    estimates["anchored_simulator"] = targeted.anchored_estimates(
        estimates["targeted_simulator"], "logging",
        bootstrap_mean(decisions.session_returns(), setting.seed), truth)
  result["estimators"] = estimates
  result["targets"] = target_info
  result["logged_decisions"] = {"sessions": decisions.num_sessions,
                                "decisions": int(len(decisions.slots))}
  for est_name, by_target in estimates.items():
    result["agreement"][est_name] = agreement(
        {n: r["estimate"] for n, r in by_target.items()},
        {n: r["truth"] for n, r in by_target.items()})
    errors = [r["relative_error"] for r in by_target.values()
              if r["relative_error"] is not None]
    result["agreement"][est_name]["max_relative_error"] = (
        max(errors) if errors else None)


def _setting(logs_dir: str, user_model_path: str, seed: int,
             batch_size: int, leaving_model: bool,
             log_split: LogSplit | None, skip_limit: int | None) -> _Setting:
  """Loads the models: one per role (the simulator's environment, the
  greedy scorer, the world), and the simulator's session end."""
  tracks = find_log_files(logs_dir)[1]
  model_cls = (LiteRTUserModel if user_model_path.endswith(".tflite") else
               KerasUserModel)
  models = {"simulator": model_cls(user_model_path, tracks),
            "world": _world_model()}
  # The session end of the agents' learned simulator: the same N and
  # leaving model (`learned_session_end`), so the estimates are of the
  # simulator the agents trained in.
  end = learned_session_end(logs_dir, user_model_path, skip_limit,
                            leaving_model)
  return _Setting(logs_dir, seed, batch_size, models,
                  model_cls(user_model_path, tracks), end.leaving_model,
                  log_split, end.consecutive_skip_limit, end)


def _write(result: dict, root_dir: str, report: bool) -> dict:
  """Writes evaluation.json, then the report (whose paths it then holds)."""
  result["report"] = None
  write_json(os.path.join(root_dir, "evaluation.json"), result)
  if report:
    result["report"] = write_report(result, root_dir)
    write_json(os.path.join(root_dir, "evaluation.json"), result)
  return result


@gin.configurable(denylist=["root_dir", "logs_dir", "user_model_path",
                            "saved_policies", "seed"])
def evaluate_policies(root_dir: str, logs_dir: str, user_model_path: str,
                      saved_policies: dict[str, str] | None = None,
                      seed: int = 0, num_episodes: int = 2000,
                      baselines: Sequence[str] = ("random", "popularity",
                                                  "cosine", "greedy"),
                      stochastic: Sequence[str] = tuple(DEFAULT_STOCHASTIC),
                      num_logged_sessions: int = 3000, batch_size: int = 64,
                      n_bootstrap: int = 500, report: bool = True,
                      leaving_model: bool = True,
                      split_by: str | None = None,
                      holdout_fraction: float = 0.2, split_seed: int = 0,
                      consecutive_skip_limit: int | None = None) -> dict:
  """Evaluates the policies and writes evaluation.json (and the report).

  Args:
    root_dir: output folder.
    logs_dir: the logs (sessions.parquet, tracks.parquet) whose held-out
      sessions give the episodes.
    user_model_path: the learned simulator, a LiteRT `.tflite` file
      (`scripts/quantize_user_model.py`) or a `.keras` file.
    saved_policies: name -> SavedModel folder (`train_eval`'s
      root_dir/policy), checked before anything runs
      (`playlist_sim.evaluation.saved_policies`).
    seed: seed of the episodes, the policies and the bootstraps.
    num_episodes: episodes per policy and environment.
    baselines: baselines evaluated ("greedy": greedy by the simulator).
    stochastic: names from `DEFAULT_STOCHASTIC` evaluated (and checked with
      the logged-data estimators).
    num_logged_sessions: sessions of the logging run for the estimators (0
      skips the estimators).
    batch_size: listeners simulated at once.
    n_bootstrap: bootstrap replicates of the estimators' intervals.
    report: also write report.md and its plots.
    leaving_model: the simulator's listeners leave with the leaving model
      saved beside the user model (`leaving_model.json`, written by
      train_user_model and copied by quantize; `playlist_sim.data.leaving`), if
      there is one; False: they leave only by the consecutive-skip limit.
    split_by: "session" or "user": the split whose held-out part gives the
      episodes (with `holdout_fraction`, `split_seed`); use the one the user
      model trained on. None: `LogEpisodeSampler`'s own settings (gin).
    holdout_fraction: share held out (with `split_by`).
    split_seed: seed of the split (with `split_by`).
    consecutive_skip_limit: skips in a row that end a session, in every
      environment; None: estimated from the logs, as for the agents'
      learned simulator (`playlist_sim.data.session_end`).

  Returns:
    The evaluation (as written to evaluation.json); its "report" holds the
    report's paths, or None without a report. Its "split" is the split the
    episodes came from.

  Raises:
    PolicyInputError: for a saved policy whose name shadows a built-in
      one, whose folder is missing or not a TF-Agents policy, or that was
      saved for another observation or action spec.
    ValueError: for an unknown `split_by` or a `holdout_fraction` outside
      [0, 1).
  """
  log_split = (None if split_by is None else
               LogSplit(split_by, holdout_fraction, split_seed))
  saved = dict(saved_policies or {})
  saved_specs = check_policy_folders(
      saved, set(baselines) | set(stochastic) | set(DEFAULT_STOCHASTIC))
  root_dir = ensure_writable_dir(root_dir)
  start = time.perf_counter()
  setting = _setting(logs_dir, user_model_path, seed, batch_size,
                     leaving_model, log_split, consecutive_skip_limit)
  probe = setting.env(batch_size=1)
  for name in saved:
    check_policy_specs(name, saved_specs[name], probe.observation_spec(),
                       probe.action_spec())
  stochastic_specs = {n: DEFAULT_STOCHASTIC[n] for n in stochastic}
  notes = []
  if leaving_model and setting.leaving is None:
    notes.append(f"no {LEAVING_MODEL_FILE} beside the user model: the "
                 "simulator's listeners leave only by the skip limit")
  policies, return_to_go, returns = _run_policies(
      setting, list(baselines) + list(saved) + list(stochastic), saved,
      stochastic_specs, num_episodes)
  result = {"num_episodes": num_episodes, "seed": seed, "logs_dir": logs_dir,
            "user_model_path": user_model_path, "saved_policies": saved,
            "notes": notes, "policies": policies,
            "leaving_model": (None if setting.leaving is None else
                              setting.leaving.to_json()),
            "split": probe.environment.episode_sampler.split_settings,
            "paired": _paired_with_greedy(returns, list(saved), seed)}
  result["agreement"] = {"simulator": agreement(
      {n: m["simulator"]["mean_return"] for n, m in policies.items()},
      {n: m["world"]["mean_return"] for n, m in policies.items()})}
  if num_logged_sessions and stochastic_specs:
    _logged_estimates(setting, result, stochastic_specs, return_to_go,
                      num_logged_sessions, n_bootstrap, num_episodes)
  result["consecutive_skip_limit"] = setting.skip_limit
  result["session_end"] = setting.session_end.to_json()
  # The report's legend describes each stochastic policy from its spec.
  result["stochastic_specs"] = {n: dataclasses.asdict(s)
                                for n, s in stochastic_specs.items()}
  result["wall_seconds"] = time.perf_counter() - start
  return _write(result, root_dir, report)


def format_table(evaluation: dict) -> str:
  """A plain-text table: every policy, both environments, with intervals."""
  lines = [f"{'policy':<16} {'simulator return [95% CI]':>28} "
           f"{'world return [95% CI]':>28} {'world skip rate':>16}"]
  for name, by_env in evaluation["policies"].items():
    cells = []
    for env_name in ENVIRONMENTS:
      m = by_env[env_name]
      cells.append(f"{m['mean_return']:7.3f} [{m['ci_low']:6.3f}, "
                   f"{m['ci_high']:6.3f}]")
    skip = by_env["world"]["skip_rate"]
    lines.append(f"{name:<16} {cells[0]:>28} {cells[1]:>28} "
                 f"{skip['mean']:>6.3f} [{skip['ci_low']:.3f}, "
                 f"{skip['ci_high']:.3f}]")
  for name, by_env in (evaluation.get("paired") or {}).items():
    p = by_env["world"]
    lines.append(f"{name} - greedy in the world, paired: "
                 f"{p['difference']:+.3f} [{p['ci95'][0]:+.3f}, "
                 f"{p['ci95'][1]:+.3f}] ({100 * p['gain']:+.1f}%)")
  agree = evaluation.get("agreement", {})
  for est_name, a in agree.items():
    lines.append(f"agreement {est_name:<14} spearman {a['spearman']:+.3f}  "
                 f"kendall {a['kendall']:+.3f}  ({a['num_policies']} "
                 "policies)")
  return "\n".join(lines)
