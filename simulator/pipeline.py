"""The one-command pipeline: every stage that exists, end to end.

Stages, on the gin-configured world (`configs/world.gin` by default):

1. logs: session logs from the stochastic logging policy in the world;
2. user_model: a CWM trained on them (held-out metrics vs the world's own);
3. quantize: LiteRT fp32 and int8 versions and the quantisation report;
4. evaluate: every baseline on the held-out logged sessions, in the learned
   simulator (the int8 CWM, the offline estimate) and in the listener world
   (the online truth), on the same episodes (common random numbers), with
   bootstrap 95% intervals.

Agents and logged-data estimators join as they land. `root_dir/pipeline.json`
lists the results and where every artefact went.
"""

import os

import gin
import numpy as np

from agents.baselines import BASELINES
from simulator.evaluation.simulated import run_on_logged_sessions
from simulator.io_utils import ensure_writable_dir, write_json
from simulator.log_generation import generate_logs
from user_models.listener import ParametricListener
from user_models.litert_user_model import LiteRTUserModel
from user_models.quantization import quantize_user_model
from user_models.training import train_user_model
from user_models.world import SyntheticWorld

__all__ = ["format_summary", "mean_interval", "run_pipeline"]


def mean_interval(values: np.ndarray, seed: int = 0, n_bootstrap: int = 2000,
                  alpha: float = 0.05) -> tuple[float, float, float]:
  """Mean and bootstrap (1 - alpha) percentile interval of the mean."""
  values = np.asarray(values, dtype=np.float64)
  rng = np.random.default_rng(seed)
  means = rng.choice(values, size=(n_bootstrap, len(values))).mean(axis=1)
  low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
  return float(values.mean()), float(low), float(high)


def _evaluate(user_model, logs_dir: str, policy_name: str, episodes: int,
              seed: int, scorer=None) -> dict:
  """Mean return with a bootstrap interval, and session figures."""
  stats = run_on_logged_sessions(user_model, logs_dir, policy_name, episodes,
                                 seed, scorer)
  mean, low, high = mean_interval(stats.returns, seed=seed)
  summary = stats.summary()
  return {"mean_return": mean, "ci_low": low, "ci_high": high,
          "mean_length": summary["mean_length"],
          "skip_rate": summary["skip_rate"],
          "num_episodes": summary["num_episodes"]}


@gin.configurable(denylist=["root_dir", "quick", "seed"])
def run_pipeline(root_dir: str, quick: bool = False, seed: int = 0,
                 num_episodes: int = 2000, quick_num_episodes: int = 300,
                 num_sessions: int = 20000, quick_num_sessions: int = 4000,
                 policies: tuple[str, ...] = BASELINES + ("greedy",)) -> dict:
  """Runs every available stage and returns the summary.

  Args:
    root_dir: output folder.
    quick: smaller sizes, same code path.
    seed: seed of every stage.
    num_episodes: evaluation episodes per policy and environment.
    quick_num_episodes: the same with `quick`.
    num_sessions: sessions of the generated logs.
    quick_num_sessions: the same with `quick`.
    policies: policies evaluated (`greedy` is greedy by the learned model).

  Returns:
    The summary written to root_dir/pipeline.json.
  """
  root_dir = ensure_writable_dir(root_dir)
  episodes = quick_num_episodes if quick else num_episodes
  summary = {"quick": quick, "seed": seed, "stages": {}, "policies": {}}
  stages = summary["stages"]

  stages["logs"] = os.path.join(root_dir, "logs")
  summary["logs"] = generate_logs(
      stages["logs"], num_sessions=quick_num_sessions if quick else
      num_sessions, seed=seed)
  stages["user_model"] = os.path.join(root_dir, "user_model")
  summary["user_model"] = train_user_model(
      stages["user_model"], stages["logs"], model_type="cwm", seed=seed)
  stages["quantize"] = os.path.join(root_dir, "quantized")
  report = quantize_user_model(
      summary["user_model"]["model_path"], stages["logs"], stages["quantize"],
      seed=seed, variants=("fp32", "int8"),
      return_episodes=episodes // 2 if quick else episodes)
  summary["quantization"] = report["variants"]

  tracks = os.path.join(stages["logs"], "tracks.parquet")
  int8_path = os.path.join(stages["quantize"], "user_model.int8.tflite")
  with gin.config_scope("world"):
    world = SyntheticWorld()
  for policy in policies:
    summary["policies"][policy] = {}
    for name in ("simulator", "world"):
      simulator_model = LiteRTUserModel(int8_path, tracks)
      user_model = (simulator_model if name == "simulator" else
                    ParametricListener(world))
      summary["policies"][policy][name] = _evaluate(
          user_model, stages["logs"], policy, episodes, seed,
          scorer=LiteRTUserModel(int8_path, tracks))
  write_json(os.path.join(root_dir, "pipeline.json"), summary)
  return summary


def format_summary(summary: dict) -> str:
  """A plain-text table of the summary, one line per policy and env."""
  lines = [f"{'policy':<12} {'environment':<11} {'mean return':>11} "
           f"{'95% interval':>17} {'length':>7} {'skip rate':>9}"]
  for policy, by_env in summary["policies"].items():
    for env_name, m in by_env.items():
      lines.append(
          f"{policy:<12} {env_name:<11} {m['mean_return']:>11.3f} "
          f"[{m['ci_low']:>7.3f}, {m['ci_high']:>7.3f}] "
          f"{m['mean_length']:>7.2f} {m['skip_rate']:>9.3f}")
  return "\n".join(lines)
