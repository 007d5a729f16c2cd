"""The one-command pipeline: world -> logs -> user model -> int8 -> agents
-> evaluation, end to end.

Stages, on the gin-configured world (`configs/world.gin` by default):

1. logs: session logs from the stochastic logging policy in the world;
2. user_model: a CWM trained on them (held-out metrics), on the training
   users' sessions (`split_by`, "user" by default, as in the agent configs),
   with propensity weights (`propensity_window`) and, in the default sizes,
   as one CWM distilled from the average of 3 CWMs of consecutive training
   seeds (`sizes["ensemble_size"]`, `sizes["distill"]`; docs/model_bias.md
   says why);
3. quantize: LiteRT fp32 and int8 versions and the quantisation report;
4. agents: AH-DQN and DQN trained in the learned simulator (the int8 CWM) on
   the training users' play modes, with `agents.train_eval.train_eval` and
   each agent's own config (`configs/ahdqn.gin`, `configs/dqn.gin`), each
   exporting root_dir/<agent>/policy;
5. evaluate: every policy (baselines, greedy by the simulator, the agents,
   stochastic variants) on held-out play modes (of the held-out users, or of
   held-out sessions with `split_by="session"`) in the learned simulator and in
   the listener world, the logged-data estimators against the world, the
   offline-online agreement and the report
   (`playlist_sim.evaluation.evaluate_policies`).

`quick` changes sizes only (`QUICK_SIZES`, overridable in gin): the code
path is the same. `root_dir/pipeline.json` lists the results and where every
artefact went.

Each stage is a function of a `PipelineSpec` (`playlist_sim.jobs.
pipeline_spec`) and of the files the stages before it made, and passes the
spec's values on as arguments: the split goes to training, quantisation, the
agents' environments and the evaluation alike. Gin is parsed at the edge
(the command) and read by the stages as configuration only; the agent config
is the exception: it is parsed inside the agent stage, with this run's files
and split bound, and dropped when the stage ends (`isolated_gin_config`), so
no other stage reads what it binds.
"""

import os

import gin

from agents import train_eval as _train_eval  # noqa: F401  (gin: train_eval)
from playlist_sim.common.io_utils import ensure_writable_dir, write_json
from playlist_sim.common.runs import isolated_gin_config, parse_gin
from playlist_sim.data.sessions import consecutive_skip_limit_from_logs
from playlist_sim.evaluation.evaluate import evaluate_policies, format_table
from playlist_sim.jobs.log_generation import generate_logs
from playlist_sim.jobs.pipeline_spec import DEFAULT_PROPENSITY_WINDOW
from playlist_sim.jobs.pipeline_spec import DEFAULT_SIZES, QUICK_SIZES
from playlist_sim.jobs.pipeline_spec import PipelineSpec
from playlist_sim.jobs.quantization import quantize_user_model
from playlist_sim.jobs.stages import StageRunner
from user_models.training import train_user_model

__all__ = ["DEFAULT_SIZES", "PipelineSpec", "QUICK_SIZES",
           "agent_gin_bindings", "agent_stage_config",
           "check_no_overridden_bindings", "evaluate_stage", "format_summary",
           "gin_binding", "logs_stage", "quantize_stage", "run_pipeline",
           "run_stages", "skip_limit", "train_agent_stage",
           "user_model_stage"]

#: What an agent stage reports of its run's metrics.json.
_AGENT_STAGE_KEYS = ("final_eval_return", "wall_time_s", "global_step",
                     "setup_s", "loop_seconds", "export_s",
                     "final_comparison_s")


def gin_binding(name: str, value) -> str:
  """`name = value` as gin text, the value written as a Python literal.

  Values are quoted by `repr`, never pasted between quotes: a folder named
  `it's` would otherwise end the string early (and a crafted one inject
  bindings).

  Raises:
    TypeError: for a value that is not a str, int, float, bool or None.
  """
  if value is not None and not isinstance(value, (str, int, float, bool)):
    raise TypeError(f"gin binding {name}: cannot write a "
                    f"{type(value).__name__} as a gin literal")
  return f"{name} = {value!r}"


def agent_gin_bindings(logs_dir: str, int8_path: str, split_by: str,
                       holdout_fraction: float = 0.2, split_seed: int = 0,
                       consecutive_skip_limit: int | None = None
                       ) -> list[str]:
  """The bindings that point the agent config at this run's files and split.

  Args:
    logs_dir: the logs (sessions.parquet, tracks.parquet).
    int8_path: the learned simulator the agents train in.
    split_by: the user model's split, whatever the agent config says.
    holdout_fraction: its share held out.
    split_seed: its seed.
    consecutive_skip_limit: if given, the environments' skip limit
      (replacing the config's).

  Returns:
    gin binding strings.
  """
  sessions = os.path.join(logs_dir, "sessions.parquet")
  tracks = os.path.join(logs_dir, "tracks.parquet")
  bindings = [
      gin_binding("SESSIONS", sessions), gin_binding("TRACKS", tracks),
      gin_binding("USER_MODEL_PATH", int8_path),
      "train/EnvironmentBuilder.user_model = @LiteRTUserModel()",
      gin_binding("LiteRTUserModel.model_path", int8_path),
      gin_binding("LiteRTUserModel.catalog", tracks),
      gin_binding("LogEpisodeSampler.split_by", split_by),
      gin_binding("LogEpisodeSampler.holdout_fraction", holdout_fraction),
      gin_binding("LogEpisodeSampler.split_seed", split_seed)]
  if consecutive_skip_limit is not None:
    bindings.append(gin_binding("PlaylistEnvironment.consecutive_skip_limit",
                                consecutive_skip_limit))
  return bindings


def logs_stage(spec: PipelineSpec) -> dict:
  """Session logs of the world's logging policy, into `spec.logs_dir`."""
  return generate_logs(spec.logs_dir, seed=spec.seed, progress=True,
                       num_sessions=spec.sizes["num_sessions"])


def user_model_stage(spec: PipelineSpec) -> dict:
  """The CWM (an ensemble of `sizes["ensemble_size"]`, distilled into one
  CWM if `sizes["distill"]`; propensity-weighted over
  `spec.propensity_window` choices), trained on the training part of
  `spec.split`."""
  return train_user_model(spec.user_model_dir, spec.logs_dir,
                          model_type="cwm", seed=spec.seed,
                          max_epochs=spec.sizes["max_epochs"],
                          ensemble_size=spec.sizes["ensemble_size"],
                          distill=spec.sizes["distill"],
                          propensity_window=spec.propensity_window,
                          **spec.split.as_kwargs())


#: train_user_model's settings the pipeline passes itself, with where a
#: pipeline run sets them instead (a binding of them would be ignored).
_PIPELINE_SETS = {
    "model_type": "nothing (the pipeline trains a CWM)",
    "seed": "--seed",
    "max_epochs": "run_pipeline.sizes = {'max_epochs': N}, or quick_sizes "
                  "with --quick",
    "ensemble_size": "run_pipeline.sizes = {'ensemble_size': N}, or "
                     "quick_sizes with --quick",
    "distill": "run_pipeline.sizes = {'distill': True}",
    "propensity_window": "run_pipeline.propensity_window",
    "split_by": "run_pipeline.split_by",
    "holdout_fraction": "run_pipeline.holdout_fraction",
    "split_seed": "nothing (the pipeline splits with seed 0)"}


def check_no_overridden_bindings() -> None:
  """Refuses gin bindings of train_user_model that the pipeline overrides.

  Raises:
    ValueError: naming each such binding and the pipeline's own setting.
  """
  bound = []
  for name, instead in _PIPELINE_SETS.items():
    try:
      gin.query_parameter(f"train_user_model.{name}")
    except ValueError:
      continue
    bound.append(f"train_user_model.{name} (set {instead})")
  if bound:
    raise ValueError(
        "the pipeline sets these train_user_model parameters itself, so the "
        f"gin bindings would be ignored: {', '.join(bound)}; remove them")


def quantize_stage(spec: PipelineSpec, model_path: str) -> dict:
  """LiteRT fp32 and int8 versions of the model, checked on the held-out
  part of `spec.split` (the sessions it never fit); the variants' report."""
  return quantize_user_model(
      model_path, spec.logs_dir, spec.quantize_dir, seed=spec.seed,
      variants=("fp32", "int8"),
      return_episodes=spec.sizes["quantize_episodes"],
      consecutive_skip_limit=spec.consecutive_skip_limit,
      **spec.split.as_kwargs())["variants"]


def skip_limit(spec: PipelineSpec) -> int:
  """The skip limit of the agents' and the evaluation's environments: the
  spec's, else the logs' (`consecutive_skip_limit_from_logs`, the default
  of `configs/log_episodes.gin`)."""
  if spec.consecutive_skip_limit is not None:
    return int(spec.consecutive_skip_limit)
  return int(consecutive_skip_limit_from_logs(spec.sessions_path))


def train_agent_stage(spec: PipelineSpec, agent: str, limit: int) -> dict:
  """Trains one agent in the learned simulator; its summary figures.

  The agent's environments are built by `train_eval` from the agent config
  (gin scopes train/eval). That config is parsed here, not at the edge,
  because it binds the shared environment classes (`EnvironmentBuilder`,
  `LogEpisodeSampler`, `PlaylistEnvironment`) that the log generation and
  the evaluation build too; inside `isolated_gin_config` its bindings, and
  this run's files, split and skip limit bound over it, live only while the
  agent trains.

  Args:
    spec: the run.
    agent: the agent's name.
    limit: the environments' consecutive-skip limit (`skip_limit`).

  Returns:
    `_AGENT_STAGE_KEYS` of its metrics: the result, and where the stage's
    time went (setup, the loop's phases, export, final evaluation).
  """
  iterations = spec.sizes[f"{agent}_iterations"]
  with isolated_gin_config():
    parse_gin([spec.agent_config_for(agent)], agent_gin_bindings(
        spec.logs_dir, spec.int8_path, spec.split.split_by,
        spec.split.holdout_fraction, spec.split.split_seed, limit))
    metrics = _train_eval.train_eval(
        spec.agent_dir(agent), agent_name=agent, seed=spec.seed,
        num_iterations=iterations,
        initial_collect_steps=spec.sizes["initial_collect_steps"],
        eval_interval=iterations,
        num_eval_episodes=spec.sizes["agent_eval_episodes"],
        final_eval_episodes=spec.sizes["agent_eval_episodes"],
        # A few checkpoints, so that a rerun after Ctrl-C resumes the
        # training (only the latest is kept).
        checkpoint_interval=max(1, iterations // 5),
        checkpoint_replay_buffer=spec.sizes["checkpoint_replay_buffer"],
        # The evaluate stage compares every policy and baseline on more
        # episodes: comparing here too would only repeat part of it.
        baselines=(), progress=True)
  return {k: metrics.get(k) for k in _AGENT_STAGE_KEYS}


def agent_stage_config(spec: PipelineSpec, agent: str) -> str:
  """The gin text of an agent's config, hashed with its stage's config.

  A finished agent stage is reused only if its config file still says the
  same (an edited `configs/ahdqn.gin`, or another `agent_config`, makes the
  stage's folder refuse the run rather than hand back the old policy). The
  run's own file bindings are left out: they follow from the spec, which is
  hashed already, and leaving them out keeps a moved run folder reusable.
  """
  with isolated_gin_config():
    parse_gin([spec.agent_config_for(agent)], [])
    return gin.config_str()


def evaluate_stage(spec: PipelineSpec, saved: dict[str, str],
                   limit: int) -> dict:
  """Every policy on the held-out part of `spec.split`, in the int8
  simulator and in the world, and the estimators (`evaluate_policies`)."""
  return evaluate_policies(
      spec.root_dir, spec.logs_dir, spec.int8_path, saved_policies=saved,
      seed=spec.seed, num_episodes=spec.sizes["num_episodes"],
      num_logged_sessions=spec.sizes["num_logged_sessions"],
      consecutive_skip_limit=limit, **spec.split.as_kwargs())


@gin.configurable(denylist=["root_dir", "quick", "seed", "overwrite"])
def run_pipeline(root_dir: str, quick: bool = False, seed: int = 0,
                 agents: tuple[str, ...] = ("ahdqn", "dqn"),
                 agent_config: str | None = None,
                 split_by: str = "user",
                 sizes: dict | None = None,
                 quick_sizes: dict | None = None,
                 holdout_fraction: float = 0.2,
                 consecutive_skip_limit: int | None = None,
                 propensity_window: int = DEFAULT_PROPENSITY_WINDOW,
                 overwrite: bool = False) -> dict:
  """Runs every stage and returns the summary.

  Each stage's folder holds its own run.json (see `playlist_sim.jobs.stages`):
  a rerun reuses the stages that finished, and resumes agent training from
  its checkpoints.

  Args:
    root_dir: output folder.
    quick: the `quick_sizes`, same code path.
    seed: seed of every stage.
    agents: agents trained (names of `agents.train_eval.AGENTS`).
    agent_config: gin file every agent trains with (a path or a shipped
      config's name); None (default): each agent's own shipped config
      (`configs/ahdqn.gin`, `configs/dqn.gin`).
    split_by: "user" or "session": how every stage splits the logs into
      training and held-out parts (the user model trains on the training
      part; quantisation, the agents' environments and the evaluation are
      given the same split).
    sizes: overrides of `DEFAULT_SIZES` (`{"ensemble_size": 1,
      "distill": False}` trains one CWM instead of distilling three).
    quick_sizes: overrides of `QUICK_SIZES`.
    holdout_fraction: share of users (or sessions) held out, every stage.
    consecutive_skip_limit: skips in a row that end a session in the
      agents' and the evaluation's environments; None: from the logs.
    propensity_window: the user model's `propensity_window` (0: trained
      without propensity weights).
    overwrite: run every stage again from an empty folder (--overwrite)
      instead of reusing or resuming it.

  Returns:
    The summary written to root_dir/pipeline.json.

  Raises:
    ValueError: for an unknown `split_by`, a `holdout_fraction` outside
      [0, 1), a bad size or window, or a gin binding of a train_user_model
      parameter the pipeline sets itself (`check_no_overridden_bindings`).
    RunFolderError: if a stage's folder holds another run.
  """
  check_no_overridden_bindings()
  spec = PipelineSpec.build(
      ensure_writable_dir(root_dir), quick=quick, seed=seed, agents=agents,
      agent_config=agent_config, split_by=split_by,
      holdout_fraction=holdout_fraction, sizes=sizes,
      quick_sizes=quick_sizes, consecutive_skip_limit=consecutive_skip_limit,
      propensity_window=propensity_window)
  return run_stages(spec, overwrite)


def run_stages(spec: PipelineSpec, overwrite: bool = False) -> dict:
  """Runs the stages of `spec` in order (see `run_pipeline`)."""
  sizes = spec.sizes
  summary = {"quick": spec.quick, "seed": spec.seed,
             "split_by": spec.split.split_by, "split": spec.split.as_kwargs(),
             "sizes": dict(sizes), "stages": {}}
  stages = summary["stages"]
  runner = StageRunner("pipeline", ["logs", "user_model", "quantize",
                                    *spec.agents, "evaluate"], spec.root_dir,
                       overwrite)
  base = {**spec.stage_config(), "gin": gin.config_str()}
  stages["logs"] = spec.logs_dir
  summary["logs"] = runner.run(
      "logs", spec.logs_dir, "generate_logs", base, lambda: logs_stage(spec),
      f"generating {sizes['num_sessions']} sessions in the listener world")
  stages["user_model"] = spec.user_model_dir
  summary["user_model"] = runner.run(
      "user_model", spec.user_model_dir, "train_user_model", base,
      lambda: user_model_stage(spec),
      f"training the user model on the logs ({sizes['ensemble_size']} "
      f"CWM{'s' if sizes['ensemble_size'] > 1 else ''}"
      f"{', distilled into one' if sizes['distill'] else ''})")
  stages["quantize"] = spec.quantize_dir
  summary["quantization"] = runner.run(
      "quantize", spec.quantize_dir, "quantize", base,
      lambda: quantize_stage(spec, summary["user_model"]["model_path"]),
      "converting it to LiteRT fp32 and int8")
  limit = skip_limit(spec)
  saved = {}
  if spec.agents:
    summary["agents"] = {}
  for agent in spec.agents:
    summary["agents"][agent] = runner.run(
        agent, spec.agent_dir(agent), "train_agent",
        {**base, "agent": agent,
         "agent_gin": agent_stage_config(spec, agent)},
        lambda agent=agent: train_agent_stage(spec, agent, limit),
        f"training {agent} in the learned simulator "
        f"({sizes[f'{agent}_iterations']} steps)")
    saved[agent] = stages[agent] = spec.policy_dir(agent)
  stages["evaluate"] = spec.evaluation_path
  evaluation = runner.run_here(
      "evaluate", lambda: evaluate_stage(spec, saved, limit),
      "every policy in the simulator and the world, and the estimators")
  stages["report"] = (evaluation["report"] or {}).get("report")
  summary["seconds"] = runner.seconds
  summary["policies"] = evaluation["policies"]
  summary["agreement"] = evaluation["agreement"]
  summary["paired"] = evaluation.get("paired", {})
  summary["total_seconds"] = round(sum(runner.seconds.values()), 1)
  write_json(os.path.join(spec.root_dir, "pipeline.json"),
             {k: v for k, v in summary.items() if k != "policies"})
  return summary


def format_summary(summary: dict) -> str:
  """The summary table (every policy, both environments, intervals)."""
  return format_table(summary)
