"""Keras builders of the learned user models: CWM (dense) and SWM (GRU).

Both predict the five public response levels of a track (softmax over
`PUBLIC_RESPONSE_LEVELS`) from the inputs of
`user_models.features`, and use only built-in Keras layers, so a saved
`.keras` file loads with `safe_mode=True` and converts to LiteRT.

**CWM** (`build_cwm`, model name "cwm"): one float32 input [N, D] -> [N, L].
The row is the CWM feature vector, plus, with a user embedding, the user
index as a float in the last column (exact below 2**24 users). Inside, the
input is cut into parts with `Reshape` + `Cropping1D` (no Lambda layer):

    track tower   g = Dense(E)(Dense(tower_units, relu)(track features))
    taste         e = Embedding(user index) (L2-regularised)
    interactions  e * g,  Dense(E)(user features) * g
    MLP           [features, interactions] -> hidden_units (relu) -> logits
    output        softmax(logits) (layer "probs")

The products give the network the user-track inner products that drive
affinity; an MLP alone learns them poorly.

With `history_units` > 0 the CWM also adds an additive history term to its
logits, a learned cost per recently played track summed over the history
window (`user_models.history_term`, docs/model_bias.md).

**CWM ensemble** (`build_cwm_ensemble`, also named "cwm"): several CWMs
trained on the same logs from different seeds, nested whole, and the mean
of their level probabilities (an `Average` layer). Same input and output as
one CWM, so it serves, converts and quantises as one.

**SWM** (`build_swm`, model name "swm"), for training: inputs "steps"
[N, T, Dx] (the start token, then each played track and its level) and
"candidates" [N, T, Dc] (the CWM row of the track played at t, with its
unit acoustic vector after its catalog features, then the user index)
-> [N, T, L]. The SWM is the CWM plus a sequential correction:

    base      = the CWM's logits of the candidate's CWM row (same layers,
                same names, so `copy_cwm_weights` can start it as a trained
                CWM)
    state     = GRU ("swm_gru") over the steps, each coded by the CWM's
                track tower and a dense "step_encoder"; its output at t is
                the state after the start token and tracks 0..t-1
    residual  = Dense(L, zero init)(Dense(residual_units, relu)(
                  [state, user, session features, base,
                   Dense(state) * Dense(candidate track code)]))
    output    = softmax(base + residual)

The residual starts at exactly zero, so an SWM whose CWM part is copied
from a trained CWM starts as that CWM, and training (with the CWM part
frozen, see `user_models.training`) only adds what the session sequence
tells beyond the CWM's engineered features: above all what the responses
so far reveal about this listener's taste, which no CWM feature carries.

The sequence form is what is saved; `swm_serving_models` rebuilds, from the
saved layers by name, the two small models the environment (and LiteRT)
runs one step at a time:

    step: (x [N, Dx], state [N, U]) -> new state [N, U]   (GRU unrolled, 1 step)
    head: (state [N, U], candidates [N, Dc]) -> [N, L]

We chose a cell step plus a head over an unrolled fixed window because a
session's state then lives in the caller ([B, U] per environment row) and
costs one small call per played track, whatever the session length.
"""

from typing import Sequence

import numpy as np

from user_models import _keras2  # noqa: F401  (must run before TensorFlow)
from user_models.features import ACOUSTIC_DIM, FeatureSpec, NUM_LEVELS
from user_models.history_term import HISTORY_TERM_LAYERS, HistoryTerm

import tensorflow as tf  # pylint: disable=g-import-not-at-top,g-bad-import-order

__all__ = ["CWM_LAYERS", "CWM_NAME", "ENSEMBLE_MEMBER", "SWM_NAME",
           "build_cwm", "build_cwm_ensemble", "build_swm", "copy_cwm_weights",
           "ensemble_members", "model_kind", "share_unknown_user",
           "swm_serving_models", "user_vocab_size"]

CWM_NAME = "cwm"
SWM_NAME = "swm"
#: Name prefix of the CWMs inside an ensemble (`build_cwm_ensemble`).
ENSEMBLE_MEMBER = "cwm_member_"
#: Parametrised layers of the CWM, shared by name with the SWM's CWM part.
CWM_LAYERS = ("user_embedding", "track_tower_hidden", "track_tower",
              "user_projection", "levels")
_L = tf.keras.layers


def _crop(x, start: int, stop: int, width: int, name: str):
  """Columns start:stop of the last axis of a rank-2 or rank-3 tensor.

  Built from Reshape and Cropping layers so that the model needs no custom
  code to load and converts to plain slices.
  """
  if len(x.shape) == 2:
    y = _L.Reshape((width, 1), name=f"{name}_r")(x)
    y = _L.Cropping1D((start, width - stop), name=f"{name}_c")(y)
    return _L.Reshape((stop - start,), name=name)(y)
  y = _L.Reshape((-1, width, 1), name=f"{name}_r")(x)
  y = _L.Cropping2D(((0, 0), (start, width - stop)), name=f"{name}_c")(y)
  return _L.Reshape((-1, stop - start), name=name)(y)


def _is_cwm_layer(name: str) -> bool:
  return (name in CWM_LAYERS or name in HISTORY_TERM_LAYERS or
          name.startswith("hidden_"))


class _Head:
  """The CWM's parametrised layers (also the SWM's CWM part).

  Keeping them in one place lets `swm_serving_models` find them again by
  name in a loaded model.
  """

  def __init__(self, user_vocab: int, embedding_dim: int, user_l2: float,
               tower_units: int, hidden_units: Sequence[int],
               history_units: int = 0, history_window: int = 0,
               history_in_mlp: bool = True):
    self.history = (HistoryTerm(history_units, history_window,
                                history_in_mlp) if history_units else None)
    self.embedding = None
    if user_vocab:
      self.embedding = _L.Embedding(
          user_vocab, embedding_dim, name="user_embedding",
          embeddings_regularizer=tf.keras.regularizers.l2(user_l2))
    self.tower_hidden = _L.Dense(tower_units, activation="relu",
                                 name="track_tower_hidden")
    self.tower = _L.Dense(embedding_dim, name="track_tower")
    self.profile = _L.Dense(embedding_dim, name="user_projection")
    self.hidden = [_L.Dense(units, activation="relu", name=f"hidden_{i}")
                   for i, units in enumerate(hidden_units)]
    self.levels = _L.Dense(NUM_LEVELS, name="levels")

  @classmethod
  def from_model(cls, model: tf.keras.Model) -> "_Head":
    head = cls.__new__(cls)
    names = {layer.name: layer for layer in model.layers}
    head.embedding = names.get("user_embedding")
    head.tower_hidden = names["track_tower_hidden"]
    head.tower = names["track_tower"]
    head.profile = names["user_projection"]
    head.hidden = [names[f"hidden_{i}"] for i in range(
        sum(n.startswith("hidden_") for n in names))]
    head.levels = names["levels"]
    head.history = HistoryTerm.from_model(model)
    return head

  def logits(self, user, track, user_index, context, prefix: str = ""):
    """(level logits, track tower hidden code) of a row (any leading shape)."""
    hidden = self.tower_hidden(track)
    g = self.tower(hidden)
    mlp_context = (context if self.history is None else
                   self.history.mlp_context(context, prefix))
    parts = [user, track, mlp_context,
             _L.Multiply(name=f"{prefix}profile_x_track")(
                 [self.profile(user), g])]
    if self.embedding is not None:
      e = self.embedding(user_index)        # [..., 1, E]
      shape = (-1, g.shape[-1]) if len(g.shape) == 3 else (g.shape[-1],)
      e = _L.Reshape(shape, name=f"{prefix}taste")(e)
      parts.append(_L.Multiply(name=f"{prefix}taste_x_track")([e, g]))
    h = _L.Concatenate(name=f"{prefix}head_input")(parts)
    for layer in self.hidden:
      h = layer(h)
    logits = self.levels(h)
    if self.history is not None:
      logits = _L.Add(name=f"{prefix}levels_and_history")(
          [logits, self.history.logits(context, prefix)])
    return logits, hidden


class _Sequence:
  """The SWM's own layers: step encoder, GRU and residual."""

  def __init__(self, state_units: int, step_units: int, residual_units: int,
               interaction_dim: int, sequence_l2: float):
    reg = tf.keras.regularizers.l2(sequence_l2) if sequence_l2 else None
    # A dense encoder first: GRU gates are linear in their input, and what
    # a played track does to the listener is not.
    self.step_encoder = _L.Dense(step_units, activation="relu",
                                 name="step_encoder", kernel_regularizer=reg)
    self.gru = _L.GRU(state_units, return_sequences=True, name="swm_gru",
                      kernel_regularizer=reg, recurrent_regularizer=reg)
    self.state_projection = _L.Dense(interaction_dim, name="state_projection",
                                     kernel_regularizer=reg)
    self.track_projection = _L.Dense(interaction_dim, name="track_projection",
                                     kernel_regularizer=reg)
    self.residual_hidden = _L.Dense(residual_units, activation="relu",
                                    name="residual_hidden",
                                    kernel_regularizer=reg)
    # Zero-initialised: a new SWM predicts exactly what its CWM part does.
    self.residual = _L.Dense(NUM_LEVELS, kernel_initializer="zeros",
                             name="residual_logits", kernel_regularizer=reg)

  @classmethod
  def from_model(cls, model: tf.keras.Model) -> "_Sequence":
    seq = cls.__new__(cls)
    for attr, name in (("step_encoder", "step_encoder"), ("gru", "swm_gru"),
                       ("state_projection", "state_projection"),
                       ("track_projection", "track_projection"),
                       ("residual_hidden", "residual_hidden"),
                       ("residual", "residual_logits")):
      setattr(seq, attr, model.get_layer(name))
    return seq


def _split(x, spec: FeatureSpec, with_index: bool, prefix: str,
           acoustic: bool = False):
  """(user, track, acoustic, rest, user_index) parts of a feature row.

  With `acoustic`, the row has the unit acoustic vector after the catalog
  features (the SWM's candidate layout); otherwise that part is None.
  """
  width = int(x.shape[-1])
  u, f = spec.user_dim, spec.track_dim
  a = ACOUSTIC_DIM if acoustic else 0
  body = width - 1 if with_index else width
  user = _crop(x, 0, u, width, f"{prefix}user")
  track = _crop(x, u, u + f, width, f"{prefix}track")
  unit = _crop(x, u + f, u + f + a, width, f"{prefix}acoustic") if (
      acoustic) else None
  rest = _crop(x, u + f + a, body, width, f"{prefix}context")
  index = _crop(x, body, width, width, f"{prefix}user_index") if (
      with_index) else None
  return user, track, unit, rest, index


def build_cwm(spec: FeatureSpec, user_vocab: int = 0,
              embedding_dim: int = 8, user_l2: float = 1e-3,
              tower_units: int = 64,
              hidden_units: Sequence[int] = (256, 256, 128),
              history_units: int = 0,
              history_in_mlp: bool = True) -> tf.keras.Model:
  """The context-wise model (see the module docstring).

  Args:
    spec: input widths; the input is [N, spec.cwm_dim (+1 with a user
      embedding)].
    user_vocab: rows of the user embedding (user index 0 is "unknown"); 0
      builds no embedding.
    embedding_dim: width E of the taste embedding and the track tower.
    user_l2: L2 weight of the embedding table.
    tower_units: hidden units of the track tower.
    hidden_units: units of the MLP layers.
    history_units: hidden units of the additive history term
      (`user_models.history_term`); 0 builds none.
    history_in_mlp: with the term, the MLP reads the history slots too;
      False: only through the term.

  Returns:
    An uncompiled model named "cwm".
  """
  width = spec.cwm_dim + (1 if user_vocab else 0)
  x = tf.keras.Input((width,), name="features")
  user, track, _, context, index = _split(x, spec, bool(user_vocab), "")
  head = _Head(user_vocab, embedding_dim, user_l2, tower_units, hidden_units,
               history_units, spec.history_window, history_in_mlp)
  logits, _ = head.logits(user, track, index, context)
  probs = _L.Activation("softmax", name="probs")(logits)
  return tf.keras.Model(x, probs, name=CWM_NAME)


def build_swm(spec: FeatureSpec, user_vocab: int = 0, state_units: int = 64,
              embedding_dim: int = 8, user_l2: float = 1e-3,
              tower_units: int = 64,
              hidden_units: Sequence[int] = (256, 256, 128),
              step_units: int = 64,
              interaction_dim: int = 16,
              residual_units: int = 64,
              state_dropout: float = 0.0,
              sequence_l2: float = 0.0,
              history_units: int = 0,
              history_in_mlp: bool = True) -> tf.keras.Model:
  """The sequence model in its training form (see the module docstring).

  Args:
    spec: input widths: steps [N, T, spec.swm_step_dim], candidates
      [N, T, spec.swm_candidate_dim (+1 with a user embedding)].
    user_vocab: rows of the user embedding; 0 builds none.
    state_units: GRU units U (the per-row state).
    embedding_dim: width of the taste embedding and the track tower.
    user_l2: L2 weight of the embedding table.
    tower_units: hidden units of the track tower.
    hidden_units: units of the CWM part's MLP.
    step_units: units of the dense step encoder before the GRU.
    interaction_dim: width of the state x track product.
    residual_units: hidden units of the residual.
    state_dropout: dropout rate on the state where the residual reads it,
      in training only (a built-in Dropout layer, an identity when serving).
    sequence_l2: L2 weight on the kernels of the SWM's own layers (GRU,
      step encoder, residual).
    history_units: hidden units of the CWM part's additive history term
      (as `build_cwm`); 0 builds none.
    history_in_mlp: as `build_cwm`.

  Returns:
    An uncompiled model named "swm".
  """
  steps = tf.keras.Input((None, spec.swm_step_dim), name="steps")
  cand_width = spec.swm_candidate_dim + (1 if user_vocab else 0)
  candidates = tf.keras.Input((None, cand_width), name="candidates")
  head = _Head(user_vocab, embedding_dim, user_l2, tower_units, hidden_units,
               history_units, spec.history_window, history_in_mlp)
  seq = _Sequence(state_units, step_units, residual_units, interaction_dim,
                  sequence_l2)
  state = seq.gru(_encode_steps(head, seq, spec, steps, ""))
  if state_dropout:
    state = _L.Dropout(state_dropout, name="state_dropout")(state)
  probs = _swm_head(head, seq, spec, bool(user_vocab), state, candidates, "")
  return tf.keras.Model([steps, candidates], probs, name=SWM_NAME)


def copy_cwm_weights(cwm: tf.keras.Model, swm: tf.keras.Model,
                     freeze: bool = True) -> list[str]:
  """Starts an SWM's CWM part as a trained CWM (same hyperparameters).

  With the residual still at its zero initialisation, the SWM then predicts
  exactly what the CWM does.

  Args:
    cwm: a model from `build_cwm`.
    swm: a model from `build_swm` with the same widths and head sizes.
    freeze: mark the copied layers non-trainable (recompile afterwards).

  Returns:
    The names of the layers copied.

  Raises:
    ValueError: if a layer is missing or its weights' shapes differ.
  """
  copied = []
  for layer in cwm.layers:
    if not layer.weights or not _is_cwm_layer(layer.name):
      continue
    try:
      target = swm.get_layer(layer.name)
      target.set_weights(layer.get_weights())
    except ValueError as e:
      raise ValueError(f"cannot copy CWM layer {layer.name!r} into the SWM "
                       f"(built with other sizes?): {e}") from e
    target.trainable = not freeze
    copied.append(layer.name)
  return copied


def _encode_steps(head: _Head, seq: _Sequence, spec: FeatureSpec, steps,
                  prefix: str):
  """GRU input: the played track through the CWM's track tower, so that the
  state and the candidate speak the same language, plus a dense code of the
  whole step (track, unit acoustics, level, start flag)."""
  width = int(steps.shape[-1])
  track = _crop(steps, 0, spec.track_dim, width, f"{prefix}step_track")
  return _L.Concatenate(name=f"{prefix}step_code")(
      [head.tower_hidden(track), seq.step_encoder(steps)])


def _swm_head(head: _Head, seq: _Sequence, spec: FeatureSpec,
              with_index: bool, state, candidates, prefix: str):
  """softmax(CWM logits + residual(state, candidate)) (module docstring)."""
  user, track, unit, session, index = _split(candidates, spec, with_index,
                                             prefix, acoustic=True)
  base, hidden = head.logits(user, track, index, session, prefix)
  code = _L.Concatenate(name=f"{prefix}candidate_code")([hidden, unit])
  # How the session so far bears on this track (taste shown by earlier
  # responses, fatigue) is an interaction of the two: a product says it.
  product = _L.Multiply(name=f"{prefix}state_x_track")(
      [seq.state_projection(state), seq.track_projection(code)])
  r = _L.Concatenate(name=f"{prefix}residual_input")(
      [state, user, session, base, product])
  residual = seq.residual(seq.residual_hidden(r))
  logits = _L.Add(name=f"{prefix}logits")([base, residual])
  return _L.Activation("softmax", name=f"{prefix}probs")(logits)


def model_kind(model: tf.keras.Model) -> str:
  """"cwm" or "swm", from the model's name; raises ValueError otherwise."""
  if model.name not in (CWM_NAME, SWM_NAME):
    raise ValueError(f"model {model.name!r} is neither a CWM ('{CWM_NAME}') "
                     f"nor an SWM ('{SWM_NAME}')")
  return model.name


def _embedding_layers(model: tf.keras.Model) -> list:
  """The model's user embedding layers, its ensemble members' included."""
  found = []
  for layer in model.layers:
    if layer.name == "user_embedding":
      found.append(layer)
    elif isinstance(layer, tf.keras.Model):
      found += _embedding_layers(layer)
  return found


def user_vocab_size(model: tf.keras.Model) -> int:
  """Rows of the model's user embedding, 0 if it has none."""
  layers = _embedding_layers(model)
  return int(layers[0].input_dim) if layers else 0


def share_unknown_user(model: tf.keras.Model,
                       trained_index: np.ndarray) -> int:
  """Gives every user row that training never read the unknown user's vector.

  The embedding has a row for every user id up to the largest in the logs,
  held-out users' included (split by user). Rows no training row looked up
  hold their random start shrunk by the L2 term, not a taste; row 0, the
  unknown user, learned the fallback for exactly such listeners.

  Args:
    model: a CWM, CWM ensemble or SWM with a user embedding (others are
      left alone).
    trained_index: the embedding indices training read (any shape).

  Returns:
    How many rows were set (per embedding: every member of an ensemble
    trained on the same rows).
  """
  untrained = None
  for layer in _embedding_layers(model):
    table = layer.embeddings.numpy()
    untrained = np.ones(len(table), bool)
    untrained[np.unique(np.asarray(trained_index, np.int64))] = False
    untrained[0] = False
    table[untrained] = table[0]
    layer.embeddings.assign(table)
  return 0 if untrained is None else int(untrained.sum())


def build_cwm_ensemble(members: Sequence[tf.keras.Model]) -> tf.keras.Model:
  """One CWM that averages the level probabilities of several CWMs.

  The members are CWMs of one input layout (the same logs and settings,
  trained from different seeds). The ensemble is itself a model named
  "cwm" with the CWM's input and output, so every consumer (serving,
  quantisation, greedy scoring) treats it as a CWM; the members are kept
  whole inside it as `ENSEMBLE_MEMBER`0, 1, ... Averaging probabilities,
  not logits, keeps the mean of calibrated members calibrated.

  Args:
    members: two or more trained CWMs (`build_cwm`).

  Returns:
    The ensemble, sharing the members' layers and weights (renamed).

  Raises:
    ValueError: for fewer than two members, a member that is not a CWM, or
      members of different input widths.
  """
  if len(members) < 2:
    raise ValueError(f"an ensemble needs at least 2 CWMs, got {len(members)}")
  shapes = [(m.name, m.input_shape) for m in members]
  if any(name != CWM_NAME and not name.startswith(ENSEMBLE_MEMBER)
         for name, _ in shapes) or len({shape for _, shape in shapes}) != 1:
    raise ValueError(
        f"ensemble members must be CWMs of one input width, got {shapes}")
  width = int(members[0].input_shape[-1])
  x = tf.keras.Input((width,), name="features")
  outputs = []
  for i, member in enumerate(members):
    # Nested models need unique names, and Keras 2 has no public rename.
    member._name = f"{ENSEMBLE_MEMBER}{i}"  # pylint: disable=protected-access
    outputs.append(member(x))
  probs = _L.Average(name="probs")(outputs)
  return tf.keras.Model(x, probs, name=CWM_NAME)


def ensemble_members(model: tf.keras.Model) -> list:
  """The CWMs an ensemble averages (`build_cwm_ensemble`); [] for a model
  that is not an ensemble."""
  return [layer for layer in model.layers
          if isinstance(layer, tf.keras.Model) and
          layer.name.startswith(ENSEMBLE_MEMBER)]


def swm_serving_models(model: tf.keras.Model, spec: FeatureSpec
                       ) -> tuple[tf.keras.Model, tf.keras.Model]:
  """The one-step cell and the head of a trained SWM, sharing its weights.

  Args:
    model: a model from `build_swm` (trained or loaded).
    spec: the input widths the model was built with.

  Returns:
    (step, head): step maps (x [N, Dx], state [N, U]) to the new state,
    head maps (state [N, U], candidates [N, Dc]) to [N, L] probabilities.
  """
  seq = _Sequence.from_model(model)
  head_layers = _Head.from_model(model)
  units = int(seq.gru.units)
  config = seq.gru.get_config()
  config.update(unroll=True, return_sequences=False, return_state=False,
                name="swm_gru_step")
  step_gru = _L.GRU.from_config(config)
  x = tf.keras.Input((spec.swm_step_dim,), name="step")
  state = tf.keras.Input((units,), name="state")
  encoded = _encode_steps(head_layers, seq, spec, x, "serve_")
  new_state = step_gru(_L.Reshape((1, int(encoded.shape[-1])))(encoded),
                       initial_state=state)
  step_gru.set_weights(seq.gru.get_weights())
  step = tf.keras.Model([x, state], new_state, name="swm_step")

  with_index = bool(user_vocab_size(model))
  cand_width = spec.swm_candidate_dim + (1 if with_index else 0)
  head_state = tf.keras.Input((units,), name="state")
  candidates = tf.keras.Input((cand_width,), name="candidates")
  probs = _swm_head(head_layers, seq, spec, with_index, head_state,
                    candidates, "serve_")
  head = tf.keras.Model([head_state, candidates], probs, name="swm_head")
  return step, head
