"""The one interface every user model implements.

A user model answers one question for a batch of simulated listeners: given
what each listener has heard so far in the session, how likely is each
response level to each of the tracks recommended now? The environment samples
an outcome from these probabilities with its own seeded generator, so a user
model holds no randomness of its own.

Response levels are named by the model (`response_levels`). By convention the
last level is the listen (the track was not skipped) and every other level is
a kind of skip; the public Spotify data gives five outcomes,
`("skip_1", "skip_2", "skip_3", "ended_otherwise", "not_skipped")`, a binary
model uses `("skip", "not_skipped")`.

The public outcomes follow how far into the track the listener got: skipped
very briefly (`skip_1`), briefly (`skip_2`), before most of the track
(`skip_3`), played past that but ended before the end (`ended_otherwise`: all
four flags false in the public files, e.g. the session ended by `endplay`,
`backbtn` or `logout`; about 4.5% of real rows), and played to the end
(`not_skipped`). Every level but the last counts as "not listened to" (the
public data's `1 - not_skipped`); `skip_2` (the Skip Prediction Challenge's
target) is true for levels 0 and 1.
"""

import abc
import dataclasses
from typing import Sequence

import numpy as np

from playlist_sim.data.responses import BINARY_RESPONSE_LEVELS
from playlist_sim.data.responses import PUBLIC_RESPONSE_LEVELS

__all__ = [
    "AbstractUserModel",
    "SessionContext",
    "BINARY_RESPONSE_LEVELS",
    "PUBLIC_RESPONSE_LEVELS",
    "UserModelError",
    "UserModelLoadError",
]

class UserModelError(ValueError):
  """A user model was misconfigured or returned something unusable."""


class UserModelLoadError(UserModelError):
  """A user-model file is missing, corrupt, or does not fit the environment."""


@dataclasses.dataclass(frozen=True)
class SessionContext:
  """What the environment tells a user model about the sessions it asks about.

  Every array has the same leading dimension R: the environment rows in the
  query (rows whose sessions are running this step).

  Attributes:
    rows: int64 [R], the environment's batch rows; stateful models key their
      per-session state by row.
    user_ids: int64 [R], the listener of each session.
    user_features: float32 [R, U], the observable user context.
    position: int32 [R], tracks already played in the session.
    history_ids: int32 [R, H], the last H played track ids (catalog rows),
      most recent last, 0 where `history_responses` is -1.
    history_responses: int32 [R, H], the response level index of each history
      track, -1 for padding.
    consecutive_skips: int32 [R], skips since the last listen.
    num_skips: int32 [R], skips so far in the session.
  """
  rows: np.ndarray
  user_ids: np.ndarray
  user_features: np.ndarray
  position: np.ndarray
  history_ids: np.ndarray
  history_responses: np.ndarray
  consecutive_skips: np.ndarray
  num_skips: np.ndarray

  def __len__(self) -> int:
    return int(self.rows.shape[0])


class AbstractUserModel(abc.ABC):
  """Predicts listeners' responses to recommended tracks.

  Subclasses implement `predict`; stateful (sequential) models also override
  `begin_sessions` and `observe`, which the environment calls when sessions
  start and after each outcome is sampled.
  """

  #: Names of the response levels; the last one is the listen.
  response_levels: Sequence[str] = BINARY_RESPONSE_LEVELS

  def begin_sessions(self, rows: np.ndarray, user_ids: np.ndarray) -> None:
    """Starts new sessions in the given environment rows.

    Args:
      rows: int64 [R], environment batch rows whose sessions restart.
      user_ids: int64 [R], the listener now in each of those rows.
    """
    del rows, user_ids

  @abc.abstractmethod
  def predict(self, context: SessionContext,
              track_ids: np.ndarray) -> np.ndarray:
    """Response probabilities for the tracks recommended now.

    Args:
      context: the sessions asked about (R rows).
      track_ids: int32 [R, k], catalog rows of the k tracks placed in each
        session this step, in play order.

    Returns:
      float [R, k, L] probabilities over `response_levels`, summing to 1.
    """

  def observe(self, rows: np.ndarray, track_ids: np.ndarray,
              responses: np.ndarray) -> None:
    """Receives the sampled outcomes of the last `predict` call.

    Args:
      rows: int64 [R], the environment rows of the query.
      track_ids: int32 [R, k], the tracks placed.
      responses: int32 [R, k], the sampled level index of each track, -1 for
        a track the listener never reached (the session ended before it).
    """
    del rows, track_ids, responses

  def leave_probability(self, context: SessionContext) -> np.ndarray | None:
    """P(each listener leaves the session now), read after a step.

    The environment asks after every step whose session goes on; a model
    whose listeners leave only by the environment's rules returns None
    (the default), and then no leave draw is made.

    Args:
      context: the sessions after the step's outcomes (R rows).

    Returns:
      float [R] probabilities in [0, 1], or None.
    """
    del context
    return None

  @property
  def num_levels(self) -> int:
    return len(self.response_levels)

  @property
  def listen_level(self) -> int:
    """Index of the listen level (the last one)."""
    return len(self.response_levels) - 1
