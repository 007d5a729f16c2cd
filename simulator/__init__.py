"""The playlist simulator: environment, samplers, tracker, builder, logs.

The names below load on first use (module `__getattr__`), so NumPy-only parts
such as `playlist_sim.evaluation.estimators` import without TensorFlow.
"""

import importlib
import os
import sys
from typing import Any

# TF-Agents needs Keras 2; TensorFlow reads this when tf.keras is first used.
# If TensorFlow is already loaded, `user_models._keras2` checks that it is not
# too late (and says what to do); it also runs before any name below loads.
if "tensorflow" in sys.modules:
  importlib.import_module("user_models._keras2")
else:
  os.environ["TF_USE_LEGACY_KERAS"] = "1"

_LAZY_NAMES = {
    "AbstractEnvironment": "simulator.environment",
    "AbstractEpisodeSampler": "simulator.episode_sampler",
    "AbstractTrackSampler": "simulator.track_sampler",
    "ActionError": "simulator.track_sampler",
    "ContinuousTrackSampler": "simulator.track_sampler",
    "DiscreteTrackSampler": "simulator.track_sampler",
    "EnvironmentBuilder": "simulator.builder",
    "EpisodeTracker": "simulator.tracker",
    "LeavingModel": "playlist_sim.data.leaving",
    "LogEpisodeSampler": "simulator.log_episodes",
    "PlayModes": "simulator.episode_sampler",
    "PlaylistEnvironment": "simulator.environment",
    "RandomEpisodeSampler": "simulator.episode_sampler",
    "StepResult": "simulator.environment",
    "TERMINATION_REASONS": "simulator.tracker",
    "TFAgtPyEnvironment": "simulator.builder",
    "consecutive_skip_limit_from_logs": "simulator.log_episodes",
    "fit_leaving_model": "playlist_sim.data.leaving",
    "load_leaving_model": "playlist_sim.data.leaving",
    "playlist_observation_spec": "simulator.environment",
}

__all__ = [
    "AbstractEnvironment",
    "AbstractEpisodeSampler",
    "AbstractTrackSampler",
    "ActionError",
    "ContinuousTrackSampler",
    "DiscreteTrackSampler",
    "EnvironmentBuilder",
    "EpisodeTracker",
    "LeavingModel",
    "LogEpisodeSampler",
    "PlayModes",
    "PlaylistEnvironment",
    "RandomEpisodeSampler",
    "StepResult",
    "TERMINATION_REASONS",
    "TFAgtPyEnvironment",
    "consecutive_skip_limit_from_logs",
    "fit_leaving_model",
    "load_leaving_model",
    "playlist_observation_spec",
]


def __getattr__(name: str) -> Any:
  if name not in _LAZY_NAMES:
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
  importlib.import_module("user_models._keras2")
  value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
  globals()[name] = value
  return value


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(__all__))
