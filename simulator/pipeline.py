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
   (`simulator.evaluation.evaluate_policies`).

`quick` changes sizes only (`QUICK` below, overridable in gin): the code path
is the same. `root_dir/pipeline.json` lists the results and where every
artefact went.
"""

import os
import time

import gin

from agents import train_eval as _train_eval  # noqa: F401  (gin: train_eval)
from simulator.evaluation.evaluate import evaluate_policies, format_table
from simulator.io_utils import ensure_writable_dir, write_json
from simulator.log_generation import generate_logs
from user_models.quantization import quantize_user_model
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


def _train_agents(root_dir: str, logs_dir: str, int8_path: str,
                  agent_config: str, agents: tuple[str, ...], sizes: dict,
                  seed: int, split_by: str) -> dict:
  """Trains each agent in the learned simulator; returns name -> policy dir."""
  from simulator.runs import parse_gin  # pylint: disable=g-import-not-at-top
  # The agent config (episodes from the logs) is parsed only now that the
  # logs exist; the paths this run made replace the config's defaults.
  parse_gin([agent_config], agent_gin_bindings(logs_dir, int8_path,
                                               split_by))
  policies, metrics = {}, {}
  for agent in agents:
    agent_dir = os.path.join(root_dir, agent)
    metrics[agent] = _train_eval.train_eval(
        agent_dir, agent_name=agent, seed=seed,
        num_iterations=sizes[f"{agent}_iterations"],
        initial_collect_steps=sizes["initial_collect_steps"],
        eval_interval=sizes[f"{agent}_iterations"],
        num_eval_episodes=sizes["agent_eval_episodes"],
        final_eval_episodes=sizes["agent_eval_episodes"],
        checkpoint_interval=sizes[f"{agent}_iterations"],
        checkpoint_replay_buffer=sizes["checkpoint_replay_buffer"],
        baselines=("popularity", "greedy_oracle"), progress=False)
    policies[agent] = os.path.join(agent_dir, "policy")
  return {"policies": policies, "metrics": {
      a: {k: m.get(k) for k in ("final_eval_return", "wall_time_s",
                                "global_step")} for a, m in metrics.items()}}


@gin.configurable(denylist=["root_dir", "quick", "seed"])
def run_pipeline(root_dir: str, quick: bool = False, seed: int = 0,
                 agents: tuple[str, ...] = ("ahdqn", "dqn"),
                 agent_config: str = "configs/ahdqn.gin",
                 split_by: str = "user",
                 sizes: dict | None = None,
                 quick_sizes: dict | None = None) -> dict:
  """Runs every stage and returns the summary.

  Args:
    root_dir: output folder.
    quick: the `quick_sizes`, same code path.
    seed: seed of every stage.
    agents: agents trained (names of `agents.train_eval.AGENTS`).
    agent_config: gin file of the agents' environments.
    split_by: "user" or "session": how every stage splits the logs into
      training and held-out parts (the user model's `split_by`; bound to
      `LogEpisodeSampler.split_by` for the agents and the evaluation).
    sizes: overrides of `DEFAULT_SIZES`.
    quick_sizes: overrides of `QUICK_SIZES`.

  Returns:
    The summary written to root_dir/pipeline.json.

  Raises:
    ValueError: for an unknown `split_by`.
  """
  if split_by not in ("user", "session"):
    raise ValueError(f"split_by must be 'user' or 'session', got {split_by!r}")
  root_dir = ensure_writable_dir(root_dir)
  chosen = ({**QUICK_SIZES, **(quick_sizes or {})} if quick else
            {**DEFAULT_SIZES, **(sizes or {})})
  summary = {"quick": quick, "seed": seed, "split_by": split_by,
             "sizes": chosen, "stages": {}, "seconds": {}}
  stages, seconds = summary["stages"], summary["seconds"]
  clock = time.perf_counter()

  def lap(stage):
    nonlocal clock
    now = time.perf_counter()
    seconds[stage] = round(now - clock, 1)
    clock = now

  stages["logs"] = os.path.join(root_dir, "logs")
  summary["logs"] = generate_logs(stages["logs"],
                                  num_sessions=chosen["num_sessions"],
                                  seed=seed, progress=False)
  lap("logs")
  stages["user_model"] = os.path.join(root_dir, "user_model")
  summary["user_model"] = train_user_model(
      stages["user_model"], stages["logs"], model_type="cwm", seed=seed,
      split_by=split_by, max_epochs=chosen["max_epochs"])
  lap("user_model")
  stages["quantize"] = os.path.join(root_dir, "quantized")
  report = quantize_user_model(
      summary["user_model"]["model_path"], stages["logs"], stages["quantize"],
      seed=seed, variants=("fp32", "int8"),
      return_episodes=chosen["quantize_episodes"])
  summary["quantization"] = report["variants"]
  int8_path = os.path.join(stages["quantize"], "user_model.int8.tflite")
  lap("quantize")
  saved = {}
  if agents:
    trained = _train_agents(root_dir, stages["logs"], int8_path, agent_config,
                            tuple(agents), chosen, seed, split_by)
    saved = trained["policies"]
    summary["agents"] = trained["metrics"]
    for agent, path in saved.items():
      stages[agent] = path
    lap("agents")
  stages["evaluate"] = os.path.join(root_dir, "evaluation.json")
  # The evaluation's play modes come from the split the model trained on.
  gin.bind_parameter("LogEpisodeSampler.split_by", split_by)
  evaluation = evaluate_policies(
      root_dir, stages["logs"], int8_path, saved_policies=saved, seed=seed,
      num_episodes=chosen["num_episodes"],
      num_logged_sessions=chosen["num_logged_sessions"])
  stages["report"] = (evaluation["report"] or {}).get("report")
  lap("evaluate")
  summary["policies"] = evaluation["policies"]
  summary["agreement"] = evaluation["agreement"]
  summary["total_seconds"] = round(sum(seconds.values()), 1)
  write_json(os.path.join(root_dir, "pipeline.json"),
             {k: v for k, v in summary.items() if k != "policies"})
  return summary


def format_summary(summary: dict) -> str:
  """The summary table (every policy, both environments, intervals)."""
  return format_table(summary)
