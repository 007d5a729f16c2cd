"""The action-head Q-network of AH-DQN: one shared head scores every candidate.

After Spotify's "Automatic Music Playlist Generation via Simulation-based
Reinforcement Learning" (KDD 2023): instead of one output per pool slot, a
single MLP (the *action head*) maps (state, candidate) to Q(s, candidate), so
the network works for any pool size K and any tracks, including pools larger
or smaller than those seen in training.

Observations carry track *ids*; the network holds the catalog's feature table
(`TrackCatalog.features`, float32 [N, F]) as a non-trainable constant and
looks candidates and history tracks up in it, so the replay buffer stores ids,
not K x F floats.

For a row with user features u, history (ids h_1..h_H, most recent last,
response levels r_j, -1 for padding), position n, candidates c_1..c_K:

    e(t)      = W_e x_t                    learned track embedding (dim d) of
                                           the catalog features x_t
    w_j       = decay ** (H - j) [r_j >= 0]        recency weight of slot j
    listen_j  = [r_j = listen],  skip_j = [0 <= r_j < listen]
    m_listen  = sum_j w_j listen_j e(h_j) / max(sum_j w_j listen_j, 1e-6)
    m_skip    = same with skip_j                   (decayed means)
    last      = e(h_H) [r_H >= 0]
    scalars   = [trailing skips / H, skips / H, listens / H,
                 n / max_position]
    s         = MLP_state([u, m_listen, m_skip, last, scalars])
    cos_kj    = cos(e(c_k), e(h_j)) [r_j >= 0]     similarity to history
    z_k       = [s, x_{c_k}, (W_s s) * e(c_k), cos_k. * listen, cos_k. * skip
                 (, p_k) (, l_k)]
    Q(s, c_k) = MLP_head(z_k)                      one scalar per candidate

where p_k is the observation's optional `candidate_scores` (a learned user
model's P(listen) of the candidate, see `playlist_sim.policies.score_features`), used when
the spec has that key, and l_k its optional `candidate_lookahead` (the same
model's best P(listen) of the next track once c_k is played, see
`agents.lookahead_features`).

With `score_residual` (which needs that key) the head is a residual over
the score, with a state value beside it:

    Q(s, c_k) = score_weight * p_k + lookahead_weight * l_k + V(s)
                + advantage_scale * MLP_head(z_k)
    V(s)      = w_v . s + b_v

and the head's last layer starts at zero. In the learned simulator the
immediate expected reward of playing c_k *is* reward(listen) * p_k (the
simulator draws the outcome from the same model), so with `score_weight`
that reward the head only has to learn what comes after; with
`lookahead_weight` = gamma * reward(listen) the next step's best expected
reward is in Q from the start too (the model's own one-step lookahead), and
the head learns what the two-step view misses: V(s) the state's
continuation value, the head how c_k changes it (fatigue, skips in a row).
At initialisation the greedy policy is greedy-by-the-model; training adds
the sequencing correction instead of relearning the model's ranking. The
true correction is small next to the value of a state (a few hundredths of
a listen), so `advantage_scale` < 1 slows how fast the head's output moves
(the gradient and the output both scale with it): noise in a barely
trained head does not reorder candidates the model ranks well.

With `shortlist_size` k (which also needs the scores) only the k available
candidates the score ranks highest compete: the others get
`MASKED_Q_VALUE`, in the greedy policy and in the TD targets alike. The
learned model shortlists, the agent re-ranks the shortlist: an argmax over
100 noisy Q values picks the candidate whose error is largest (the winner's
curse), an argmax over the model's top few can only trade near-equals for
a better sequence.

The similarity features let the head see how much a candidate repeats what
was just played (listeners tire of repetition); the product (W_s s) * e(c_k)
is the state-candidate interaction a plain concatenation learns slowly.
Candidates outside `candidate_mask` get `MASKED_Q_VALUE`, so they never win
an argmax even without the agent's action-constraint splitter.
"""

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf
from tf_agents.networks import network

__all__ = ["ActionHeadQNetwork", "HEAD_CANDIDATE_INPUTS", "MASKED_Q_VALUE",
           "OBSERVATION_KEYS",
           "OPTIONAL_CANDIDATE_KEYS", "shortlist_mask"]

#: Q value of masked candidates: finite (a discount of 0 times it is 0, so
#: terminal targets stay finite) and far below any reachable return.
MASKED_Q_VALUE = -1e6

#: Keys a playlist observation must have (see `simulator.PlaylistEnvironment`).
OBSERVATION_KEYS = ("user_features", "history_ids", "history_responses",
                    "position", "candidate_ids", "candidate_mask")

#: Optional per-candidate float features [K] the networks use when present:
#: the learned model's P(listen) now, and its one-step lookahead
#: (`agents.lookahead_features`).
OPTIONAL_CANDIDATE_KEYS = ("candidate_scores", "candidate_lookahead")

#: The candidate inputs of the head, in the order of z_k (module docstring).
HEAD_CANDIDATE_INPUTS = ("features", "interaction", "similarity", "scores",
                         "lookahead")


def shortlist_mask(available: tf.Tensor, scores: tf.Tensor,
                   shortlist_size: int) -> tf.Tensor:
  """`available` cut to the `shortlist_size` best-scored candidates.

  Args:
    available: bool [..., K] candidate mask.
    scores: float [..., K] candidate scores.
    shortlist_size: candidates kept per row.

  Returns:
    bool [..., K]: available and among the row's best `shortlist_size` by
    score (ties at the cut all stay; a row with fewer available keeps them
    all).
  """
  scores = tf.where(available, tf.cast(scores, tf.float32), -np.inf)
  k = tf.minimum(shortlist_size, tf.shape(scores)[-1])
  kth_best = tf.math.top_k(scores, k).values[..., -1:]
  return available & (scores >= kth_best)


def _check_observation_spec(spec) -> None:
  missing = [k for k in OBSERVATION_KEYS if k not in spec]
  if missing:
    raise ValueError(f"the observation spec lacks {missing}; expected the "
                     f"playlist observation keys {OBSERVATION_KEYS}")


def _checked_arguments(input_tensor_spec, track_features, history_decay,
                       score_residual, score_weight, shortlist_size,
                       head_candidate_inputs, advantage_scale,
                       lookahead_weight=0.0) -> np.ndarray:
  """Checks `ActionHeadQNetwork`'s arguments; the feature table as float32.

  Raises:
    ValueError: as `ActionHeadQNetwork`.
  """
  _check_observation_spec(input_tensor_spec)
  track_features = np.asarray(track_features, np.float32)
  if track_features.ndim != 2:
    raise ValueError(f"track_features must be [num_tracks, num_features], "
                     f"got shape {track_features.shape}")
  if not 0.0 < history_decay <= 1.0:
    raise ValueError(f"history_decay must be in (0, 1], got "
                     f"{history_decay}")
  if score_residual and OPTIONAL_CANDIDATE_KEYS[0] not in input_tensor_spec:
    raise ValueError(
        f"score_residual needs {OPTIONAL_CANDIDATE_KEYS[0]!r} in the "
        "observation: train with train_eval.user_model_scores = True (or "
        "wrap the environment in playlist_sim.policies.score_features."
        "UserModelScoreWrapper), or set score_residual = False")
  if not np.isfinite(score_weight):
    raise ValueError(f"score_weight must be a finite number, got "
                     f"{score_weight!r}")
  if shortlist_size is not None and (
      isinstance(shortlist_size, bool) or
      not isinstance(shortlist_size, (int, np.integer)) or
      shortlist_size < 1 or
      OPTIONAL_CANDIDATE_KEYS[0] not in input_tensor_spec):
    raise ValueError(
        f"shortlist_size must be None or an integer >= 1 with "
        f"{OPTIONAL_CANDIDATE_KEYS[0]!r} in the observation (train_eval."
        f"user_model_scores = True), got {shortlist_size!r}")
  unknown = sorted(set(head_candidate_inputs) - set(HEAD_CANDIDATE_INPUTS))
  absent = {name for name, key in (("scores", OPTIONAL_CANDIDATE_KEYS[0]),
                                   ("lookahead", OPTIONAL_CANDIDATE_KEYS[1]))
            if key not in input_tensor_spec}
  if unknown or not set(head_candidate_inputs) - absent:
    raise ValueError(
        f"head_candidate_inputs must be a non-empty subset of "
        f"{HEAD_CANDIDATE_INPUTS}, got {tuple(head_candidate_inputs)!r}")
  has_lookahead = OPTIONAL_CANDIDATE_KEYS[1] in input_tensor_spec
  if not np.isfinite(lookahead_weight) or (
      lookahead_weight and not (score_residual and has_lookahead)):
    raise ValueError(
        f"lookahead_weight = {lookahead_weight!r} needs a finite value, "
        f"score_residual = True and {OPTIONAL_CANDIDATE_KEYS[1]!r} in the "
        "observation (agents.environments.scored_env.lookahead_shortlist); "
        "or set lookahead_weight = 0")
  if not (np.isfinite(advantage_scale) and advantage_scale > 0):
    raise ValueError(f"advantage_scale must be a finite number > 0, got "
                     f"{advantage_scale!r}")
  return track_features


class ActionHeadQNetwork(network.Network):
  """Q(s, candidate) for every candidate of the pool, shape [B, K].

  See the module docstring for the exact computation.
  """

  def __init__(self,
               input_tensor_spec,
               track_features: np.ndarray,
               embedding_dim: int = 32,
               state_layers: Sequence[int] = (64,),
               head_layers: Sequence[int] = (64, 64),
               history_decay: float = 0.8,
               score_residual: bool = False,
               score_weight: float = 1.0,
               advantage_scale: float = 1.0,
               lookahead_weight: float = 0.0,
               shortlist_size: int | None = None,
               head_candidate_inputs: Sequence[str] = HEAD_CANDIDATE_INPUTS,
               activation: Callable = tf.nn.relu,
               kernel_initializer="glorot_uniform",
               bias_initializer="zeros",
               name: str = "ActionHeadQNetwork"):
    """Builds the network.

    Args:
      input_tensor_spec: the environment's observation spec (a dict with
        `OBSERVATION_KEYS`).
      track_features: float [N, F] catalog feature table, indexed by the
        observation's track ids (`env.catalog.features`).
      embedding_dim: width d of the learned track embedding.
      state_layers: hidden units of the state MLP (empty: the raw state
        vector is the state embedding).
      head_layers: hidden units of the action head (empty: a linear head).
      history_decay: recency decay of the history means, in (0, 1].
      score_residual: Q is `score_weight * candidate_scores` plus a state
        value plus the head, whose last layer starts at zero (see the module
        docstring); needs `candidate_scores` in the spec.
      score_weight: the reward of a listen: the weight of the score in Q
        with `score_residual` (fixed, not trained).
      advantage_scale: with `score_residual`, the factor on the head's
        output, > 0.
      lookahead_weight: with `score_residual`, the fixed weight of the
        observation's `candidate_lookahead` in Q (0: not in the base;
        gamma * reward of a listen: Q starts as the model's one-step
        lookahead); needs that key in the spec.
      shortlist_size: if set, only the this many available candidates with
        the highest `candidate_scores` are scored (the rest are masked);
        needs the scores in the spec.
      head_candidate_inputs: which parts of z_k the head reads, from
        `HEAD_CANDIDATE_INPUTS`: the catalog features x, the interaction
        (W_s s) * e, the similarity to the history, the scores and the
        lookahead values (each when in the spec). With `score_residual`,
        ("similarity", "scores") limits the learned correction to what
        sequencing changes (fatigue, skips), so it cannot learn track
        effects that hold only for the simulator's known listeners.
      activation: activation of the hidden layers.
      kernel_initializer: initializer of every kernel (tests use constants).
      bias_initializer: initializer of every bias.
      name: the network's name.

    Raises:
      ValueError: for a spec without the playlist keys, a table that is not
        2-D, a decay outside (0, 1], or `score_residual` without
        `candidate_scores` in the spec or with a non-finite `score_weight`.
    """
    track_features = _checked_arguments(
        input_tensor_spec, track_features, history_decay, score_residual,
        score_weight, shortlist_size, head_candidate_inputs, advantage_scale,
        lookahead_weight)
    super().__init__(input_tensor_spec=input_tensor_spec, state_spec=(),
                     name=name)
    responses = input_tensor_spec["history_responses"]
    position = input_tensor_spec["position"]
    self._listen_level = int(np.max(responses.maximum))
    self._history_length = int(responses.shape[-1])
    self._max_position = float(max(np.max(getattr(position, "maximum", 1)),
                                   1))
    self._decay = float(history_decay)
    # A constant, not a variable: it is data, is never trained, and stays out
    # of checkpoints and target-network updates.
    self._table = tf.constant(track_features)
    self._keys = OBSERVATION_KEYS + tuple(
        k for k in OPTIONAL_CANDIDATE_KEYS if k in input_tensor_spec)

    def dense(units, act=None, use_bias=True, layer_name=None):
      return tf.keras.layers.Dense(
          units, activation=act, use_bias=use_bias,
          kernel_initializer=kernel_initializer,
          bias_initializer=bias_initializer, name=layer_name)

    self._embed = dense(embedding_dim, use_bias=False, layer_name="embed")
    self._state_mlp = [dense(u, activation, layer_name=f"state_{i}")
                       for i, u in enumerate(state_layers)]
    self._interaction = dense(embedding_dim, use_bias=False,
                              layer_name="interaction")
    # The head's first layer acts on concat(state, candidate part); it is
    # split in two so the state's share is computed once per row, not K
    # times (same function, K times fewer multiplications).
    widths = list(head_layers) + [1]
    self._head_state = dense(widths[0], use_bias=False, layer_name="head_s")
    self._head_candidate = dense(widths[0], layer_name="head_c")
    self._first_act = activation if head_layers else None
    self._head_rest = [
        dense(u, activation if i < len(widths) - 2 else None,
              layer_name=f"head_{i + 1}")
        for i, u in enumerate(widths[1:])]
    self._score_residual = bool(score_residual)
    self._score_weight = float(score_weight)
    self._advantage_scale = float(advantage_scale)
    self._lookahead_weight = float(lookahead_weight)
    self._head_inputs = tuple(head_candidate_inputs)
    self._shortlist_size = (None if shortlist_size is None else
                            int(shortlist_size))
    self._state_value = None
    if self._score_residual:
      # The head's output layer starts at zero, so the first greedy policy
      # ranks by the score alone (greedy by the learned model).
      last = self._head_rest[-1] if self._head_rest else self._head_candidate
      last.kernel_initializer = tf.keras.initializers.Zeros()
      last.bias_initializer = tf.keras.initializers.Zeros()
      if not self._head_rest:
        self._head_state.kernel_initializer = tf.keras.initializers.Zeros()
      self._state_value = dense(1, layer_name="state_value")

  @property
  def input_tensor_spec(self):
    """The observation spec with the pool size left open: any K is accepted.

    Variables are still created from the constructor's spec (its K).
    """
    spec = dict(self._input_tensor_spec)
    optional = getattr(self, "_keys", OBSERVATION_KEYS)[len(OBSERVATION_KEYS):]
    for key in ("candidate_ids", "candidate_mask") + optional:
      spec[key] = tf.TensorSpec([None], spec[key].dtype, key)
    return spec

  def _history_summary(self, history_emb, responses):
    """State inputs from the history: decayed means, last track, counts."""
    h = self._history_length
    valid = responses >= 0
    listen = tf.cast(responses == self._listen_level, tf.float32)
    skip = tf.cast(valid, tf.float32) - listen
    # History is right-aligned (most recent last), so slot j has age H - j.
    ages = tf.range(h - 1, -1, -1, dtype=tf.float32)
    recency = tf.pow(self._decay, ages)[None, :]

    def decayed_mean(indicator):
      weight = recency * indicator
      total = tf.reduce_sum(weight, axis=1, keepdims=True)
      return (tf.einsum("bh,bhd->bd", weight, history_emb) /
              tf.maximum(total, 1e-6))

    last = history_emb[:, -1, :] * tf.cast(valid[:, -1:], tf.float32)
    # Skips since the last listen: the run of skips at the end of the window.
    trailing = tf.reduce_sum(tf.math.cumprod(skip, axis=1, reverse=True),
                             axis=1)
    return ([decayed_mean(listen), decayed_mean(skip), last],
            tf.stack([trailing / h, tf.reduce_sum(skip, 1) / h,
                      tf.reduce_sum(listen, 1) / h], axis=1), listen, skip)

  def call(self, observation, step_type=None, network_state=(),
           training=False):
    del step_type  # Feed-forward: every step is scored the same way.
    position = tf.convert_to_tensor(observation["position"])
    outer_shape = tf.shape(position)
    # Flatten any outer dimensions (e.g. [B, T]) into one batch dimension.
    obs = {k: tf.reshape(observation[k], tf.concat(
        [[-1], tf.shape(observation[k])[position.shape.rank:]], 0))
           for k in self._keys}
    candidate_x = tf.gather(self._table, obs["candidate_ids"])  # [B, K, F]
    candidate_e = self._embed(candidate_x)                       # [B, K, d]
    history_e = self._embed(tf.gather(self._table, obs["history_ids"]))
    responses = tf.cast(obs["history_responses"], tf.int32)
    means, counts, listen, skip = self._history_summary(history_e, responses)
    scaled_position = (tf.cast(obs["position"], tf.float32) /
                       self._max_position)[:, None]
    state = tf.concat([tf.cast(obs["user_features"], tf.float32)] + means +
                      [counts, scaled_position], axis=1)
    for layer in self._state_mlp:
      state = layer(state, training=training)

    unit_c = tf.math.l2_normalize(candidate_e, axis=-1)
    unit_h = tf.math.l2_normalize(history_e, axis=-1)
    cosine = tf.einsum("bkd,bhd->bkh", unit_c, unit_h)            # [B, K, H]
    interaction = self._interaction(state)[:, None, :] * candidate_e
    parts = {"features": [candidate_x], "interaction": [interaction],
             "similarity": [cosine * listen[:, None, :],
                            cosine * skip[:, None, :]],
             "scores": [], "lookahead": []}
    for name, key in zip(("scores", "lookahead"), OPTIONAL_CANDIDATE_KEYS,
                         strict=True):
      if key in self._keys:
        parts[name].append(tf.cast(obs[key], tf.float32)[..., None])
    candidate_part = [x for name in HEAD_CANDIDATE_INPUTS
                      if name in self._head_inputs for x in parts[name]]
    candidate_part = tf.concat(candidate_part, axis=-1)
    hidden = (self._head_state(state)[:, None, :] +
              self._head_candidate(candidate_part))
    if self._first_act is not None:
      hidden = self._first_act(hidden)
    for layer in self._head_rest:
      hidden = layer(hidden, training=training)
    q_values = tf.squeeze(hidden, -1)                             # [B, K]
    if self._score_residual:
      scores = tf.cast(obs[OPTIONAL_CANDIDATE_KEYS[0]], tf.float32)
      q_values = (self._advantage_scale * q_values +
                  self._score_weight * scores + self._state_value(state))
      if self._lookahead_weight:
        q_values += self._lookahead_weight * tf.cast(
            obs[OPTIONAL_CANDIDATE_KEYS[1]], tf.float32)
    available = tf.cast(obs["candidate_mask"], tf.bool)
    if self._shortlist_size is not None:
      available = shortlist_mask(available, obs[OPTIONAL_CANDIDATE_KEYS[0]],
                                 self._shortlist_size)
    q_values = tf.where(available, q_values,
                        tf.constant(MASKED_Q_VALUE, q_values.dtype))
    q_values = tf.reshape(q_values, tf.concat(
        [outer_shape, tf.shape(q_values)[-1:]], 0))
    return q_values, network_state
