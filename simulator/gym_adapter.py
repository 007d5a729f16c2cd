"""Gymnasium adapter: one simulated listener as a `gymnasium.Env`.

`PlaylistGymEnv` wraps a `PlaylistEnvironment` built with batch_size 1 so that
libraries speaking the Gymnasium API (Stable-Baselines3, RLlib, CleanRL, ...)
can train on the simulator:

* observation space: a `spaces.Dict` mirroring the environment's array specs
  for one row. Bounded int and float specs become `Box`es with the spec's
  bounds and dtype (`user_features` has no bounds in the spec, so its Box is
  unbounded); the bool `candidate_mask` becomes `MultiBinary`, delivered as
  int8 0/1 (MultiBinary's dtype).
* action space: `Discrete(K)` for the discrete track sampler, `MultiDiscrete`
  ([K] * k) for slates, `Box` with the catalog's per-feature bounds for the
  continuous sampler.
* `terminated` is True on the step that ends the session. Every ending is a
  true end of the session (consecutive skips, full playlist, exhausted pool),
  so `truncated` is always False; `info["termination_reason"]` names the
  ending (see `simulator.tracker.TERMINATION_REASONS`). After it the caller
  must `reset()`, as Gymnasium requires; the batched environment's own
  auto-reset is never used.
* seeding: the adapter's `np_random` *is* the generator the simulator draws
  play modes and responses from, so `reset(seed=s)` makes the following
  episodes reproducible (and equal to those of a fresh environment built with
  `seed=s`). Without a seed the environment's configured seed applies.

Gymnasium is an optional dependency (`pip install -e ".[gym]"`); importing
`simulator` does not import this module.

Example:
  env = make_gym_env("configs/simulate.gin")
  obs, info = env.reset(seed=0)
  obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
"""

import os
from collections.abc import Sequence
from typing import Any

import gin
import numpy as np
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

try:
  import gymnasium
  from gymnasium import spaces
except ImportError as e:  # Keep gymnasium optional for TF-Agents-only users.
  raise ImportError(
      "simulator.gym_adapter needs gymnasium, which is an optional "
      'dependency: pip install -e ".[gym]"') from e

from simulator.builder import EnvironmentBuilder
# Registers LogEpisodeSampler with gin before a config naming it is parsed.
import simulator.log_episodes  # noqa: F401  pylint: disable=unused-import
from simulator.environment import PlaylistEnvironment, StepResult
from simulator.track_sampler import ActionError
from simulator.tracker import TERMINATION_REASONS

__all__ = [
    "PlaylistGymEnv",
    "action_spec_to_space",
    "make_gym_env",
    "observation_spec_to_space",
]

_LAST = int(ts.StepType.LAST)
_PathLike = str | os.PathLike


def _bounds(spec: array_spec.ArraySpec) -> tuple[np.ndarray, np.ndarray]:
  """Lower and upper bounds of `spec`, broadcast to its shape and dtype."""
  dtype = np.dtype(spec.dtype)
  if isinstance(spec, array_spec.BoundedArraySpec):
    low, high = spec.minimum, spec.maximum
  elif dtype.kind == "f":
    low, high = -np.inf, np.inf
  else:
    info = np.iinfo(dtype)
    low, high = info.min, info.max
  shape = tuple(spec.shape)
  return (np.broadcast_to(np.asarray(low, dtype), shape).copy(),
          np.broadcast_to(np.asarray(high, dtype), shape).copy())


def observation_spec_to_space(spec: array_spec.ArraySpec) -> spaces.Space:
  """The Gymnasium space of one observation entry.

  Args:
    spec: a TF-Agents (bounded) array spec of one row.

  Returns:
    `MultiBinary` for bool specs (observations are int8 0/1), else a `Box`
    with the spec's shape, dtype and bounds (unbounded where the spec is).

  Raises:
    ValueError: for a dtype that is neither bool, integer nor float.
  """
  dtype = np.dtype(spec.dtype)
  if dtype == np.bool_:
    # check_env and most libraries handle MultiBinary; a bool Box is not
    # supported by Gymnasium's Box.
    return spaces.MultiBinary(list(spec.shape))
  if dtype.kind not in "iuf":
    raise ValueError(f"observation spec {spec.name!r} has dtype {dtype}, which "
                     "has no Gymnasium space")
  low, high = _bounds(spec)
  return spaces.Box(low=low, high=high, shape=tuple(spec.shape), dtype=dtype)


def action_spec_to_space(spec: array_spec.BoundedArraySpec) -> spaces.Space:
  """The Gymnasium space of one row's action.

  Args:
    spec: the environment's action spec (bounded).

  Returns:
    `Discrete` for a scalar integer spec, `MultiDiscrete` for an integer
    array (a slate), `Box` for a float spec.

  Raises:
    ValueError: for an unbounded or non-numeric spec.
  """
  dtype = np.dtype(spec.dtype)
  if not isinstance(spec, array_spec.BoundedArraySpec):
    raise ValueError(f"the action spec must be bounded, got {spec}")
  low, high = _bounds(spec)
  if dtype.kind in "iu":
    if spec.shape == ():
      return spaces.Discrete(int(high - low + 1), start=int(low))
    return spaces.MultiDiscrete((high - low + 1).astype(np.int64),
                                start=low.astype(np.int64))
  if dtype.kind == "f":
    return spaces.Box(low=low, high=high, shape=tuple(spec.shape), dtype=dtype)
  raise ValueError(f"action spec has dtype {dtype}, which has no Gymnasium "
                   "space")


class PlaylistGymEnv(gymnasium.Env):
  """A batch-size-1 `PlaylistEnvironment` behind the Gymnasium API.

  Attributes:
    environment: the wrapped `PlaylistEnvironment`.
    observation_space: `spaces.Dict` of the entries described in the module
      docstring.
    action_space: `Discrete`, `MultiDiscrete` or `Box`.
  """

  metadata = {"render_modes": []}

  def __init__(self, environment: PlaylistEnvironment):
    """Wraps `environment`.

    Args:
      environment: a `PlaylistEnvironment` with batch_size 1.

    Raises:
      TypeError: if `environment` is not a `PlaylistEnvironment` (seeding and
        termination reasons read its generator and state).
      ValueError: if its batch size is not 1.
    """
    if not isinstance(environment, PlaylistEnvironment):
      raise TypeError("PlaylistGymEnv wraps a PlaylistEnvironment, got "
                      f"{type(environment).__name__}")
    if environment.batch_size != 1:
      raise ValueError(
          "PlaylistGymEnv needs a PlaylistEnvironment with batch_size 1 (one "
          f"listener), got batch_size={environment.batch_size}; for batched "
          "training use EnvironmentBuilder.get_py_env/get_tf_env, or vectorise "
          "several PlaylistGymEnvs with gymnasium.vector")
    self.environment = environment
    self._obs_specs = dict(environment.observation_space)
    self._action_spec = environment.action_space
    self.observation_space = spaces.Dict(
        {name: observation_spec_to_space(spec)
         for name, spec in self._obs_specs.items()})
    self.action_space = action_spec_to_space(self._action_spec)
    # np_random is handed to the simulator on every reset, so it is what
    # actually drives episodes; it starts like the environment's own seeded
    # generator (as gymnasium.utils.seeding.np_random(seed) would).
    self._np_random = np.random.default_rng(environment.seed)
    seed = environment.seed
    self._np_random_seed = seed if isinstance(seed, (int, np.integer)) else -1
    self._needs_reset = True

  # -- conversions -----------------------------------------------------------

  def _row_observation(self, result: StepResult) -> dict[str, np.ndarray]:
    # np.asarray keeps 0-d entries (position) as arrays and casts the bool
    # mask to MultiBinary's int8; the rows are fresh copies from the env.
    return {name: np.asarray(result.observation[name][0],
                             dtype=self.observation_space[name].dtype)
            for name in self._obs_specs}

  def _batched_action(self, action: Any) -> np.ndarray:
    action = np.asarray(action)
    shape = tuple(self._action_spec.shape)
    if action.shape != shape:
      # Libraries often hand a Discrete action over as shape (1,).
      if action.size != int(np.prod(shape, dtype=np.int64)):
        raise ActionError(f"action has shape {action.shape}, expected {shape} "
                          f"for action space {self.action_space}")
      action = action.reshape(shape)
    # Dtype and range are checked by the track sampler.
    return action[None]

  # -- gymnasium API ---------------------------------------------------------

  def reset(self, *, seed: int | None = None,
            options: dict[str, Any] | None = None
            ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Starts a new session with a new listener and candidate pool.

    Args:
      seed: reseeds the simulator's generator; None continues it.
      options: unused (accepted for API compatibility).

    Returns:
      (observation, info); info is empty.
    """
    del options  # The simulator has no per-episode options.
    super().reset(seed=seed)
    # Re-attach on every reset: super().reset(seed=...) creates a new
    # generator, and a user may have assigned np_random directly.
    self.environment.reseed(self.np_random)
    result = self.environment.reset()
    self._needs_reset = False
    return self._row_observation(result), {}

  def step(self, action: Any
           ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
    """Places the track(s) chosen by `action`.

    Args:
      action: an element of `action_space` (a Discrete action may also come
        as a one-element array).

    Returns:
      (observation, reward, terminated, truncated, info). `terminated` is True
      when the session ended; `truncated` is always False; on termination
      info["termination_reason"] is one of "consecutive_skips",
      "max_length" or "pool_exhausted".

    Raises:
      RuntimeError: if called before `reset()` or after the episode ended.
      ActionError: if the action does not fit the action space.
    """
    if self._needs_reset:
      raise RuntimeError("PlaylistGymEnv.step() called before reset() or "
                         "after the episode terminated; call reset() first")
    result = self.environment.step(self._batched_action(action))
    terminated = bool(result.step_type[0] == _LAST)
    info: dict[str, Any] = {}
    if terminated:
      info["termination_reason"] = TERMINATION_REASONS[
          int(result.termination_reason[0])]
      self._needs_reset = True
    return (self._row_observation(result), float(result.reward[0]),
            terminated, False, info)

  def close(self) -> None:
    """Flushes and closes the episode tracker, if any."""
    if self.environment.tracker is not None:
      self.environment.tracker.close()
    super().close()


def make_gym_env(gin_file: _PathLike | Sequence[_PathLike] | None = None, *,
                 gin_bindings: Sequence[str] | None = None,
                 **env_kwargs) -> PlaylistGymEnv:
  """Builds a `PlaylistGymEnv` through gin and `EnvironmentBuilder`.

  Args:
    gin_file: gin file(s) to parse first (e.g. "configs/simulate.gin"); None
      uses the configuration already parsed.
    gin_bindings: extra gin bindings parsed after the file(s), e.g.
      ["EnvironmentBuilder.track_sampler = @ContinuousTrackSampler()"].
    **env_kwargs: passed to the environment constructor (e.g. seed,
      max_playlist_length); batch_size defaults to 1.

  Returns:
    The wrapped environment.

  Raises:
    ValueError: if batch_size is not 1 or a builder part is not configured.
  """
  if gin_file is not None:
    files = ([gin_file] if isinstance(gin_file, (str, os.PathLike))
             else list(gin_file))
    for path in files:
      # parse_config_file, unlike parse_config_files_and_bindings, does not
      # lock the config, so callers can still bind parameters afterwards.
      gin.parse_config_file(os.fspath(path))
  if gin_bindings:
    gin.parse_config(list(gin_bindings))
  env_kwargs.setdefault("batch_size", 1)
  return PlaylistGymEnv(EnvironmentBuilder().build(**env_kwargs))
