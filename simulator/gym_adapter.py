"""Gymnasium adapter: one simulated listener as a `gymnasium.Env`.

`PlaylistGymEnv` wraps a `PlaylistEnvironment` built with batch_size 1 so that
libraries speaking the Gymnasium API (Stable-Baselines3, RLlib, CleanRL, ...)
can train on the simulator; `simulator.gym_vector.PlaylistVectorEnv` is the
vector form over the natively batched core (one user-model call per step for
all sub-environments). Importing this module registers both under
`ENV_ID` ("PlaylistSim-v0"):

    import gymnasium
    import simulator.gym_adapter  # registers PlaylistSim-v0
    env = gymnasium.make("PlaylistSim-v0", gin_file="configs/simulate.gin")
    envs = gymnasium.make_vec("PlaylistSim-v0", num_envs=8,
                              vectorization_mode="vector_entry_point",
                              gin_file="configs/simulate.gin")

(`gymnasium.make("simulator.gym_adapter:PlaylistSim-v0", ...)` imports the
module itself.)

* observation space: a `spaces.Dict` mirroring the environment's array specs
  for one row. Bounded int and float specs become `Box`es with the spec's
  bounds and dtype; `user_features`, unbounded in the spec, gets the finite
  box [-USER_FEATURE_BOUND, USER_FEATURE_BOUND] (observations are clipped to
  it; the synthetic world's features stay within +-5); the bool
  `candidate_mask` becomes `MultiBinary`, delivered as int8 0/1.
* action space: `Discrete(K)` for the discrete track sampler, `MultiDiscrete`
  ([K] * k) for slates, and for the continuous sampler a `Box` in [-1, 1]
  mapped linearly onto the catalog's per-feature bounds (the symmetric,
  normalised range Gymnasium's checker and most libraries expect).
* `info["action_mask"]`: int8 [K], 1 for the candidates still available
  (after reset and after every step), the form maskable-PPO code reads;
  `action_masks()` returns it as bools (sb3-contrib's `MaskablePPO`).
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
    "ENV_ID",
    "PlaylistGymEnv",
    "PlaylistSpaces",
    "USER_FEATURE_BOUND",
    "action_spec_to_space",
    "make_gym_env",
    "observation_spec_to_space",
]

#: The id registered with Gymnasium on import.
ENV_ID = "PlaylistSim-v0"
#: Finite bound of the (unbounded) float observations, e.g. user features.
USER_FEATURE_BOUND = 10.0

_LAST = int(ts.StepType.LAST)
_PathLike = str | os.PathLike


def _bounds(spec: array_spec.ArraySpec) -> tuple[np.ndarray, np.ndarray]:
  """Lower and upper bounds of `spec`, broadcast to its shape and dtype."""
  dtype = np.dtype(spec.dtype)
  if isinstance(spec, array_spec.BoundedArraySpec):
    low, high = spec.minimum, spec.maximum
  elif dtype.kind == "f":
    low, high = -USER_FEATURE_BOUND, USER_FEATURE_BOUND
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
    with the spec's shape, dtype and bounds (+-USER_FEATURE_BOUND for an
    unbounded float spec).

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
    array (a slate), `Box` in [-1, 1] for a float spec (see
    `PlaylistSpaces.to_env_action`).

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
    return spaces.Box(low=-1.0, high=1.0, shape=tuple(spec.shape),
                      dtype=dtype)
  raise ValueError(f"action spec has dtype {dtype}, which has no Gymnasium "
                   "space")


class PlaylistSpaces:
  """One row's Gymnasium spaces and the conversions to and from the core.

  Shared by `PlaylistGymEnv` and `simulator.gym_vector.PlaylistVectorEnv`.

  Attributes:
    observation_space: `spaces.Dict` of one row's observation.
    action_space: one row's action space.
  """

  def __init__(self, environment: PlaylistEnvironment):
    """Builds the spaces of `environment`'s specs.

    Args:
      environment: the core environment.
    """
    self._obs_specs = dict(environment.observation_space)
    self._action_spec = environment.action_space
    self.observation_space = spaces.Dict(
        {name: observation_spec_to_space(spec)
         for name, spec in self._obs_specs.items()})
    self.action_space = action_spec_to_space(self._action_spec)
    self._continuous = np.dtype(self._action_spec.dtype).kind == "f"
    if self._continuous:
      self._low, self._high = _bounds(self._action_spec)

  def observations(self, observation: dict) -> dict[str, np.ndarray]:
    """The core's batched observation in the spaces' dtypes and bounds."""
    out = {}
    for name in self._obs_specs:
      space = self.observation_space[name]
      # np.array copies (the core reuses its buffers) and casts the bool
      # mask to MultiBinary's int8.
      value = np.array(observation[name], dtype=space.dtype)
      if isinstance(space, spaces.Box) and space.dtype.kind == "f":
        np.clip(value, space.low, space.high, out=value)
      out[name] = value
    return out

  def to_env_action(self, action: Any, batch: int | None) -> np.ndarray:
    """A (batch of) space action(s) as the core's batched action.

    Args:
      action: one row's action (`batch` None) or `batch` rows' actions.
      batch: rows, or None for a single row.

    Returns:
      The core's action array [B, ...].

    Raises:
      ActionError: if the shape does not fit the action space.
    """
    action = np.asarray(action)
    shape = ((1,) if batch is None else (batch,)) + tuple(
        self._action_spec.shape)
    if action.shape != shape:
      # Libraries often hand a Discrete action over as shape (1,).
      if action.size != int(np.prod(shape, dtype=np.int64)):
        raise ActionError(f"action has shape {action.shape}, expected "
                          f"{shape[1:] if batch is None else shape} for "
                          f"action space {self.action_space}")
      action = action.reshape(shape)
    if self._continuous:  # [-1, 1] onto the catalog's feature bounds.
      unit = np.clip(action.astype(np.float64), -1.0, 1.0)
      action = (self._low + (unit + 1.0) / 2.0 * (self._high - self._low)
                ).astype(self._action_spec.dtype)
    # Dtype and range are checked by the track sampler.
    return action


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
    self.spaces = PlaylistSpaces(environment)
    self.observation_space = self.spaces.observation_space
    self.action_space = self.spaces.action_space
    # np_random is handed to the simulator on every reset, so it is what
    # actually drives episodes; it starts like the environment's own seeded
    # generator (as gymnasium.utils.seeding.np_random(seed) would).
    self._np_random = np.random.default_rng(environment.seed)
    seed = environment.seed
    self._np_random_seed = seed if isinstance(seed, (int, np.integer)) else -1
    self._needs_reset = True

  # -- conversions -----------------------------------------------------------

  def _row_observation(self, result: StepResult) -> dict[str, np.ndarray]:
    rows = self.spaces.observations(result.observation)
    # value[0, ...] keeps 0-d entries (position) as arrays, as Box expects.
    return {name: value[0, ...] for name, value in rows.items()}

  def action_masks(self) -> np.ndarray:
    """bool [K]: the candidates still available (sb3-contrib's hook)."""
    return self._mask.astype(bool)

  # -- gymnasium API ---------------------------------------------------------

  def reset(self, *, seed: int | None = None,
            options: dict[str, Any] | None = None
            ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Starts a new session with a new listener and candidate pool.

    Args:
      seed: reseeds the simulator's generator; None continues it.
      options: unused (accepted for API compatibility).

    Returns:
      (observation, info); info["action_mask"] is the int8 [K] mask of the
      candidates available.
    """
    del options  # The simulator has no per-episode options.
    super().reset(seed=seed)
    # Re-attach on every reset: super().reset(seed=...) creates a new
    # generator, and a user may have assigned np_random directly.
    self.environment.reseed(self.np_random)
    result = self.environment.reset()
    self._needs_reset = False
    obs = self._row_observation(result)
    self._mask = obs["candidate_mask"]
    return obs, {"action_mask": self._mask.copy()}

  def step(self, action: Any
           ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
    """Places the track(s) chosen by `action`.

    Args:
      action: an element of `action_space` (a Discrete action may also come
        as a one-element array).

    Returns:
      (observation, reward, terminated, truncated, info). `terminated` is True
      when the session ended; `truncated` is always False;
      info["action_mask"] is the int8 [K] availability mask; on termination
      info["termination_reason"] is one of "consecutive_skips",
      "max_length", "pool_exhausted" or "listener_left".

    Raises:
      RuntimeError: if called before `reset()` or after the episode ended.
      ActionError: if the action does not fit the action space.
    """
    if self._needs_reset:
      raise RuntimeError("PlaylistGymEnv.step() called before reset() or "
                         "after the episode terminated; call reset() first")
    result = self.environment.step(self.spaces.to_env_action(action, None))
    terminated = bool(result.step_type[0] == _LAST)
    obs = self._row_observation(result)
    self._mask = obs["candidate_mask"]
    info: dict[str, Any] = {"action_mask": self._mask.copy()}
    if terminated:
      info["termination_reason"] = TERMINATION_REASONS[
          int(result.termination_reason[0])]
      self._needs_reset = True
    return obs, float(result.reward[0]), terminated, False, info

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


# `gymnasium.make(ENV_ID, ...)` / `gymnasium.make_vec(ENV_ID, num_envs=n,
# vectorization_mode="vector_entry_point", ...)`; keyword arguments go to
# `make_gym_env` / `simulator.gym_vector.make_gym_vector_env`.
if ENV_ID not in gymnasium.registry:
  gymnasium.register(
      ENV_ID, entry_point="simulator.gym_adapter:make_gym_env",
      vector_entry_point="simulator.gym_vector:make_gym_vector_env")
