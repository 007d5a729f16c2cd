"""The playlist environment: B simulated listeners stepped at once.

`PlaylistEnvironment` composes the four parts of the published design: a user
model (responses), a track sampler (action -> tracks, no repeats), an episode
sampler (listener + candidate pool) and an episode tracker (records). It is
natively batched: every array holds B rows, every step makes one user-model
call for all running rows, and B=1 is the same code path.

Dynamics of one row:
* reset draws a play mode; the observation shows the user context, the last
  H played tracks (ids and response levels), the position, the candidate ids
  and a mask of candidates still available.
* step places `slate_size` tracks chosen by the track sampler, asks the user
  model for response probabilities, and samples each track's response level
  with the environment's generator. Slate items are heard in order; the reward
  of a step is the sum of `reward_per_level` over the tracks heard.
* the episode ends when the `consecutive_skip_limit`-th skip in a row happens
  (later slate items are not heard), when `max_playlist_length` tracks were
  heard, when no candidate is left, or when the listener leaves (checked in
  that order). Leaving: after a step that ended the session by none of the
  other rules, a user model whose `leave_probability` returns probabilities
  (the calibrated `ParametricListener`) ends it with that probability. A
  model that returns None (a learned CWM/SWM) falls back on the
  environment's `leaving_model` (`playlist_sim.data.leaving.LeavingModel`, estimated
  from logs); with neither, nobody leaves and no draw is made.
* a row whose last step ended its episode is reset by the next `step` call,
  which ignores that row's action and returns FIRST for it (TF-Agents'
  convention for batched environments).
"""

import abc
import dataclasses
from typing import Mapping

import gin
import numpy as np
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from simulator.episode_sampler import AbstractEpisodeSampler
from playlist_sim.data.leaving import LeavingModel
from simulator.track_sampler import AbstractTrackSampler, ActionError
from simulator.tracker import EpisodeTracker
from user_models.base import AbstractUserModel, SessionContext, UserModelError
from playlist_sim.data.checks import check_count, check_seed

__all__ = ["AbstractEnvironment", "PlaylistEnvironment", "StepResult",
           "playlist_observation_spec"]

_FIRST, _MID, _LAST = (int(ts.StepType.FIRST), int(ts.StepType.MID),
                       int(ts.StepType.LAST))


def playlist_observation_spec(num_tracks: int, pool_size: int,
                              user_feature_dim: int, history_length: int,
                              num_levels: int,
                              max_playlist_length: int) -> dict:
  """The observation spec of a `PlaylistEnvironment` of these sizes.

  Args:
    num_tracks: catalog size N (ids are catalog rows 0..N-1).
    pool_size: candidate pool size K.
    user_feature_dim: width of the user features.
    history_length: recent tracks H in the observation.
    num_levels: response levels (history responses are -1 when empty).
    max_playlist_length: the largest position.

  Returns:
    Observation key -> ArraySpec.
  """
  n, k, h = num_tracks, pool_size, history_length
  return {
      "user_features": array_spec.ArraySpec((user_feature_dim,), np.float32,
                                            "user_features"),
      "history_ids": array_spec.BoundedArraySpec((h,), np.int32, 0, n - 1,
                                                 "history_ids"),
      "history_responses": array_spec.BoundedArraySpec(
          (h,), np.int32, -1, num_levels - 1, "history_responses"),
      "position": array_spec.BoundedArraySpec(
          (), np.int32, 0, max_playlist_length, "position"),
      "candidate_ids": array_spec.BoundedArraySpec((k,), np.int32, 0, n - 1,
                                                   "candidate_ids"),
      "candidate_mask": array_spec.ArraySpec((k,), np.bool_,
                                             "candidate_mask"),
  }


@dataclasses.dataclass(frozen=True)
class StepResult:
  """What a batched step returns: arrays with leading dimension B.

  Attributes:
    observation: dict of arrays (see `PlaylistEnvironment.observation_space`).
    reward: float32 [B].
    step_type: int32 [B], TF-Agents' FIRST (0), MID (1) or LAST (2).
    termination_reason: int32 [B], on LAST steps the index of the reason in
      `simulator.TERMINATION_REASONS`, else 0.
    heard: int32 [B], tracks heard this step.
    skipped: int32 [B], tracks skipped this step.
  """
  observation: dict
  reward: np.ndarray
  step_type: np.ndarray
  termination_reason: np.ndarray
  heard: np.ndarray
  skipped: np.ndarray


def _hashed_uniforms(seed: int, episode_ids: np.ndarray,
                     positions: np.ndarray, slate: int) -> np.ndarray:
  """Uniforms in [0, 1) from (seed, episode, position + j): splitmix64."""
  with np.errstate(over="ignore"):
    key = (np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) +
           episode_ids.astype(np.uint64)[:, None] * np.uint64(0xBF58476D1CE4E5B9)
           + (positions.astype(np.uint64)[:, None] +
              np.arange(slate, dtype=np.uint64)[None, :]))
    for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
      key = (key ^ (key >> np.uint64(shift))) * np.uint64(mult)
    key ^= key >> np.uint64(31)
  return ((key >> np.uint64(11)).astype(np.float64) / 2.0**53)[..., None]


class AbstractEnvironment(abc.ABC):
  """A batched environment with array specs for one row."""

  batch_size: int

  @property
  @abc.abstractmethod
  def observation_space(self) -> dict:
    """Array specs of one row's observation."""

  @property
  @abc.abstractmethod
  def action_space(self) -> array_spec.BoundedArraySpec:
    """Array spec of one row's action."""

  @abc.abstractmethod
  def reset(self) -> StepResult:
    """Starts a new episode in every row."""

  @abc.abstractmethod
  def step(self, action: np.ndarray) -> StepResult:
    """Advances every row by one step."""


@gin.configurable
class PlaylistEnvironment(AbstractEnvironment):
  """The composed, natively batched playlist simulator."""

  def __init__(self,
               user_model: AbstractUserModel,
               track_sampler: AbstractTrackSampler,
               episode_sampler: AbstractEpisodeSampler,
               episode_tracker: EpisodeTracker | None = None,
               batch_size: int = 1,
               consecutive_skip_limit: int = 3,
               max_playlist_length: int = 30,
               history_length: int = 10,
               reward_per_level: Mapping[str, float] | None = None,
               seed: int = 0,
               common_random_numbers: bool = False,
               leaving_model: LeavingModel | None = None):
    """Builds the environment.

    Args:
      user_model: predicts response probabilities.
      track_sampler: maps actions to pool slots; defines the action spec.
      episode_sampler: draws listeners and candidate pools.
      episode_tracker: records every track played; None records nothing.
      batch_size: rows (listeners) stepped together, B.
      consecutive_skip_limit: skips in a row that end a session, N.
      max_playlist_length: tracks heard before a session ends.
      history_length: played tracks shown in the observation, H.
      reward_per_level: reward of each response level by name; levels not
        named give 0. Default: 1 for the listen level.
      seed: seed of the environment's generator (outcomes and play modes).
      common_random_numbers: draw episode e's play mode from a generator
        seeded by (seed, e) and the uniform behind each outcome from a hash
        of (seed, e, position), so an episode's randomness does not depend
        on what happens in the other rows. Comparing two user models or two
        policies on the same seed then compares them on the same episodes
        (paired), which makes small differences measurable.
      leaving_model: P(leave) after a track for user models that do not
        model leaving themselves (their `leave_probability` is None): a
        `LeavingModel` or any object with `leave_probability(context)`.
        None: such listeners leave only by the rules above.

    Raises:
      ValueError: on a non-positive size, a reward for an unknown level or
        a reward that is not a finite number.
    """
    for name, value, maximum in (
        ("batch_size", batch_size, 10**6),
        ("consecutive_skip_limit", consecutive_skip_limit, 10**6),
        ("max_playlist_length", max_playlist_length, 10**6),
        ("history_length", history_length, 10**5)):
      check_count(name, value, maximum=maximum, owner="PlaylistEnvironment")
    check_seed("seed", seed, owner="PlaylistEnvironment")
    if leaving_model is not None and not callable(
        getattr(leaving_model, "leave_probability", None)):
      raise ValueError(
          f"PlaylistEnvironment: leaving_model must have a "
          f"leave_probability(context) method (a playlist_sim.data.leaving."
          f"LeavingModel), got {type(leaving_model).__name__}")
    levels = tuple(user_model.response_levels)
    if len(levels) < 2:
      raise UserModelError(
          f"{type(user_model).__name__}.response_levels must name at least "
          f"two levels (skip and listen), got {levels}")
    rewards = {levels[-1]: 1.0} if reward_per_level is None else dict(
        reward_per_level)
    unknown = sorted(set(rewards) - set(levels))
    if unknown:
      raise ValueError(f"reward_per_level names unknown response levels "
                       f"{unknown}; the user model's levels are {levels}")
    for level, reward in rewards.items():
      if (isinstance(reward, bool) or not isinstance(
          reward, (int, float, np.integer, np.floating)) or
          not np.isfinite(reward)):
        raise ValueError(f"reward_per_level[{level!r}] must be a finite "
                         f"number, got {reward!r}")
    self.user_model = user_model
    self.track_sampler = track_sampler
    self.episode_sampler = episode_sampler
    self.tracker = episode_tracker
    self.catalog = episode_sampler.catalog
    self.batch_size = int(batch_size)
    self.consecutive_skip_limit = int(consecutive_skip_limit)
    self.leaving_model = leaving_model
    self.max_playlist_length = int(max_playlist_length)
    self.history_length = int(history_length)
    self.response_levels = levels
    self.reward_table = np.array([rewards.get(l, 0.0) for l in levels],
                                 np.float32)
    self.seed = seed
    self.common_random_numbers = bool(common_random_numbers)
    self._rng = np.random.default_rng(seed)
    self._action_spec = track_sampler.action_spec(
        episode_sampler.max_pool_size, self.catalog)
    self._observation_spec = self._make_observation_spec()
    if self.tracker is not None:
      self.tracker.bind(levels, self.catalog.track_ids)
    self._next_episode_id = 0
    self._allocate()

  # -- specs ----------------------------------------------------------------

  def _make_observation_spec(self) -> dict:
    return playlist_observation_spec(
        self.catalog.num_tracks, self.episode_sampler.max_pool_size,
        self.episode_sampler.user_feature_dim, self.history_length,
        len(self.response_levels), self.max_playlist_length)

  @property
  def observation_space(self) -> dict:
    return self._observation_spec

  @property
  def action_space(self) -> array_spec.BoundedArraySpec:
    return self._action_spec

  def session_context(self, rows: np.ndarray | None = None) -> SessionContext:
    """The context a user model sees for `rows` (default: all rows).

    Gives oracle policies and diagnostics the same view of a session that
    the user model gets.

    Args:
      rows: int64 environment rows.

    Returns:
      A `SessionContext` for those rows.
    """
    rows = np.arange(self.batch_size) if rows is None else np.asarray(rows)
    return SessionContext(
        rows=rows, user_ids=self._user_ids[rows],
        user_features=self._user_features[rows],
        position=self._position[rows],
        history_ids=self._history_ids[rows],
        history_responses=self._history_responses[rows],
        consecutive_skips=self._consecutive_skips[rows],
        num_skips=self._num_skips[rows])

  @property
  def episode_ids(self) -> np.ndarray:
    """int64 [B], the id of each row's current episode (in start order)."""
    return self._episode_ids.copy()

  # -- state ----------------------------------------------------------------

  def _allocate(self) -> None:
    b, h = self.batch_size, self.history_length
    k = self.episode_sampler.max_pool_size
    u = self.episode_sampler.user_feature_dim
    self._user_ids = np.zeros(b, np.int64)
    self._user_features = np.zeros((b, u), np.float32)
    self._candidate_ids = np.zeros((b, k), np.int32)
    self._available = np.zeros((b, k), bool)
    self._play_mode_ids = np.zeros(b, np.int64)
    self._episode_ids = np.zeros(b, np.int64)
    self._position = np.zeros(b, np.int32)
    self._steps = np.zeros(b, np.int32)
    self._consecutive_skips = np.zeros(b, np.int32)
    self._num_skips = np.zeros(b, np.int32)
    self._history_ids = np.zeros((b, h), np.int32)
    self._history_responses = np.full((b, h), -1, np.int32)
    self._last = np.zeros(b, bool)
    self._started = False
    self.last_result: StepResult | None = None

  def _reset_rows(self, rows: np.ndarray) -> None:
    if self.common_random_numbers:
      parts = [self.episode_sampler.sample(
          np.random.default_rng([int(self.seed), int(e)]), 1)
               for e in range(self._next_episode_id,
                              self._next_episode_id + len(rows))]
      modes = type(parts[0])(*(np.concatenate(
          [getattr(p, f) for p in parts]) for f in parts[0].__dataclass_fields__))
    else:
      modes = self.episode_sampler.sample(self._rng, len(rows))
    self._user_ids[rows] = modes.user_ids
    self._user_features[rows] = modes.user_features
    self._candidate_ids[rows] = modes.candidate_ids
    self._available[rows] = (np.arange(self._available.shape[1])[None, :] <
                             modes.pool_sizes[:, None])
    self._play_mode_ids[rows] = modes.play_mode_ids
    self._episode_ids[rows] = np.arange(self._next_episode_id,
                                        self._next_episode_id + len(rows))
    self._next_episode_id += len(rows)
    for arr in (self._position, self._steps, self._consecutive_skips,
                self._num_skips):
      arr[rows] = 0
    self._history_ids[rows] = 0
    self._history_responses[rows] = -1
    self._last[rows] = False
    self.user_model.begin_sessions(rows, modes.user_ids)

  def _observation(self) -> dict:
    return {
        "user_features": self._user_features.copy(),
        "history_ids": self._history_ids.copy(),
        "history_responses": self._history_responses.copy(),
        "position": self._position.copy(),
        "candidate_ids": self._candidate_ids.copy(),
        "candidate_mask": self._available.copy(),
    }

  # -- dynamics ---------------------------------------------------------------

  def reset(self) -> StepResult:
    """Starts a new episode in every row.

    Returns:
      FIRST step results for all B rows.
    """
    self._reset_rows(np.arange(self.batch_size))
    self._started = True
    zeros = np.zeros(self.batch_size, np.int32)
    self.last_result = StepResult(
        self._observation(), np.zeros(self.batch_size, np.float32),
        np.full(self.batch_size, _FIRST, np.int32), zeros, zeros, zeros)
    return self.last_result

  def step(self, action: np.ndarray) -> StepResult:
    """Places tracks for every running row; resets rows that had ended.

    Args:
      action: [B] + action_space.shape, see the track sampler.

    Returns:
      The step results of all B rows.

    Raises:
      ActionError: if the action does not fit the action spec.
      UserModelError: if the user model returns malformed probabilities.
    """
    if not self._started:
      return self.reset()
    action = np.asarray(action)
    expected = (self.batch_size,) + tuple(self._action_spec.shape)
    if action.shape != expected:
      raise ActionError(f"action has shape {action.shape}, expected "
                        f"{expected} (batch of {self.batch_size})")
    to_reset = np.flatnonzero(self._last)
    reward = np.zeros(self.batch_size, np.float32)
    step_type = np.full(self.batch_size, _MID, np.int32)
    termination = np.zeros(self.batch_size, np.int32)
    heard = np.zeros(self.batch_size, np.int32)
    skipped = np.zeros(self.batch_size, np.int32)
    active = np.flatnonzero(~self._last)
    if active.size:
      (reward[active], termination[active], heard[active],
       skipped[active]) = self._advance(active, action[active])
      ended = active[termination[active] > 0]
      step_type[ended] = _LAST
      self._last[ended] = True
    if to_reset.size:
      self._reset_rows(to_reset)
      step_type[to_reset] = _FIRST
    self.last_result = StepResult(self._observation(), reward, step_type,
                                  termination, heard, skipped)
    return self.last_result

  def reseed(self, seed: int | np.random.Generator) -> None:
    """Replaces the environment's generator; the next step starts afresh.

    Args:
      seed: a seed, or a generator to draw from (shared, not copied).
    """
    if isinstance(seed, np.random.Generator):
      self._rng = seed
    else:
      self.seed = seed
      self._rng = np.random.default_rng(seed)
    self._started = False

  def _advance(self, rows: np.ndarray, action: np.ndarray):
    slots = self.track_sampler.select(action, self._available[rows],
                                      self._candidate_ids[rows], self.catalog)
    n_rows, slate = slots.shape
    placed = slots >= 0
    track_ids = np.take_along_axis(self._candidate_ids[rows],
                                   np.maximum(slots, 0), 1)
    probs = self._checked_probs(
        self.user_model.predict(self.session_context(rows), track_ids),
                                n_rows, slate)
    cumulative = np.cumsum(probs, axis=-1)
    if self.common_random_numbers:
      draws = _hashed_uniforms(self.seed, self._episode_ids[rows],
                               self._position[rows], slate)
    else:
      draws = self._rng.random((n_rows, slate, 1))
    levels = (draws >= cumulative[..., :-1]).sum(-1).astype(np.int32)
    skips = levels != len(self.response_levels) - 1

    responses = np.full((n_rows, slate), -1, np.int32)
    alive = np.ones(n_rows, bool)
    ended_by_skips = np.zeros(n_rows, bool)
    position = self._position[rows]
    consecutive = self._consecutive_skips[rows]
    for j in range(slate):
      heard = alive & placed[:, j] & (position < self.max_playlist_length)
      responses[heard, j] = levels[heard, j]
      consecutive = np.where(heard, np.where(skips[:, j], consecutive + 1, 0),
                             consecutive)
      position = position + heard
      hit_limit = heard & (consecutive >= self.consecutive_skip_limit)
      ended_by_skips |= hit_limit
      alive &= ~hit_limit
      self._push_history(rows[heard], track_ids[heard, j], levels[heard, j])
      self._available[rows[heard], slots[heard, j]] = False
    heard_all = responses >= 0
    self._position[rows] = position
    self._consecutive_skips[rows] = consecutive
    skipped = (heard_all & skips).sum(1, dtype=np.int32)
    self._num_skips[rows] += skipped
    self._steps[rows] += 1
    reward = np.where(heard_all, self.reward_table[np.maximum(responses, 0)],
                      0.0).sum(1)

    reason = np.zeros(n_rows, np.int32)
    reason[ended_by_skips] = 1
    reason[(reason == 0) & (position >= self.max_playlist_length)] = 2
    reason[(reason == 0) & ~self._available[rows].any(1)] = 3
    reason[self._leaves(rows, reason == 0)] = 4
    ended = reason > 0
    self.user_model.observe(rows, track_ids, responses)
    if self.tracker is not None and self.tracker.enabled:
      self._record(rows, slots, track_ids, responses, probs, ended, reason)
    return reward, reason, heard_all.sum(1, dtype=np.int32), skipped

  def _leaves(self, rows: np.ndarray, going_on: np.ndarray) -> np.ndarray:
    """bool [len(rows)]: rows whose listener leaves after this step."""
    context = self.session_context(rows)
    p_leave = self.user_model.leave_probability(context)
    if p_leave is None and self.leaving_model is not None:
      p_leave = self.leaving_model.leave_probability(context)
    if p_leave is None:
      return np.zeros(len(rows), bool)
    if self.common_random_numbers:
      # A stream apart from the outcomes' (another seed in the hash).
      draws = _hashed_uniforms(self.seed ^ 0x5EED1EAF, self._episode_ids[rows],
                               self._position[rows], 1)[:, 0, 0]
    else:
      draws = self._rng.random(len(rows))
    return going_on & (draws < np.asarray(p_leave, np.float64))

  def _push_history(self, rows, track_ids, levels) -> None:
    if rows.size:
      self._history_ids[rows, :-1] = self._history_ids[rows, 1:]
      self._history_responses[rows, :-1] = self._history_responses[rows, 1:]
      self._history_ids[rows, -1] = track_ids
      self._history_responses[rows, -1] = levels

  def _checked_probs(self, probs, n_rows: int, slate: int) -> np.ndarray:
    name = type(self.user_model).__name__
    probs = np.asarray(probs)
    expected = (n_rows, slate, len(self.response_levels))
    if probs.shape != expected:
      raise UserModelError(
          f"{name}.predict returned shape {probs.shape}, expected {expected} "
          f"(rows, slate size, response levels {self.response_levels})")
    if probs.dtype.kind not in "fiu":
      raise UserModelError(f"{name}.predict returned {probs.dtype} values; "
                           "it must return float probabilities")
    if not np.isfinite(probs).all():
      raise UserModelError(f"{name}.predict returned NaN or infinite "
                           "probabilities")
    if (probs < -1e-6).any() or (np.abs(probs.sum(-1) - 1.0) > 1e-3).any():
      raise UserModelError(f"{name}.predict returned probabilities that are "
                           "negative or do not sum to 1 over the levels")
    return probs

  def _record(self, rows, slots, track_ids, responses, probs, ended,
              reason) -> None:
    heard = responses >= 0
    r_idx, j_idx = np.nonzero(heard)
    is_final = np.zeros_like(heard)
    last_heard = heard.shape[1] - 1 - np.argmax(heard[:, ::-1], axis=1)
    is_final[np.arange(len(rows)), last_heard] = heard.any(1)
    done = ended[r_idx] & is_final[r_idx, j_idx]
    level = responses[r_idx, j_idx]
    self.tracker.record(
        episode_id=self._episode_ids[rows][r_idx],
        play_mode_id=self._play_mode_ids[rows][r_idx],
        user_id=self._user_ids[rows][r_idx],
        step=self._steps[rows][r_idx] - 1,
        slate_position=j_idx.astype(np.int32),
        track_row=track_ids[r_idx, j_idx],
        response=level,
        reward=self.reward_table[level],
        done=done,
        termination_reason=np.where(done, reason[r_idx], 0),
        probs=probs[r_idx, j_idx])
