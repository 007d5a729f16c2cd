"""What one pipeline run is: the values every stage receives.

`PipelineSpec` is built once, at the edge (`run_pipeline`, from its
arguments and gin), and handed to each stage function of
`playlist_sim.jobs.pipeline`. A stage reads what it needs from the spec and
passes it on as arguments (the split to training, quantisation, the agents'
environments and the evaluation; the files of the stages before it), so no
stage depends on a gin binding another stage made.

    spec = PipelineSpec.build("runs/pipeline", quick=True, split_by="user")
    spec.logs_dir, spec.int8_path, spec.policy_dir("ahdqn")
"""

import dataclasses
import os
import types
from typing import Any, Mapping

from playlist_sim.data.checks import check_count
from playlist_sim.data.sessions import LogSplit
from user_models.training import MAX_ENSEMBLE_SIZE

__all__ = ["DEFAULT_PROPENSITY_WINDOW", "DEFAULT_SIZES", "PipelineSpec",
           "QUICK_SIZES"]

#: Sizes of the default run (about 30 minutes on 2 cores at most).
#: 60,000 logged sessions: on 20,000 the leaving model's position slope
#: (fitted on positions 10-19, extrapolated to 1-9) and the training seed's
#: luck each moved the learned simulator's returns by up to 10% on some
#: worlds (docs/model_bias.md). The user model: `ensemble_size` CWMs from
#: training seeds seed..seed+N-1, averaged, then (`distill`) one more CWM
#: fitted to their average and served alone. The average removes the
#: training seed's luck; served as it is it would multiply the cost of every
#: simulator step by N, distilled it costs one CWM's (chosen on the dev
#: world 101: docs/model_bias.md, "Distilling the ensemble into one CWM").
DEFAULT_SIZES = {
    "num_sessions": 60000, "num_episodes": 2000, "num_logged_sessions": 3000,
    "quantize_episodes": 1000, "ahdqn_iterations": 6000,
    "dqn_iterations": 2000, "initial_collect_steps": 12800,
    "agent_eval_episodes": 500, "max_epochs": 40, "ensemble_size": 3,
    "distill": True, "checkpoint_replay_buffer": True,
}
#: Sizes of `--quick` (at most 5 minutes on 2 cores).
QUICK_SIZES = {
    "num_sessions": 20000, "num_episodes": 400, "num_logged_sessions": 800,
    "quantize_episodes": 100, "ahdqn_iterations": 300, "dqn_iterations": 150,
    "initial_collect_steps": 2560, "agent_eval_episodes": 100,
    "max_epochs": 15, "ensemble_size": 1, "distill": False,
    "checkpoint_replay_buffer": False,
}
#: The user model's propensity window (`train_user_model.propensity_window`):
#: training rows weighted towards a policy that sees only the model's inputs
#: over the last 10 choices (docs/model_bias.md). The pipeline's logs come
#: from the world, whose logging policy writes the `propensity` column.
DEFAULT_PROPENSITY_WINDOW = 10


@dataclasses.dataclass(frozen=True)
class PipelineSpec:
  """One pipeline run: folder, seed, split, sizes and agents.

  Attributes:
    root_dir: the run's folder; every stage's output is below it.
    seed: seed of every stage.
    split: how every stage splits the logs into training and held-out parts.
    sizes: the run's sizes (keys of `DEFAULT_SIZES`), read-only.
    agents: agents trained (names of `agents.train_eval.AGENTS`).
    agent_config: gin file of every agent's training; None (default): each
      agent's own shipped config (`agent_config_for`).
    quick: whether `sizes` came from `QUICK_SIZES`.
    consecutive_skip_limit: skips in a row that end a session in the
      agents' and the evaluation's environments; None: derived from the
      logs once they exist (`consecutive_skip_limit_from_logs`).
    propensity_window: the user model's propensity window (0: unweighted).
  """
  root_dir: str
  seed: int = 0
  split: LogSplit = LogSplit("user")
  sizes: Mapping[str, Any] = dataclasses.field(
      default_factory=lambda: dict(DEFAULT_SIZES))
  agents: tuple[str, ...] = ("ahdqn", "dqn")
  agent_config: str | None = None
  quick: bool = False
  consecutive_skip_limit: int | None = None
  propensity_window: int = DEFAULT_PROPENSITY_WINDOW

  def __post_init__(self):
    missing = sorted(set(DEFAULT_SIZES) - set(self.sizes))
    if missing:
      raise ValueError(f"pipeline sizes lack {missing}: give every key of "
                       "DEFAULT_SIZES (or override only some, through "
                       "run_pipeline's sizes / quick_sizes)")
    if not isinstance(self.split, LogSplit):
      raise TypeError(f"split must be a LogSplit, got "
                      f"{type(self.split).__name__}")
    check_count("sizes['ensemble_size']", self.sizes["ensemble_size"],
                maximum=MAX_ENSEMBLE_SIZE, owner="run_pipeline")
    if self.sizes["distill"] and self.sizes["ensemble_size"] < 2:
      raise ValueError(
          "run_pipeline: sizes['distill'] needs sizes['ensemble_size'] >= 2 "
          f"(a teacher to distill), got {self.sizes['ensemble_size']}; for "
          "one CWM set run_pipeline.sizes = {'ensemble_size': 1, "
          "'distill': False}")
    check_count("propensity_window", self.propensity_window, minimum=0,
                owner="run_pipeline")
    if isinstance(self.agents, str):
      raise TypeError(f"agents must be a tuple of names, got the string "
                      f"{self.agents!r}")
    # Read-only copies: a stage cannot change what the next one sees.
    object.__setattr__(self, "sizes", types.MappingProxyType(dict(self.sizes)))
    object.__setattr__(self, "agents", tuple(self.agents))

  @classmethod
  def build(cls, root_dir: str, quick: bool = False, seed: int = 0,
            agents: tuple[str, ...] = ("ahdqn", "dqn"),
            agent_config: str | None = None, split_by: str = "user",
            holdout_fraction: float = 0.2, split_seed: int = 0,
            sizes: Mapping[str, Any] | None = None,
            quick_sizes: Mapping[str, Any] | None = None,
            consecutive_skip_limit: int | None = None,
            propensity_window: int = DEFAULT_PROPENSITY_WINDOW
            ) -> "PipelineSpec":
    """The spec of `run_pipeline`'s arguments.

    Args:
      root_dir: the run's folder.
      quick: take `QUICK_SIZES` (updated by `quick_sizes`) instead of
        `DEFAULT_SIZES` (updated by `sizes`).
      seed: seed of every stage.
      agents: agents trained.
      agent_config: gin file of every agent's training (None: each agent's
        own shipped config).
      split_by: "user" or "session".
      holdout_fraction: share of users (or sessions) held out.
      split_seed: seed of the split.
      sizes: overrides of `DEFAULT_SIZES`.
      quick_sizes: overrides of `QUICK_SIZES`.
      consecutive_skip_limit: see the class attributes.
      propensity_window: see the class attributes.

    Returns:
      The spec.

    Raises:
      ValueError: for an unknown `split_by` or a `holdout_fraction` outside
        [0, 1).
    """
    chosen = ({**QUICK_SIZES, **(quick_sizes or {})} if quick else
              {**DEFAULT_SIZES, **(sizes or {})})
    return cls(root_dir=root_dir, seed=seed,
               split=LogSplit(split_by, holdout_fraction, split_seed),
               sizes=chosen, agents=tuple(agents), agent_config=agent_config,
               quick=quick, consecutive_skip_limit=consecutive_skip_limit,
               propensity_window=propensity_window)

  @property
  def logs_dir(self) -> str:
    """The logs stage's folder (sessions.parquet, tracks.parquet)."""
    return os.path.join(self.root_dir, "logs")

  @property
  def sessions_path(self) -> str:
    return os.path.join(self.logs_dir, "sessions.parquet")

  @property
  def tracks_path(self) -> str:
    return os.path.join(self.logs_dir, "tracks.parquet")

  @property
  def user_model_dir(self) -> str:
    """The user-model stage's folder."""
    return os.path.join(self.root_dir, "user_model")

  @property
  def quantize_dir(self) -> str:
    """The quantisation stage's folder."""
    return os.path.join(self.root_dir, "quantized")

  @property
  def int8_path(self) -> str:
    """The learned simulator the agents train in and the evaluation uses."""
    return os.path.join(self.quantize_dir, "user_model.int8.tflite")

  @property
  def evaluation_path(self) -> str:
    return os.path.join(self.root_dir, "evaluation.json")

  def agent_dir(self, agent: str) -> str:
    """An agent stage's folder."""
    return os.path.join(self.root_dir, agent)

  def agent_config_for(self, agent: str) -> str:
    """The gin file an agent stage trains with: `agent_config` if given,
    else the agent's own shipped config (`configs/dqn.gin` for "dqn"), so
    that each agent trains with its own settings (DQN's discount is not
    AH-DQN's)."""
    return self.agent_config or f"configs/{agent}.gin"

  def policy_dir(self, agent: str) -> str:
    """The SavedModel an agent stage exports."""
    return os.path.join(self.agent_dir(agent), "policy")

  def stage_config(self) -> dict:
    """What decides the stages' results besides gin (hashed by the stage
    runner: a run folder made with other values is refused, not reused)."""
    config = {"sizes": dict(self.sizes), "seed": self.seed,
              "split_by": self.split.split_by}
    # Settings at their defaults stay out, so a folder made before they
    # were settings still matches and is reused.
    defaults = {"holdout_fraction": 0.2, "split_seed": 0,
                "consecutive_skip_limit": None,
                "propensity_window": DEFAULT_PROPENSITY_WINDOW}
    values = {"holdout_fraction": self.split.holdout_fraction,
              "split_seed": self.split.split_seed,
              "consecutive_skip_limit": self.consecutive_skip_limit,
              "propensity_window": self.propensity_window}
    config.update({k: v for k, v in values.items() if v != defaults[k]})
    return config
