"""Playlist agents and baseline policies."""

from user_models import _keras2  # noqa: F401  (must run before TensorFlow)
from agents.baselines import BASELINES
from agents.baselines import ScoringPyPolicy
from agents.baselines import make_baseline_policy

__all__ = ["BASELINES", "ScoringPyPolicy", "make_baseline_policy"]
