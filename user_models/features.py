"""Model inputs of the learned user models, shared by training and serving.

Every feature a Keras user model sees is computed here, from a
`SessionContext` and the track catalog, so training (contexts rebuilt from
logged sessions by `logged_contexts`) and serving (the environment's
contexts) run the same code and cannot drift apart.

Two layouts, each a float32 vector per (row, track):

* **CWM** (`cwm_features`, width `FeatureSpec.cwm_dim`): the user features,
  the candidate's catalog features, then hand-engineered session context:
  position, consecutive skips and skips so far (divided by `_COUNT_SCALE`),
  whether there is a previous track, the acoustic distance to it, and for
  each of the last `history_window` played tracks (oldest first) the cosine
  between its acoustic vector and the candidate's plus a 0/1 "slot holds a
  track" flag. The network learns how similarity tires a listener and how
  it fades with age.
* **SWM**: the recurrent model learns its own summary of the session. Its
  step input (`swm_step_features`, width `swm_step_dim`) is a played track's
  catalog features and unit acoustic vector, its response level (one-hot,
  or predicted probabilities for slate items whose response is not known
  yet) and a start flag; the sequence of a session begins with the start
  token (`swm_start_features`), so the state before the first track is
  learned too. Its candidate input (`swm_candidate_features`, width
  `swm_candidate_dim`) is the CWM row of the candidate (computed by
  `cwm_features` from the same context) with the candidate's unit acoustic
  vector after its catalog features: the SWM sees everything the CWM sees,
  plus its learned state.

A model with a user embedding reads one more column after either layout,
`user_index_column` (the user id as an embedding row).

Slates follow `ParametricListener`: slate item j is featurised as if items
0..j-1 had just been played (they join the history window, the position
grows by j); their responses are unknown, so the skip counts stay those of
the context.
"""

import dataclasses

import numpy as np

from user_models.base import PUBLIC_RESPONSE_LEVELS, SessionContext
from playlist_sim.data.catalog import TrackCatalog

__all__ = [
    "ACOUSTIC_DIM",
    "FeatureSpec",
    "FeatureTables",
    "HISTORY_WINDOW",
    "NUM_LEVELS",
    "cwm_features",
    "logged_contexts",
    "one_hot_levels",
    "swm_candidate_features",
    "swm_start_features",
    "swm_step_features",
    "user_index_column",
]

#: Played tracks the CWM looks back on (the environment's default H).
HISTORY_WINDOW = 10
#: The learned models predict the public levels; the last one is the listen.
NUM_LEVELS = len(PUBLIC_RESPONSE_LEVELS)
_LISTEN = NUM_LEVELS - 1
# Counts (position, skips) reach ~30 in a session; dividing by 10 keeps the
# inputs O(1) like the standardised track features.
_COUNT_SCALE = 10.0
#: Width of the public `acoustic_vector_*` columns.
ACOUSTIC_DIM = 8
_ACOUSTIC_COLUMNS = tuple(f"acoustic_vector_{i}" for i in range(ACOUSTIC_DIM))
# Scalar context features of the CWM: position, consecutive skips, skips,
# has-previous, distance to the previous track.
_NUM_SCALARS = 5


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
  """Widths of the model inputs, to check a model against an environment.

  Attributes:
    user_dim: width U of the user features.
    track_dim: width F of the catalog's feature matrix.
    history_window: played tracks the CWM looks back on.
  """
  user_dim: int
  track_dim: int
  history_window: int = HISTORY_WINDOW

  @property
  def cwm_dim(self) -> int:
    """Width of a CWM input row."""
    return (self.user_dim + self.track_dim + _NUM_SCALARS +
            2 * self.history_window)

  @property
  def swm_step_dim(self) -> int:
    """Width of an SWM step input (a played track and its response)."""
    return self.track_dim + ACOUSTIC_DIM + NUM_LEVELS + 1

  @property
  def swm_candidate_dim(self) -> int:
    """Width of an SWM candidate input (the CWM row + unit acoustics)."""
    return self.cwm_dim + ACOUSTIC_DIM


class FeatureTables:
  """Per-track lookup tables of a catalog, computed once.

  Attributes:
    catalog: the catalog.
    track_features: float32 [N, F], the catalog's standardised features.
    acoustic: float32 [N, 8], the raw `acoustic_vector_*` columns.
    unit_acoustic: float32 [N, 8], the acoustic vectors scaled to norm 1.
  """

  def __init__(self, catalog: TrackCatalog):
    """Builds the tables.

    Args:
      catalog: the track catalog whose rows the track ids index.
    """
    self.catalog = catalog
    self.track_features = np.asarray(catalog.features, np.float32)
    self.acoustic = np.stack([catalog.columns[c] for c in _ACOUSTIC_COLUMNS],
                             axis=1).astype(np.float32)
    norms = np.linalg.norm(self.acoustic, axis=1, keepdims=True)
    self.unit_acoustic = self.acoustic / np.maximum(norms, 1e-6)

  @property
  def num_tracks(self) -> int:
    return int(self.track_features.shape[0])

  def spec(self, user_dim: int,
           history_window: int = HISTORY_WINDOW) -> FeatureSpec:
    """The `FeatureSpec` of this catalog with `user_dim` user features."""
    return FeatureSpec(int(user_dim), int(self.track_features.shape[1]),
                       int(history_window))


def _window(ids: np.ndarray, valid: np.ndarray,
            window: int) -> tuple[np.ndarray, np.ndarray]:
  """The last `window` columns, left-padded with invalid slots if needed."""
  width = ids.shape[1]
  if width >= window:
    return ids[:, width - window:], valid[:, width - window:]
  pad = window - width
  return (np.pad(ids, ((0, 0), (pad, 0))),
          np.pad(valid, ((0, 0), (pad, 0)), constant_values=False))


def cwm_features(context: SessionContext, track_ids: np.ndarray,
                 tables: FeatureTables,
                 history_window: int = HISTORY_WINDOW) -> np.ndarray:
  """CWM inputs of each placed track (layout in the module docstring).

  Args:
    context: the sessions (R rows).
    track_ids: int [R, k] catalog rows, a slate in play order.
    tables: the catalog's tables.
    history_window: played tracks to look back on.

  Returns:
    float32 [R, k, FeatureSpec.cwm_dim].
  """
  track_ids = np.asarray(track_ids)
  r, k = track_ids.shape
  hist = np.asarray(context.history_ids)
  valid = np.asarray(context.history_responses) >= 0
  user = np.asarray(context.user_features, np.float32)
  u, f, h = user.shape[1], tables.track_features.shape[1], history_window
  # Filled in place, column blocks as in the module docstring: this runs
  # once per environment step, so it avoids temporary concatenations.
  out = np.empty((r, k, u + f + _NUM_SCALARS + 2 * h), np.float32)
  out[:, :, :u] = user[:, None, :]
  out[:, :, u:u + f] = tables.track_features[track_ids]
  counts = out[:, :, u + f:u + f + 3]
  counts[...] = np.stack([context.position, context.consecutive_skips,
                          context.num_skips], axis=1)[:, None, :]
  counts[:, :, 0] += np.arange(k, dtype=np.float32)
  counts /= _COUNT_SCALE
  c0 = u + f + _NUM_SCALARS
  for j in range(k):
    # Earlier slate items are heard before item j: they join its history.
    if j:
      ids = np.concatenate([hist, track_ids[:, :j]], axis=1)
      ok = np.concatenate([valid, np.ones((r, j), bool)], axis=1)
    else:
      ids, ok = hist, valid
    ids, ok = _window(ids, ok, history_window)
    cand = track_ids[:, j]
    row = out[:, j]
    np.einsum("rd,rhd->rh", tables.unit_acoustic[cand],
              tables.unit_acoustic[ids], out=row[:, c0:c0 + h])
    row[:, c0:c0 + h] *= ok
    row[:, c0 + h:] = ok
    # The window is right-aligned, so the last valid slot is the previous
    # track whenever any slot is valid.
    has_prev = ok[:, -1]
    row[:, u + f + 3] = has_prev
    diff = tables.acoustic[cand] - tables.acoustic[ids[:, -1]]
    row[:, u + f + 4] = np.sqrt(np.einsum("rd,rd->r", diff, diff)) * has_prev
  return out


def one_hot_levels(levels: np.ndarray) -> np.ndarray:
  """float32 [R, NUM_LEVELS] one-hot of level indices (0..NUM_LEVELS-1)."""
  return np.eye(NUM_LEVELS, dtype=np.float32)[np.asarray(levels)]


def swm_step_features(track_ids: np.ndarray, level_weights: np.ndarray,
                      tables: FeatureTables) -> np.ndarray:
  """SWM step inputs of played tracks.

  Args:
    track_ids: int [R] catalog rows of the played tracks.
    level_weights: float [R, NUM_LEVELS], the one-hot response level (see
      `one_hot_levels`), or predicted probabilities when the response is not
      known yet (slate items).
    tables: the catalog's tables.

  Returns:
    float32 [R, FeatureSpec.swm_step_dim].
  """
  r = len(track_ids)
  track_ids = np.asarray(track_ids)
  return np.concatenate([
      tables.track_features[track_ids], tables.unit_acoustic[track_ids],
      np.asarray(level_weights, np.float32),
      np.zeros((r, 1), np.float32)], axis=1)


def swm_start_features(n: int, tables: FeatureTables) -> np.ndarray:
  """SWM start tokens: no track, no response, start flag 1.

  Args:
    n: how many.
    tables: the catalog's tables.

  Returns:
    float32 [n, FeatureSpec.swm_step_dim].
  """
  width = tables.track_features.shape[1] + ACOUSTIC_DIM + NUM_LEVELS + 1
  start = np.zeros((n, width), np.float32)
  start[:, -1] = 1.0
  return start


def swm_candidate_features(context: SessionContext, track_ids: np.ndarray,
                           tables: FeatureTables,
                           history_window: int = HISTORY_WINDOW) -> np.ndarray:
  """SWM candidate inputs of each placed track: the CWM row plus acoustics.

  The row is `cwm_features` (same code, same context, so the SWM head is at
  least as informed as the CWM) with the candidate's unit acoustic vector
  inserted after its catalog features: user, track features, unit acoustic
  vector, then the CWM's session scalars (position first), history cosines
  and history flags.

  Args:
    context: the sessions (R rows).
    track_ids: int [R, k] catalog rows, a slate in play order.
    tables: the catalog's tables.
    history_window: played tracks to look back on (as the CWM).

  Returns:
    float32 [R, k, FeatureSpec.swm_candidate_dim]; slate item j is
    featurised as the CWM does (earlier items join its history, position
    + j).
  """
  track_ids = np.asarray(track_ids)
  cwm = cwm_features(context, track_ids, tables, history_window)
  cut = np.shape(context.user_features)[1] + tables.track_features.shape[1]
  return np.concatenate([cwm[..., :cut], tables.unit_acoustic[track_ids],
                         cwm[..., cut:]], axis=2).astype(np.float32)


def user_index_column(user_ids: np.ndarray, user_vocab: int) -> np.ndarray:
  """The user-embedding index of each user, as the models' last column.

  Index 0 is the "unknown user" row; user id u < user_vocab - 1 has index
  u + 1, and any other id (negative, or beyond the users seen in training)
  falls back to 0.

  Args:
    user_ids: int [R] user ids.
    user_vocab: rows of the model's embedding (user ids seen + 1).

  Returns:
    float32 [R, 1]; float32 holds integers exactly below 2**24.
  """
  user_ids = np.asarray(user_ids, np.int64)
  known = (user_ids >= 0) & (user_ids < user_vocab - 1)
  return np.where(known, user_ids + 1, 0).astype(np.float32)[:, None]


def logged_contexts(track_rows: np.ndarray, levels: np.ndarray,
                    offsets: np.ndarray, user_ids: np.ndarray,
                    user_features: np.ndarray,
                    history_window: int = HISTORY_WINDOW) -> SessionContext:
  """The context each logged track was played in, as the environment shows it.

  Row i of the result is the session as it stood just before logged row i:
  its listener, position, last `history_window` played tracks and levels
  (most recent last, -1 padding), the skips since the last listen and the
  skips so far.

  Args:
    track_rows: int [R] catalog row of each logged track, grouped by session
      in play order.
    levels: int [R] response level of each row (`PUBLIC_RESPONSE_LEVELS`).
    offsets: int [S + 1]; session s is rows offsets[s]:offsets[s + 1].
    user_ids: int [R] listener of each row.
    user_features: float [R, U] user context of each row.
    history_window: H, the history columns to fill.

  Returns:
    A `SessionContext` with R rows (`rows` is 0..R-1).
  """
  track_rows = np.asarray(track_rows)
  levels = np.asarray(levels)
  offsets = np.asarray(offsets, np.int64)
  n = len(track_rows)
  lengths = np.diff(offsets)
  start = np.repeat(offsets[:-1], lengths)
  index = np.arange(n)
  # Slot c (oldest first) of row i holds row i - (H - c), if in the session.
  source = index[:, None] - np.arange(history_window, 0, -1)[None, :]
  in_session = source >= start[:, None]
  source = np.maximum(source, 0)
  skipped = levels != _LISTEN
  skips_through = np.cumsum(skipped)
  skips_before = skips_through - skipped
  # Latest listen at or before each row (across sessions; clamped below).
  last_listen = np.maximum.accumulate(np.where(skipped, -1, index))
  last_listen_before = np.concatenate([[-1], last_listen[:-1]])
  consecutive = index - np.maximum(last_listen_before, start - 1) - 1
  return SessionContext(
      rows=index.astype(np.int64),
      user_ids=np.asarray(user_ids, np.int64),
      user_features=np.asarray(user_features, np.float32),
      position=(index - start).astype(np.int32),
      history_ids=np.where(in_session, track_rows[source], 0).astype(np.int32),
      history_responses=np.where(in_session, levels[source],
                                 -1).astype(np.int32),
      consecutive_skips=consecutive.astype(np.int32),
      num_skips=(skips_before - skips_before[start]).astype(np.int32))
