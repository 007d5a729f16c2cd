"""TF-Agents wrapper and the builder that composes an environment.

`EnvironmentBuilder` takes an environment constructor and the four parts (all
gin-configurable) and gives a TF-Agents `PyEnvironment` (`get_py_env`) or
`TFPyEnvironment` (`get_tf_env`). With `configs/simulate.gin` parsed,
`EnvironmentBuilder().get_py_env()` needs no argument.
"""

from typing import Callable

import gin
import numpy as np
from tf_agents.environments import py_environment
from tf_agents.environments import tf_py_environment
from tf_agents.trajectories import time_step as ts

from simulator.environment import AbstractEnvironment, PlaylistEnvironment, StepResult
from playlist_sim.data.leaving import LeavingModel
from simulator.episode_sampler import AbstractEpisodeSampler
from simulator.track_sampler import AbstractTrackSampler
from simulator.tracker import EpisodeTracker
from user_models.base import AbstractUserModel

__all__ = ["EnvironmentBuilder", "TFAgtPyEnvironment"]


class TFAgtPyEnvironment(py_environment.PyEnvironment):
  """A TF-Agents `PyEnvironment` over a batched `AbstractEnvironment`.

  The wrapped environment resets finished rows itself, so the base class's
  whole-batch auto reset is switched off. Discount is 0 on LAST steps: every
  way a session ends (skips, full playlist, empty pool) is a true end.

  With `unbatched=True` and batch size 1 the leading dimension is dropped, so
  the environment can go into TF-Agents' `BatchedPyEnvironment` (the slow
  list-of-environments baseline).
  """

  def __init__(self, environment: AbstractEnvironment, unbatched: bool = False):
    """Wraps `environment`.

    Args:
      environment: a batched environment such as `PlaylistEnvironment`.
      unbatched: drop the batch dimension (needs batch_size 1).

    Raises:
      ValueError: if unbatched is asked for with batch_size > 1.
    """
    if unbatched and environment.batch_size != 1:
      raise ValueError("unbatched=True needs an environment with batch_size "
                       f"1, got {environment.batch_size}")
    super().__init__(handle_auto_reset=False)
    self.environment = environment
    self._unbatched = bool(unbatched)
    self._discount_on_last = np.float32(0.0)

  @property
  def batched(self) -> bool:
    return not self._unbatched

  @property
  def batch_size(self):
    return None if self._unbatched else self.environment.batch_size

  def observation_spec(self):
    return self.environment.observation_space

  def action_spec(self):
    return self.environment.action_space

  def _to_time_step(self, result: StepResult) -> ts.TimeStep:
    last = result.step_type == int(ts.StepType.LAST)
    time_step = ts.TimeStep(
        step_type=result.step_type.astype(np.int32),
        reward=result.reward.astype(np.float32),
        discount=np.where(last, self._discount_on_last,
                          np.float32(1.0)).astype(np.float32),
        observation=result.observation)
    if self._unbatched:
      time_step = ts.TimeStep(*(
          {k: v[0] for k, v in x.items()} if isinstance(x, dict) else x[0]
          for x in time_step))
    return time_step

  def _reset(self) -> ts.TimeStep:
    return self._to_time_step(self.environment.reset())

  def _step(self, action) -> ts.TimeStep:
    action = np.asarray(action)
    if self._unbatched:
      action = action[None]
    return self._to_time_step(self.environment.step(action))

  def get_info(self):
    return {}

  def close(self) -> None:
    tracker = getattr(self.environment, "tracker", None)
    if tracker is not None:
      tracker.close()


@gin.configurable
class EnvironmentBuilder:
  """Composes an environment from its constructor and four parts."""

  def __init__(self,
               env_ctor: Callable[..., AbstractEnvironment] = PlaylistEnvironment,
               user_model: AbstractUserModel | None = gin.REQUIRED,
               track_sampler: AbstractTrackSampler | None = gin.REQUIRED,
               episode_sampler: AbstractEpisodeSampler | None = gin.REQUIRED,
               episode_tracker: EpisodeTracker | None = None,
               leaving_model: LeavingModel | None = None):
    """Stores the parts.

    Args:
      env_ctor: called as env_ctor(user_model=..., track_sampler=...,
        episode_sampler=..., episode_tracker=..., **kwargs).
      user_model: the user model (gin: `EnvironmentBuilder.user_model`).
      track_sampler: the track sampler.
      episode_sampler: the episode sampler.
      episode_tracker: an episode tracker, or None.
      leaving_model: when set, passed to env_ctor as `leaving_model` (P(leave)
        for a learned user model; `playlist_sim.data.leaving`). Bound on the builder
        rather than on `PlaylistEnvironment` so that a gin scope
        (`train/EnvironmentBuilder.leaving_model`) gives it to the learned
        simulator only, never to the world.

    Raises:
      ValueError: if a part is missing.
    """
    for name, part in (("user_model", user_model),
                       ("track_sampler", track_sampler),
                       ("episode_sampler", episode_sampler)):
      if part is None or part is gin.REQUIRED:
        raise ValueError(
            f"EnvironmentBuilder needs a {name}: pass it or bind "
            f"EnvironmentBuilder.{name} in gin (see configs/simulate.gin)")
    self.env_ctor = env_ctor
    self.user_model = user_model
    self.track_sampler = track_sampler
    self.episode_sampler = episode_sampler
    self.episode_tracker = episode_tracker
    self.leaving_model = leaving_model

  def build(self, **env_kwargs) -> AbstractEnvironment:
    """The bare batched environment (keyword arguments go to env_ctor)."""
    if self.leaving_model is not None:
      env_kwargs.setdefault("leaving_model", self.leaving_model)
    return self.env_ctor(user_model=self.user_model,
                         track_sampler=self.track_sampler,
                         episode_sampler=self.episode_sampler,
                         episode_tracker=self.episode_tracker, **env_kwargs)

  def get_py_env(self, unbatched: bool = False,
                 **env_kwargs) -> TFAgtPyEnvironment:
    """A TF-Agents PyEnvironment (see `TFAgtPyEnvironment`)."""
    return TFAgtPyEnvironment(self.build(**env_kwargs), unbatched=unbatched)

  def get_tf_env(self, **env_kwargs) -> tf_py_environment.TFPyEnvironment:
    """A TF-Agents TFPyEnvironment over `get_py_env()`."""
    return tf_py_environment.TFPyEnvironment(self.get_py_env(**env_kwargs))
