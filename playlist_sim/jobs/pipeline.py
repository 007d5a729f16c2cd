"""The one-command pipeline: world -> logs -> user model -> int8 -> agents
-> evaluation, end to end.

Stages, on the gin-configured world (`configs/world.gin` by default):

1. logs: session logs from the stochastic logging policy in the world;
2. user_model: a CWM trained on them (held-out metrics), on the training
   users' sessions (`split_by`, "user" by default, as in the agent configs);
3. quantize: LiteRT fp32 and int8 versions and the quantisation report;
4. agents: AH-DQN and DQN trained in the learned simulator (the int8 CWM) on
   the training users' play modes, with `agents.train_eval.train_eval` and
   the agent config (`configs/ahdqn.gin`), each exporting
   root_dir/<agent>/policy;
5. evaluate: every policy (baselines, greedy by the simulator, the agents,
   stochastic variants) on held-out play modes (of the held-out users, or of
   held-out sessions with `split_by="session"`) in the learned simulator and in
   the listener world, the logged-data estimators against the world, the
   offline-online agreement and the report
   (`playlist_sim.evaluation.evaluate_policies`).

`quick` changes sizes only (`QUICK` below, overridable in gin): the code path
is the same. `root_dir/pipeline.json` lists the results and where every
artefact went.
"""

import os

import gin

from agents import train_eval as _train_eval  # noqa: F401  (gin: train_eval)
from playlist_sim.evaluation.evaluate import evaluate_policies, format_table
from playlist_sim.common.io_utils import ensure_writable_dir, write_json
from playlist_sim.jobs.log_generation import generate_logs
from playlist_sim.common.runs import parse_gin
from playlist_sim.jobs.stages import StageRunner
from playlist_sim.jobs.quantization import quantize_user_model
from user_models.training import train_user_model

__all__ = ["DEFAULT_SIZES", "QUICK_SIZES", "agent_gin_bindings",
           "format_summary", "gin_binding", "run_pipeline"]

#: Sizes of the default run (about 30 minutes on 2 cores at most).
DEFAULT_SIZES = {
    "num_sessions": 20000, "num_episodes": 2000, "num_logged_sessions": 3000,
    "quantize_episodes": 1000, "ahdqn_iterations": 6000,
    "dqn_iterations": 2000, "initial_collect_steps": 12800,
    "agent_eval_episodes": 500, "max_epochs": 40,
    "checkpoint_replay_buffer": True,
}
#: Sizes of `--quick` (at most 5 minutes on 2 cores).
QUICK_SIZES = {
    "num_sessions": 20000, "num_episodes": 400, "num_logged_sessions": 800,
    "quantize_episodes": 100, "ahdqn_iterations": 300, "dqn_iterations": 150,
    "initial_collect_steps": 2560, "agent_eval_episodes": 100,
    "max_epochs": 15, "checkpoint_replay_buffer": False,
}


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


def agent_gin_bindings(logs_dir: str, int8_path: str,
                       split_by: str) -> list[str]:
  """The bindings that point the agent config at this run's files."""
  sessions = os.path.join(logs_dir, "sessions.parquet")
  tracks = os.path.join(logs_dir, "tracks.parquet")
  return [
      gin_binding("SESSIONS", sessions), gin_binding("TRACKS", tracks),
      gin_binding("USER_MODEL_PATH", int8_path),
      "train/EnvironmentBuilder.user_model = @LiteRTUserModel()",
      gin_binding("LiteRTUserModel.model_path", int8_path),
      gin_binding("LiteRTUserModel.catalog", tracks),
      # The user model's split, whatever the agent config says.
      gin_binding("LogEpisodeSampler.split_by", split_by)]


def _parse_agent_config(logs_dir: str, int8_path: str, agent_config: str,
                        split_by: str) -> None:
  """Parses the agent config, pointed at the files this run made."""
  # The agent config (episodes from the logs) is parsed only now that the
  # logs exist; the paths this run made replace the config's defaults.
  parse_gin([agent_config], agent_gin_bindings(logs_dir, int8_path, split_by))


def _train_agent(agent_dir: str, agent: str, sizes: dict, seed: int) -> dict:
  """Trains one agent in the learned simulator; its summary figures."""
  metrics = _train_eval.train_eval(
      agent_dir, agent_name=agent, seed=seed,
      num_iterations=sizes[f"{agent}_iterations"],
      initial_collect_steps=sizes["initial_collect_steps"],
      eval_interval=sizes[f"{agent}_iterations"],
      num_eval_episodes=sizes["agent_eval_episodes"],
      final_eval_episodes=sizes["agent_eval_episodes"],
      # A few checkpoints, so that a rerun after Ctrl-C resumes the training
      # (only the latest is kept).
      checkpoint_interval=max(1, sizes[f"{agent}_iterations"] // 5),
      checkpoint_replay_buffer=sizes["checkpoint_replay_buffer"],
      baselines=("popularity", "greedy_oracle"), progress=True)
  return {k: metrics.get(k) for k in ("final_eval_return", "wall_time_s",
                                      "global_step")}


@gin.configurable(denylist=["root_dir", "quick", "seed"])
def run_pipeline(root_dir: str, quick: bool = False, seed: int = 0,
                 agents: tuple[str, ...] = ("ahdqn", "dqn"),
                 agent_config: str = "configs/ahdqn.gin",
                 split_by: str = "user",
                 sizes: dict | None = None,
                 quick_sizes: dict | None = None) -> dict:
  """Runs every stage and returns the summary.

  Each stage's folder holds its own run.json (see `playlist_sim.jobs.stages`): a
  rerun reuses the stages that finished, and resumes agent training from its
  checkpoints.

  Args:
    root_dir: output folder.
    quick: the `quick_sizes`, same code path.
    seed: seed of every stage.
    agents: agents trained (names of `agents.train_eval.AGENTS`).
    agent_config: gin file of the agents' environments (a path or a shipped
      config's name).
    split_by: "user" or "session": how every stage splits the logs into
      training and held-out parts (the user model's `split_by`; bound to
      `LogEpisodeSampler.split_by` for the agents and the evaluation).
    sizes: overrides of `DEFAULT_SIZES`.
    quick_sizes: overrides of `QUICK_SIZES`.

  Returns:
    The summary written to root_dir/pipeline.json.

  Raises:
    ValueError: for an unknown `split_by`.
    RunFolderError: if a stage's folder holds another run.
  """
  if split_by not in ("user", "session"):
    raise ValueError(f"split_by must be 'user' or 'session', got {split_by!r}")
  root_dir = ensure_writable_dir(root_dir)
  chosen = ({**QUICK_SIZES, **(quick_sizes or {})} if quick else
            {**DEFAULT_SIZES, **(sizes or {})})
  summary = {"quick": quick, "seed": seed, "split_by": split_by,
             "sizes": chosen, "stages": {}}
  stages = summary["stages"]
  runner = StageRunner("pipeline", ["logs", "user_model", "quantize",
                                    *agents, "evaluate"], root_dir)
  base = {"sizes": chosen, "seed": seed, "split_by": split_by,
          "gin": gin.config_str()}

  stages["logs"] = os.path.join(root_dir, "logs")
  summary["logs"] = runner.run(
      "logs", stages["logs"], "generate_logs", base,
      lambda: generate_logs(stages["logs"], seed=seed, progress=True,
                            num_sessions=chosen["num_sessions"]),
      f"generating {chosen['num_sessions']} sessions in the listener world")
  stages["user_model"] = os.path.join(root_dir, "user_model")
  summary["user_model"] = runner.run(
      "user_model", stages["user_model"], "train_user_model", base,
      lambda: train_user_model(
          stages["user_model"], stages["logs"], model_type="cwm", seed=seed,
          split_by=split_by, max_epochs=chosen["max_epochs"]),
      "training the CWM user model on the logs")
  stages["quantize"] = os.path.join(root_dir, "quantized")
  summary["quantization"] = runner.run(
      "quantize", stages["quantize"], "quantize", base,
      lambda: quantize_user_model(
          summary["user_model"]["model_path"], stages["logs"],
          stages["quantize"], seed=seed, variants=("fp32", "int8"),
          return_episodes=chosen["quantize_episodes"])["variants"],
      "converting it to LiteRT fp32 and int8")
  int8_path = os.path.join(stages["quantize"], "user_model.int8.tflite")
  saved = {}
  if agents:
    _parse_agent_config(stages["logs"], int8_path, agent_config, split_by)
    summary["agents"] = {}
    for agent in agents:
      agent_dir = os.path.join(root_dir, agent)
      summary["agents"][agent] = runner.run(
          agent, agent_dir, "train_agent", {**base, "agent": agent},
          lambda agent=agent, agent_dir=agent_dir: _train_agent(
              agent_dir, agent, chosen, seed),
          f"training {agent} in the learned simulator "
          f"({chosen[f'{agent}_iterations']} steps)")
      saved[agent] = stages[agent] = os.path.join(agent_dir, "policy")
  stages["evaluate"] = os.path.join(root_dir, "evaluation.json")
  # The evaluation's play modes come from the split the model trained on.
  gin.bind_parameter("LogEpisodeSampler.split_by", split_by)
  evaluation = runner.run_here(
      "evaluate", lambda: evaluate_policies(
          root_dir, stages["logs"], int8_path, saved_policies=saved,
          seed=seed, num_episodes=chosen["num_episodes"],
          num_logged_sessions=chosen["num_logged_sessions"]),
      "every policy in the simulator and the world, and the estimators")
  stages["report"] = (evaluation["report"] or {}).get("report")
  summary["seconds"] = runner.seconds
  summary["policies"] = evaluation["policies"]
  summary["agreement"] = evaluation["agreement"]
  summary["total_seconds"] = round(sum(runner.seconds.values()), 1)
  write_json(os.path.join(root_dir, "pipeline.json"),
             {k: v for k, v in summary.items() if k != "policies"})
  return summary


def format_summary(summary: dict) -> str:
  """The summary table (every policy, both environments, intervals)."""
  return format_table(summary)
