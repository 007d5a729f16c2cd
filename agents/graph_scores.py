"""A learned user model's candidate scores as TensorFlow ops.

`playlist_sim.policies.score_features` computes `candidate_scores` (the learned
model's P(listen) of each candidate) in NumPy beside the environment. An
exported policy cannot rely on that code: it must compute the scores itself from
the environment's observation. `GraphScorer` rebuilds the CWM input rows of
`user_models.features.cwm_features` (one row per candidate, a slate of one)
with TensorFlow ops over catalog tables it holds as constants, and runs the
CWM's Keras layers in the same graph, so a SavedModel carries the scorer.
`GraphScorer.lookahead` does the same for the one-step lookahead feature of
`agents.lookahead_features` (the second track of a slate of two).

Supported scorers are context-wise (CWM) models: a `KerasUserModel`, or a
`LiteRTUserModel` whose `user_model.meta.json` names the Keras model it was
quantised from (`"source"`); the graph runs that float model, so its scores
differ from the int8 flatbuffer's by the quantisation error. The observation
carries no listener id, so a model with a user embedding is fed the
"unknown user" index 0 (the row it learned for listeners it has not seen).
"""

import json
import os

import numpy as np
import tensorflow as tf

# pylint: disable-next=protected-access
from playlist_sim.policies.baselines import _listen_probability_scores
from user_models import features
from user_models import keras_models
from user_models.keras_user_model import KerasUserModel, load_user_model
from user_models.litert_user_model import META_FILE, LiteRTUserModel

__all__ = ["GraphScorer", "UnsupportedScorerError", "keras_cwm_of",
           "numpy_reference"]


class UnsupportedScorerError(ValueError):
  """The user model cannot be turned into graph ops (see the module doc)."""


def keras_cwm_of(user_model) -> tf.keras.Model:
  """The float Keras CWM behind a Keras or LiteRT user model.

  Args:
    user_model: a `KerasUserModel` or `LiteRTUserModel` serving a CWM.

  Returns:
    The Keras model.

  Raises:
    UnsupportedScorerError: for another kind of model, an SWM (its scores
      depend on a per-session state), or a LiteRT model whose source Keras
      file is gone.
  """
  name = type(user_model).__name__
  kind = getattr(user_model, "kind", None)
  if not isinstance(user_model, (KerasUserModel, LiteRTUserModel)):
    raise UnsupportedScorerError(
        f"a portable policy can carry a Keras or LiteRT CWM as its scorer, "
        f"not a {name}; train with a CWM (configs/user_model_cwm.gin) or "
        "without train_eval.user_model_scores")
  if kind != keras_models.CWM_NAME:
    raise UnsupportedScorerError(
        f"the scorer {name}({user_model.model_path!r}) is a {kind}; only a "
        "CWM (context-wise, stateless) can be carried by a portable policy")
  if isinstance(user_model, LiteRTUserModel):
    meta_path = os.path.join(os.path.dirname(user_model.model_path),
                             META_FILE)
    with open(meta_path) as f:
      source = json.load(f).get("source")
    if not source or not os.path.isfile(source):
      raise UnsupportedScorerError(
          f"{META_FILE} beside {user_model.model_path!r} names no Keras "
          f"model that exists ({source!r}); the portable policy runs the "
          "float CWM the flatbuffer was quantised from: keep that file")
    return load_user_model(source)
  return user_model.model


class GraphScorer(tf.Module):
  """observation -> [B, K] P(listen) of each candidate, in TensorFlow."""

  def __init__(self, user_model, env_listen_level: int):
    """Builds the tables and takes the CWM's layers.

    Args:
      user_model: a Keras or LiteRT CWM user model (see `keras_cwm_of`).
      env_listen_level: the environment's listen level in
        `history_responses` (the largest level of its spec).

    Raises:
      UnsupportedScorerError: see `keras_cwm_of`.
    """
    super().__init__(name="graph_scorer")
    self.model = keras_cwm_of(user_model)
    tables = user_model.tables
    self._track_features = tf.constant(tables.track_features, tf.float32)
    self._acoustic = tf.constant(tables.acoustic, tf.float32)
    self._unit_acoustic = tf.constant(tables.unit_acoustic, tf.float32)
    self._history_window = int(user_model.spec.history_window)
    self._with_index = bool(user_model.user_vocab)
    self._env_listen_level = int(env_listen_level)
    self._model_listen_level = int(user_model.listen_level)

  def _context(self, obs: dict):
    """Skip counts, the windowed history and its validity (as NumPy's)."""
    responses = tf.cast(obs["history_responses"], tf.int32)
    skips = (responses >= 0) & (responses != self._env_listen_level)
    # The trailing run of skips: slots after the last non-skip.
    not_skip_from_end = tf.cumsum(
        tf.cast(~skips[:, ::-1], tf.int32), axis=1) > 0
    trailing = tf.reduce_sum(tf.cast(~not_skip_from_end, tf.float32), axis=1)
    num_skips = tf.reduce_sum(tf.cast(skips, tf.float32), axis=1)
    ids = tf.cast(obs["history_ids"], tf.int32)
    valid = responses >= 0
    width, window = ids.shape[1], self._history_window
    if width >= window:  # Right-aligned: the last `window` slots.
      ids, valid = ids[:, width - window:], valid[:, width - window:]
    else:
      pad = [[0, 0], [window - width, 0]]
      ids, valid = tf.pad(ids, pad), tf.pad(valid, pad, constant_values=False)
    return trailing, num_skips, ids, valid

  def _rows(self, user, cand, scalars, has_prev, distance, cosines, ok):
    """CWM input rows [..., D] from per-candidate parts (shapes [..., *])."""
    shape = tf.shape(cand)

    def per_row(x):  # [B, D] -> [B, ..., D], one copy per candidate.
      return tf.broadcast_to(
          tf.reshape(x, tf.concat([[shape[0]], tf.ones_like(shape[1:]),
                                   tf.shape(x)[1:]], 0)),
          tf.concat([shape, tf.shape(x)[1:]], 0))
    parts = [per_row(user), tf.gather(self._track_features, cand),
             per_row(scalars), has_prev, distance[..., None], cosines, ok]
    if self._with_index:  # The observation has no listener: unknown user.
      parts.append(tf.zeros(tf.concat([shape, [1]], 0), tf.float32))
    return tf.concat(parts, axis=-1)

  def _listen(self, rows):
    """The model's P(listen) of rows [..., D], shaped [...]."""
    flat = tf.reshape(rows, [-1, tf.shape(rows)[-1]])
    probs = self.model(flat, training=False)[:, self._model_listen_level]
    return tf.reshape(probs, tf.shape(rows)[:-1])

  @tf.function(autograph=False)
  def lookahead(self, obs: dict, scores: tf.Tensor,
                shortlist: int) -> tf.Tensor:
    """`agents.lookahead_features.lookahead_values` in TensorFlow.

    Args:
      obs: a batched playlist observation (tensors).
      scores: float [B, K] this scorer's P(listen) of each candidate.
      shortlist: candidates per row that get a value (a Python int).

    Returns:
      float32 [B, K]: the best P(listen) of another shortlisted candidate
      played right after each shortlisted one; 0 elsewhere.
    """
    trailing, num_skips, hist, valid = self._context(obs)
    cand = tf.cast(obs["candidate_ids"], tf.int32)
    available = tf.cast(obs["candidate_mask"], tf.bool)
    m = min(int(shortlist), cand.shape[1] or int(shortlist))
    ranked = tf.where(available, tf.cast(scores, tf.float32), -np.inf)
    short = tf.math.top_k(ranked, m).indices                     # [B, m]
    short_ok = tf.gather(available, short, batch_dims=1)
    first = tf.gather(cand, short, batch_dims=1)                 # [B, m]
    b = tf.shape(cand)[0]
    # The next track's window: the history shifted by one, then `first`.
    ok = tf.concat([tf.cast(valid[:, 1:], tf.float32), tf.ones([b, 1])], 1)
    pair = [b, m, m]  # [row, first i, second j]
    second = tf.broadcast_to(first[:, None, :], pair)
    unit_hist = tf.gather(self._unit_acoustic, hist[:, 1:])     # [B, h-1, d]
    unit_second = tf.gather(self._unit_acoustic, second)
    cosines = tf.concat([
        tf.einsum("bijd,bhd->bijh", unit_second, unit_hist),
        tf.einsum("bijd,bid->bij", unit_second, tf.gather(
            self._unit_acoustic, first))[..., None]], -1) * ok[:, None, None]
    distance = tf.norm(tf.gather(self._acoustic, second) -
                       tf.gather(self._acoustic, first)[:, :, None], axis=-1)
    position = tf.cast(obs["position"], tf.float32) + 1.0
    scalars = tf.stack([position, trailing, num_skips], axis=1) / (
        features._COUNT_SCALE)  # pylint: disable=protected-access
    rows = self._rows(tf.cast(obs["user_features"], tf.float32), second,
                      scalars, tf.ones(pair + [1]), distance, cosines,
                      tf.broadcast_to(ok[:, None, None, :],
                                      pair + [tf.shape(ok)[1]]))
    usable = (short_ok[:, None, :] & short_ok[:, :, None] &
              ~tf.eye(m, dtype=tf.bool)[None])
    best = tf.reduce_max(tf.where(usable, self._listen(rows), 0.0), axis=2)
    best = tf.where(short_ok, best, 0.0)
    out = tf.einsum("bi,bik->bk", best,
                    tf.one_hot(short, tf.shape(cand)[1], dtype=tf.float32))
    return tf.clip_by_value(out, 0.0, 1.0)

  @tf.function(autograph=False)  # Plain ops: no source lookup needed.
  def __call__(self, obs: dict) -> tf.Tensor:
    """Scores every candidate; unavailable ones get 0.

    Args:
      obs: a batched playlist observation (tensors).

    Returns:
      float32 [B, K] in [0, 1].
    """
    trailing, num_skips, hist, valid = self._context(obs)
    cand = tf.cast(obs["candidate_ids"], tf.int32)  # [B, K]
    b, k = tf.shape(cand)[0], tf.shape(cand)[1]
    user = tf.cast(obs["user_features"], tf.float32)
    position = tf.cast(obs["position"], tf.float32)
    ok = tf.cast(valid, tf.float32)  # [B, h]
    scalars = tf.stack([position, trailing, num_skips], axis=1) / (
        features._COUNT_SCALE)  # pylint: disable=protected-access
    has_prev = ok[:, -1]
    diff = (tf.gather(self._acoustic, cand) -
            tf.gather(self._acoustic, hist[:, -1])[:, None, :])
    distance = tf.norm(diff, axis=2) * has_prev[:, None]
    cosines = tf.einsum("bkd,bhd->bkh", tf.gather(self._unit_acoustic, cand),
                        tf.gather(self._unit_acoustic, hist)) * ok[:, None]

    def per_row(x):  # [B, D] -> [B, K, D]
      return tf.broadcast_to(x[:, None, :], [b, k, tf.shape(x)[1]])
    parts = [per_row(user), tf.gather(self._track_features, cand),
             per_row(scalars), per_row(has_prev[:, None]),
             distance[..., None], cosines, per_row(ok)]
    if self._with_index:  # The observation has no listener: unknown user.
      parts.append(tf.zeros([b, k, 1], tf.float32))
    rows = tf.concat(parts, axis=2)
    probs = self.model(tf.reshape(rows, [b * k, -1]), training=False)
    scores = tf.reshape(probs[:, self._model_listen_level], [b, k])
    scores = tf.where(tf.cast(obs["candidate_mask"], tf.bool), scores, 0.0)
    return tf.clip_by_value(scores, 0.0, 1.0)


def numpy_reference(user_model, env_listen_level: int, obs: dict,
                    user_ids: np.ndarray | None = None) -> np.ndarray:
  """The same scores by the package's NumPy code (for tests and checks)."""
  score = _listen_probability_scores(
      user_model, env_listen_level,
      None if user_ids is None else (lambda: user_ids))
  scores = np.where(obs["candidate_mask"], score(obs), 0.0)
  return np.clip(scores, 0.0, 1.0).astype(np.float32)
