"""Playlist agents and baseline policies."""

from user_models import _keras2  # noqa: F401  (must run before TensorFlow)
from agents.ahdqn import candidate_mask_splitter
from agents.ahdqn import create_ahdqn_agent
from agents.ahdqn import make_q_agent
from playlist_sim.policies.baselines import BASELINES
from playlist_sim.policies.baselines import GreedyUserModelPolicy
from playlist_sim.policies.baselines import ScoringPyPolicy
from playlist_sim.policies.baselines import context_from_observation
from playlist_sim.policies.baselines import make_baseline_policy
from agents.checkpointing import CheckpointError
from agents.checkpointing import RunCheckpointer
from agents.dqn import create_dqn_agent
from agents.dqn import create_dqn_network
from agents.environments import PREREQUISITES
from agents.environments import RunEvaluation
from agents.environments import eval_env_factory
from agents.environments import make_env
from agents.environments import scoped_builder
from agents.environments import scored_env
from agents.environments import split_mismatch
from agents.export import PolicyExportError
from agents.export import export_policy
from agents.export import portable_policy
from agents.export import recover_interrupted_export
from agents.lookahead_features import ModelLookaheadWrapper
from agents.networks import ActionHeadQNetwork
from agents.portable import PolicyLoadError
from agents.portable import ScoredTFPolicy
from agents.portable import load_policy
from agents.ppo import create_ppo_agent
from agents.run_loop import AgentSteps
from agents.run_loop import LoopSettings
from agents.run_loop import RunEnvironments
from agents.run_loop import run_agent
from playlist_sim.policies.score_features import UserModelScoreWrapper

__all__ = [
    "ActionHeadQNetwork", "AgentSteps", "BASELINES", "CheckpointError",
    "GreedyUserModelPolicy", "LoopSettings", "ModelLookaheadWrapper",
    "PREREQUISITES",
    "PolicyExportError", "PolicyLoadError", "RunCheckpointer",
    "RunEnvironments", "RunEvaluation", "ScoredTFPolicy", "ScoringPyPolicy",
    "UserModelScoreWrapper",
    "candidate_mask_splitter", "context_from_observation",
    "create_ahdqn_agent", "create_dqn_agent", "create_dqn_network",
    "create_ppo_agent", "eval_env_factory", "export_policy", "load_policy",
    "make_baseline_policy", "portable_policy", "make_env", "make_q_agent",
    "recover_interrupted_export", "run_agent", "scoped_builder", "scored_env",
    "split_mismatch",
]
