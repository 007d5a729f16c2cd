"""Playlist agents and baseline policies."""

from user_models import _keras2  # noqa: F401  (must run before TensorFlow)
from agents.baselines import BASELINES
from agents.baselines import ScoringPyPolicy
from agents.baselines import make_baseline_policy

__all__ = ["BASELINES", "ScoringPyPolicy", "make_baseline_policy"]

from agents.baselines import GreedyUserModelPolicy  # noqa: E402
from agents.baselines import context_from_observation  # noqa: E402
from agents.networks import ActionHeadQNetwork  # noqa: E402
from agents.ahdqn import candidate_mask_splitter  # noqa: E402
from agents.ahdqn import create_ahdqn_agent  # noqa: E402
from agents.ahdqn import make_q_agent  # noqa: E402
from agents.dqn import create_dqn_agent  # noqa: E402
from agents.dqn import create_dqn_network  # noqa: E402
from agents.ppo import create_ppo_agent  # noqa: E402
from agents.score_features import UserModelScoreWrapper  # noqa: E402

__all__ += ["ActionHeadQNetwork", "GreedyUserModelPolicy",
            "candidate_mask_splitter", "context_from_observation",
            "create_ahdqn_agent", "create_dqn_agent", "create_dqn_network",
            "create_ppo_agent", "make_q_agent", "UserModelScoreWrapper"]
