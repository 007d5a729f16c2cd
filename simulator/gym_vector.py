"""The natively batched simulator as a `gymnasium.vector.VectorEnv`.

`PlaylistVectorEnv` exposes a `PlaylistEnvironment` of batch size N as N
Gymnasium sub-environments that step together: one user-model call per step
for all of them, no copies of the environment, no worker processes.

Semantics follow Gymnasium 1.x's vector API:

* spaces: `single_observation_space` / `single_action_space` are those of
  `simulator.gym_adapter.PlaylistGymEnv`; `observation_space` /
  `action_space` batch them (`gymnasium.vector.utils.batch_space`).
* autoreset: `metadata["autoreset_mode"]` is `AutoresetMode.NEXT_STEP`, the
  core's own convention: the step after a sub-environment terminates resets
  it, ignores its action, and returns its first observation with reward 0
  and `terminated = truncated = False`.
* infos: dicts of arrays, each with its `_key` mask: `action_mask` (int8
  [N, K], every step, for masked policies) and, for the sub-environments
  that just ended, `termination_reason` (object [N]).
* seeding: `reset(seed=s)` reseeds the core's generator, so the episodes of
  all sub-environments repeat for the same seed.

    import gymnasium
    import simulator.gym_adapter  # registers PlaylistSim-v0
    envs = gymnasium.make_vec("PlaylistSim-v0", num_envs=8,
                              vectorization_mode="vector_entry_point",
                              gin_file="configs/simulate.gin")
"""

import os
from collections.abc import Sequence
from typing import Any

import gin
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from tf_agents.trajectories import time_step as ts

from simulator.builder import EnvironmentBuilder
from simulator.environment import PlaylistEnvironment
from simulator.gym_adapter import PlaylistSpaces
from simulator.tracker import TERMINATION_REASONS

__all__ = ["PlaylistVectorEnv", "make_gym_vector_env"]

_FIRST, _LAST = int(ts.StepType.FIRST), int(ts.StepType.LAST)
_PathLike = str | os.PathLike


class PlaylistVectorEnv(VectorEnv):
  """N listeners of one batched `PlaylistEnvironment` as a VectorEnv.

  Attributes:
    environment: the wrapped `PlaylistEnvironment` (batch size N).
    num_envs: N.
  """

  metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

  def __init__(self, environment: PlaylistEnvironment):
    """Wraps `environment`.

    Args:
      environment: a `PlaylistEnvironment`; its batch size is `num_envs`.

    Raises:
      TypeError: if `environment` is not a `PlaylistEnvironment`.
    """
    if not isinstance(environment, PlaylistEnvironment):
      raise TypeError("PlaylistVectorEnv wraps a PlaylistEnvironment, got "
                      f"{type(environment).__name__}")
    self.environment = environment
    self.num_envs = int(environment.batch_size)
    self._spaces = PlaylistSpaces(environment)
    self.single_observation_space = self._spaces.observation_space
    self.single_action_space = self._spaces.action_space
    self.observation_space = batch_space(self.single_observation_space,
                                         self.num_envs)
    self.action_space = batch_space(self.single_action_space, self.num_envs)
    seed = environment.seed
    self._np_random = np.random.default_rng(seed)
    self._np_random_seed = seed if isinstance(seed, (int, np.integer)) else -1
    self._started = False

  def _infos(self, obs: dict, ended: np.ndarray | None,
             reasons: np.ndarray | None) -> dict[str, Any]:
    every = np.ones(self.num_envs, bool)
    infos: dict[str, Any] = {"action_mask": obs["candidate_mask"].copy(),
                             "_action_mask": every}
    if ended is not None and ended.any():
      names = np.full(self.num_envs, None, dtype=object)
      names[ended] = [TERMINATION_REASONS[int(r)] for r in reasons[ended]]
      infos.update(termination_reason=names, _termination_reason=ended)
    return infos

  def action_masks(self) -> np.ndarray:
    """bool [N, K]: the candidates still available in each sub-environment."""
    if not self._started:
      raise RuntimeError("call reset() before action_masks()")
    return self._mask.astype(bool)

  def reset(self, *, seed: int | None = None,
            options: dict[str, Any] | None = None
            ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Starts new sessions in every sub-environment.

    Args:
      seed: reseeds the simulator's generator; None continues it.
      options: unused (accepted for API compatibility).

    Returns:
      (observations, infos) with infos["action_mask"] int8 [N, K].
    """
    del options  # The simulator has no per-episode options.
    super().reset(seed=seed)
    self.environment.reseed(self.np_random)
    obs = self._spaces.observations(self.environment.reset().observation)
    self._mask = obs["candidate_mask"]
    self._started = True
    return obs, self._infos(obs, None, None)

  def step(self, actions: Any) -> tuple[dict[str, np.ndarray], np.ndarray,
                                        np.ndarray, np.ndarray,
                                        dict[str, Any]]:
    """Steps every sub-environment (next-step autoreset, see the module).

    Args:
      actions: a batch of `num_envs` actions of `single_action_space`.

    Returns:
      (observations, rewards float64 [N], terminations, truncations, infos).

    Raises:
      RuntimeError: if called before `reset()`.
      ActionError: if the actions do not fit the action space.
    """
    if not self._started:
      raise RuntimeError("PlaylistVectorEnv.step() called before reset()")
    result = self.environment.step(
        self._spaces.to_env_action(actions, self.num_envs))
    obs = self._spaces.observations(result.observation)
    self._mask = obs["candidate_mask"]
    step_type = np.asarray(result.step_type)
    terminated = step_type == _LAST
    rewards = np.where(step_type == _FIRST, 0.0,
                       np.asarray(result.reward, np.float64))
    return (obs, rewards, terminated, np.zeros(self.num_envs, bool),
            self._infos(obs, terminated,
                        np.asarray(result.termination_reason)))

  def close_extras(self, **kwargs) -> None:
    """Flushes and closes the episode tracker, if any."""
    del kwargs
    if self.environment.tracker is not None:
      self.environment.tracker.close()


def make_gym_vector_env(num_envs: int = 8,
                        gin_file: _PathLike | Sequence[_PathLike] | None = None,
                        *, gin_bindings: Sequence[str] | None = None,
                        **env_kwargs) -> PlaylistVectorEnv:
  """Builds a `PlaylistVectorEnv` of `num_envs` listeners through gin.

  Args:
    num_envs: sub-environments (the core's batch size).
    gin_file: gin file(s) to parse first; None uses the parsed config.
    gin_bindings: extra gin bindings parsed after the file(s).
    **env_kwargs: passed to the environment constructor (e.g. seed).

  Returns:
    The vector environment.

  Raises:
    ValueError: for num_envs < 1 or a batch_size in env_kwargs that differs.
  """
  if int(num_envs) < 1:
    raise ValueError(f"num_envs must be at least 1, got {num_envs}")
  if env_kwargs.setdefault("batch_size", int(num_envs)) != int(num_envs):
    raise ValueError(f"batch_size={env_kwargs['batch_size']} contradicts "
                     f"num_envs={num_envs}; pass num_envs only")
  if gin_file is not None:
    files = ([gin_file] if isinstance(gin_file, (str, os.PathLike))
             else list(gin_file))
    for path in files:
      gin.parse_config_file(os.fspath(path))
  if gin_bindings:
    gin.parse_config(list(gin_bindings))
  return PlaylistVectorEnv(EnvironmentBuilder().build(**env_kwargs))
