"""The playlist simulator: environment, samplers, tracker, builder, logs."""

from user_models import _keras2  # noqa: F401  (must run before TensorFlow)
from simulator.builder import EnvironmentBuilder
from simulator.builder import TFAgtPyEnvironment
from simulator.environment import AbstractEnvironment
from simulator.environment import PlaylistEnvironment
from simulator.environment import StepResult
from simulator.environment import playlist_observation_spec
from simulator.episode_sampler import AbstractEpisodeSampler
from simulator.episode_sampler import PlayModes
from simulator.episode_sampler import RandomEpisodeSampler
from simulator.log_episodes import LogEpisodeSampler
from simulator.log_episodes import consecutive_skip_limit_from_logs
from simulator.track_sampler import AbstractTrackSampler
from simulator.track_sampler import ActionError
from simulator.track_sampler import ContinuousTrackSampler
from simulator.track_sampler import DiscreteTrackSampler
from simulator.tracker import EpisodeTracker
from simulator.tracker import TERMINATION_REASONS

__all__ = [
    "AbstractEnvironment",
    "AbstractEpisodeSampler",
    "AbstractTrackSampler",
    "ActionError",
    "ContinuousTrackSampler",
    "DiscreteTrackSampler",
    "EnvironmentBuilder",
    "EpisodeTracker",
    "LogEpisodeSampler",
    "PlayModes",
    "PlaylistEnvironment",
    "RandomEpisodeSampler",
    "StepResult",
    "TERMINATION_REASONS",
    "TFAgtPyEnvironment",
    "consecutive_skip_limit_from_logs",
    "playlist_observation_spec",
]
