"""The ground-truth listener: a parametric model in which order matters.

`ParametricListener` turns a `SyntheticWorld` into skip/listen responses with
the five public levels (`PUBLIC_RESPONSE_LEVELS`: skip_1, skip_2, skip_3,
ended_otherwise, not_skipped). Unlike
`LogisticUserModel`, a track's appeal depends on what was played before it, so
the order of a playlist changes how many tracks are listened to.

Notation, for listener u and candidate track t at session position n:
`taste_u`, `z_t` are the world's 8-d latent vectors, `q_t` the latent track
quality, `a_t` the catalog's `acoustic_vector_*` (8-d, in (-1, 1)). The last H
played tracks h (the history window) have age 1 (most recent) to H.

    logit = bias
          + affinity_weight * <taste_u, z_t> / 8          (affinity)
          + quality_weight * q_t                          (popularity)
          - fatigue_weight * F                            (repetition fatigue)
          - jump_weight * J                               (transition)
          - consecutive_skip_weight * consecutive_skips   (patience)
          - skip_weight * num_skips                       (patience)
          - position_weight * n                           (interest drift)

    F = sum_h fatigue_decay ** (age_h - 1) * sim(t, h)
    sim(t, h) = max(0, (cos(z_t, z_h) - similarity_floor)
                       / (1 - similarity_floor))
    J = max(0, ||a_t - a_prev|| - jump_tolerance), 0 with no previous track

    P(not_skipped) = sigmoid(logit)

Tracks whose latent cosine exceeds `similarity_floor` tire the listener, the
more the closer they are: with the default floor of 0, a same-genre track
(cosine about 0.87) tires almost fully, a track of another genre little or
not at all (cross-genre cosines scatter around 0).
Fatigue fades geometrically with age and counts every played track whatever
its response. `prev` is the most recently played track.

Why order matters with the defaults. The tracks closest to a listener's taste
all point the same way in latent space, so each one played tires the listener
for the others; and a sure hit (logit 4, P 0.98) loses little to a unit of
fatigue while a borderline track (logit 0.5) loses a lot. A myopic policy
plays the sure hits first and leaves the borderline tracks for a tired
listener; a policy that looks one track ahead plays a near-best track that
tires the listener less for the best remaining ones, keeps sessions alive
longer (a session ends after a run of skips) and wins about 8-10% more
listens per session (see tests/user_models/test_listener.py).

The mass 1 - P(not_skipped) is split among the four other levels (the
earliest skip flag that fired, or none: ended otherwise) by a softmax whose
shares move with the logit, so that a strong dislike is skipped early and a
mild one plays further:

    share = softmax([skip_1_bias - skip_share_slope * logit,
                     0,
                     skip_3_bias + skip_share_slope * logit,
                     ended_otherwise_bias + skip_share_slope * logit])
    P(level_i) = (1 - P(not_skipped)) * share_i

With the default biases, a skip at logit 0 is a skip_1 with probability about
0.65 (close to the public data, where most skips happen early in the track).

Slates. When k > 1 tracks are placed in one step, slate item j is scored as
if items 0..j-1 had just been played: they enter its fatigue (with ages
1..j), item j-1 is its previous track, and its position is n + j. Their
responses are unknown, so the patience terms stay those of the context. The
history window still holds H tracks, so item j's fatigue is exactly what a
one-track-per-step session would compute after playing the earlier items.

`listen_probability(context, ids, independent=True)` instead scores each of
the k columns as the next track on its own, to rank candidates.

Leaving. A listener may also leave a session on their own: after each step,
with `leave_bias` set, the environment asks `leave_probability` and ends the
session with

    P(leave) = sigmoid(leave_bias
                       + leave_consecutive_skip_weight * consecutive_skips
                       - leave_position_weight * n)

read after the step's outcomes (n tracks played, the current run of skips).
The hazard grows with each skip in a row (impatience) and falls as a session
goes on (listeners who stayed are the engaged ones), which together give the
public data's session-length shape. With `leave_bias` None (the default) the
listener never leaves on its own and sessions end only by the environment's
rules (`consecutive_skip_limit`, `max_playlist_length`).

The model is stateless: it reads everything from the `SessionContext`, so it
can score any environment row or a logged session.
"""

import gin
import numpy as np

from user_models.base import AbstractUserModel
from user_models.base import PUBLIC_RESPONSE_LEVELS
from user_models.base import SessionContext
from playlist_sim.common.numeric import LOGIT_CLIP, sigmoid
from playlist_sim.data.world import LATENT_DIM, SyntheticWorld

__all__ = ["ParametricListener"]


@gin.configurable
class ParametricListener(AbstractUserModel):
  """Sequential, stateless listener over a `SyntheticWorld`.

  See the module docstring for the exact formulas.
  """

  response_levels = PUBLIC_RESPONSE_LEVELS

  def __init__(self,
               world: SyntheticWorld,
               affinity_weight: float = 2.5,
               quality_weight: float = 0.5,
               bias: float = 1.0,
               fatigue_weight: float = 1.25,
               fatigue_decay: float = 0.9,
               similarity_floor: float = 0.0,
               jump_weight: float = 0.3,
               jump_tolerance: float = 1.0,
               consecutive_skip_weight: float = 0.6,
               skip_weight: float = 0.03,
               position_weight: float = 0.02,
               skip_share_slope: float = 0.5,
               skip_1_bias: float = 1.4,
               skip_3_bias: float = 0.2,
               ended_otherwise_bias: float = -0.15,
               leave_bias: float | None = None,
               leave_consecutive_skip_weight: float = 0.0,
               leave_position_weight: float = 0.0):
    """Builds the listener.

    Args:
      world: the world whose listeners and tracks are modelled.
      affinity_weight: weight of the taste-track inner product (divided by
        the latent dimension, 8).
      quality_weight: weight of the track's latent quality.
      bias: logit offset; higher means more listens overall.
      fatigue_weight: logit lost per unit of fatigue F.
      fatigue_decay: per-track fading of a history track's fatigue, in
        [0, 1); 0 means only the previous track tires.
      similarity_floor: latent cosine at or below which two tracks do not
        tire each other, in [-1, 1).
      jump_weight: logit lost per unit of acoustic distance beyond
        `jump_tolerance` from the previous track.
      jump_tolerance: acoustic distance from the previous track that costs
        nothing (same-genre transitions are mostly below 1.0).
      consecutive_skip_weight: logit lost per skip since the last listen.
      skip_weight: logit lost per skip so far in the session.
      position_weight: logit lost per track already played.
      skip_share_slope: how fast the skip_1 share grows (and the skip_3
        share shrinks) as the logit falls.
      skip_1_bias: log-odds of skip_1 against skip_2 at logit 0.
      skip_3_bias: log-odds of skip_3 against skip_2 at logit 0.
      ended_otherwise_bias: log-odds of ended_otherwise (no flag set: played
        past skip_3 but not to the end) against skip_2 at logit 0.
      leave_bias: log-odds of leaving after a step with no skip in a row at
        position 0; None means the listener never leaves on its own.
      leave_consecutive_skip_weight: log-odds of leaving added per skip in a
        row.
      leave_position_weight: log-odds of leaving lost per track played.

    Raises:
      ValueError: on a decay outside [0, 1), a similarity floor outside
        [-1, 1), or a negative weight, tolerance or slope.
    """
    if not 0.0 <= fatigue_decay < 1.0:
      raise ValueError(
          f"ParametricListener: fatigue_decay must be in [0, 1), got "
          f"{fatigue_decay}")
    if not -1.0 <= similarity_floor < 1.0:
      raise ValueError(
          f"ParametricListener: similarity_floor must be in [-1, 1), got "
          f"{similarity_floor}")
    for name, value in (("fatigue_weight", fatigue_weight),
                        ("jump_weight", jump_weight),
                        ("jump_tolerance", jump_tolerance),
                        ("consecutive_skip_weight", consecutive_skip_weight),
                        ("skip_weight", skip_weight),
                        ("position_weight", position_weight),
                        ("skip_share_slope", skip_share_slope),
                        ("leave_consecutive_skip_weight",
                         leave_consecutive_skip_weight),
                        ("leave_position_weight", leave_position_weight)):
      if float(value) < 0:
        raise ValueError(
            f"ParametricListener: {name} must be >= 0, got {value}")
    self.world = world
    self.affinity_weight = float(affinity_weight)
    self.quality_weight = float(quality_weight)
    self.bias = float(bias)
    self.fatigue_weight = float(fatigue_weight)
    self.fatigue_decay = float(fatigue_decay)
    self.similarity_floor = float(similarity_floor)
    self.jump_weight = float(jump_weight)
    self.jump_tolerance = float(jump_tolerance)
    self.consecutive_skip_weight = float(consecutive_skip_weight)
    self.skip_weight = float(skip_weight)
    self.position_weight = float(position_weight)
    self.skip_share_slope = float(skip_share_slope)
    self.skip_1_bias = float(skip_1_bias)
    self.skip_3_bias = float(skip_3_bias)
    self.ended_otherwise_bias = float(ended_otherwise_bias)
    self.leave_bias = None if leave_bias is None else float(leave_bias)
    self.leave_consecutive_skip_weight = float(leave_consecutive_skip_weight)
    self.leave_position_weight = float(leave_position_weight)

    # Everything per track is looked up by catalog row in the hot loop, so
    # the scaling is folded into the tables once here.
    latent = world.track_latent.astype(np.float32)
    self._taste = world.user_taste.astype(np.float32)
    self._latent = latent * np.float32(self.affinity_weight / LATENT_DIM)
    self._static = (self.quality_weight * world.track_quality +
                    self.bias).astype(np.float32)
    norms = np.linalg.norm(latent, axis=1, keepdims=True)
    self._unit = latent / np.maximum(norms, 1e-6)
    columns = world.catalog.columns
    self._acoustic = np.stack(
        [columns[f"acoustic_vector_{i}"] for i in range(LATENT_DIM)],
        axis=1).astype(np.float32)
    self._tables = {}

  def _decay_table(self, window: int, size: int) -> np.ndarray:
    """Fatigue weight indexed by age - 1: decay ** (age - 1) inside the
    window, 0 beyond it (so slate items see exactly H tracks)."""
    key = (window, size)
    table = self._tables.get(key)
    if table is None:
      table = np.zeros(size, np.float32)
      table[:window] = self.fatigue_decay ** np.arange(window)
      self._tables[key] = table
    return table

  def listen_logits(self, context: SessionContext, track_ids: np.ndarray,
                    independent: bool = False,
                    taste: np.ndarray | None = None) -> np.ndarray:
    """Logit of a listen for each placed track.

    Args:
      context: the sessions asked about (R rows).
      track_ids: int [R, k] catalog rows.
      independent: if False, the k tracks are a slate played in order (as in
        `predict`); if True, each column is scored as if it alone were
        played next, which is what ranking k candidates needs.
      taste: float [R, 8] latent tastes to use instead of the listeners'
        own: the world's response to an estimate of the taste, as a model
        that knows the world but not the listener would predict
        (`user_models.taste_ceiling`). None: the listeners' own.

    Returns:
      float32 [R, k] logits.

    Raises:
      ValueError: if `track_ids` is not two-dimensional, or `taste` not
        [R, 8].
    """
    track_ids = np.asarray(track_ids)
    if track_ids.ndim != 2:
      raise ValueError(
          f"ParametricListener: track_ids must be [R, k], got shape "
          f"{track_ids.shape}")
    k = track_ids.shape[1]
    slate = not independent and k > 1
    # Slot of each column after the context's last track: 0..k-1 for a
    # slate, all 0 for independent candidates.
    slots = np.arange(k) if slate else np.zeros(k, np.int64)

    if taste is None:
      taste = self._taste[context.user_ids]
    else:
      taste = np.asarray(taste, np.float32)
      if taste.shape != (track_ids.shape[0], LATENT_DIM):
        raise ValueError(
            f"ParametricListener: taste must be [R, {LATENT_DIM}] with R = "
            f"{track_ids.shape[0]} rows of track_ids, got shape "
            f"{taste.shape}")
    logit = (np.einsum("rd,rkd->rk", taste, self._latent[track_ids]) +
             self._static[track_ids])
    patience = (self.consecutive_skip_weight *
                np.asarray(context.consecutive_skips) +
                self.skip_weight * np.asarray(context.num_skips) +
                self.position_weight * np.asarray(context.position))
    logit -= patience.astype(np.float32)[:, None]
    if slate:
      logit -= (self.position_weight * slots).astype(np.float32)
    hist = np.asarray(context.history_ids)
    valid = np.asarray(context.history_responses) >= 0        # [R, H]
    if self.fatigue_weight:
      logit -= np.float32(self.fatigue_weight) * self._fatigue(
          hist, valid, track_ids, slate, slots)
    if self.jump_weight:
      logit -= np.float32(self.jump_weight) * self._jump(
          hist, valid, track_ids, slate)
    return logit.astype(np.float32, copy=False)

  def _fatigue(self, hist: np.ndarray, valid: np.ndarray,
               track_ids: np.ndarray, slate: bool,
               slots: np.ndarray) -> np.ndarray:
    """F of the module docstring, float32 [R, k]."""
    r, k = track_ids.shape
    window = hist.shape[1]
    if slate:
      # Earlier slate items join the history, so one matmul scores every
      # slate item; each item counts ages from its own slot.
      ids = np.concatenate([hist, track_ids[:, :-1]], axis=1)
      ok = np.concatenate([valid, np.ones((r, k - 1), bool)], axis=1)
    else:
      ids, ok = hist, valid
    if ids.shape[1] == 0:
      return np.zeros((r, k), np.float32)
    # Valid tracks in columns >= c: the age of column c as seen after the
    # last column; item j has k-1-j of the appended columns still ahead.
    from_end = np.cumsum(ok[:, ::-1], axis=1)[:, ::-1]
    shift = (k - 1 - slots) if slate else np.zeros(k, np.int64)
    ages = from_end[:, None, :] - shift[None, :, None]       # [R, k, C]
    table = self._decay_table(window, window + k)
    weight = np.where(ok[:, None, :] & (ages >= 1),
                      table[np.clip(ages - 1, 0, window + k - 1)], 0.0)
    cos = np.matmul(self._unit[track_ids],
                    self._unit[ids].transpose(0, 2, 1))      # [R, k, C]
    sim = np.maximum(cos - self.similarity_floor, 0.0)
    fatigue = np.einsum("rkc,rkc->rk", sim, weight)
    return (fatigue / (1.0 - self.similarity_floor)).astype(np.float32)

  def _jump(self, hist: np.ndarray, valid: np.ndarray, track_ids: np.ndarray,
            slate: bool) -> np.ndarray:
    """J of the module docstring, float32 [R, k]."""
    r, k = track_ids.shape
    window = hist.shape[1]
    if window:
      # The most recent valid column; argmax finds the first True from the
      # right, and rows without history are masked by has_prev.
      last = window - 1 - np.argmax(valid[:, ::-1], axis=1)
      prev = hist[np.arange(r), last]
      has_prev = valid.any(axis=1)
    else:
      prev = np.zeros(r, np.int64)
      has_prev = np.zeros(r, bool)
    if slate:
      prev_ids = np.concatenate([prev[:, None], track_ids[:, :-1]], axis=1)
      prev_ok = np.concatenate(
          [has_prev[:, None], np.ones((r, k - 1), bool)], axis=1)
    else:
      prev_ids, prev_ok = prev[:, None], has_prev[:, None]
    dist = np.linalg.norm(self._acoustic[track_ids] - self._acoustic[prev_ids],
                          axis=-1)
    return (np.maximum(dist - self.jump_tolerance, 0.0) *
            prev_ok).astype(np.float32)

  def listen_probability(self, context: SessionContext, track_ids: np.ndarray,
                         independent: bool = False) -> np.ndarray:
    """P(not_skipped) for each placed track.

    Args:
      context: the sessions asked about (R rows).
      track_ids: int [R, k] catalog rows.
      independent: as in `listen_logits`; pass True to rank k candidates for
        the next slot (e.g. a greedy policy that knows the truth).

    Returns:
      float32 [R, k] listen probabilities.
    """
    return sigmoid(self.listen_logits(context, track_ids, independent),
                   clip=LOGIT_CLIP)

  def predict(self, context: SessionContext,
              track_ids: np.ndarray) -> np.ndarray:
    """Response probabilities for a slate (see the module docstring).

    Args:
      context: the sessions asked about (R rows).
      track_ids: int [R, k] catalog rows of the tracks placed, in play order.

    Returns:
      float32 [R, k, 5] probabilities over `PUBLIC_RESPONSE_LEVELS`.
    """
    # Clipped here, not in sigmoid: the skip shares below use the same logit.
    logit = np.clip(self.listen_logits(context, track_ids), -LOGIT_CLIP,
                    LOGIT_CLIP)
    p_listen = sigmoid(logit)
    slope = np.float32(self.skip_share_slope)
    # Softmax against skip_2 (logit 0): e1, 1, e3, e4.
    e1 = np.exp(np.float32(self.skip_1_bias) - slope * logit)
    e3 = np.exp(np.float32(self.skip_3_bias) + slope * logit)
    e4 = np.exp(np.float32(self.ended_otherwise_bias) + slope * logit)
    p_skip = (1.0 - p_listen) / (e1 + 1.0 + e3 + e4)
    return np.stack([p_skip * e1, p_skip, p_skip * e3, p_skip * e4,
                     p_listen], axis=-1)

  def leave_probability(self, context: SessionContext) -> np.ndarray | None:
    """P(the listener leaves now), read after a step's outcomes.

    Args:
      context: the sessions after the step (position and consecutive skips
        already count the step's tracks).

    Returns:
      float64 [R] probabilities (see the module docstring), or None when
      `leave_bias` is None (the listener never leaves on its own).
    """
    if self.leave_bias is None:
      return None
    logit = (self.leave_bias + self.leave_consecutive_skip_weight *
             np.asarray(context.consecutive_skips, np.float64) -
             self.leave_position_weight *
             np.asarray(context.position, np.float64))
    return sigmoid(logit, clip=LOGIT_CLIP)
