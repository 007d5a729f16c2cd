"""The CWM's additive history term: what each recently played track costs.

A listener tires of tracks like the ones just played, and the cost adds up
over the history window: two near tracks tire more than one. The CWM's MLP
reads the history cosines too, and must learn that sum from the rows the
logs show, where several near tracks in a row are rare (a noisy logging
policy seldom plays them; a policy that chases the listener's taste plays
them all the time). This term gives the model that shape directly:

    slot_cost_h = f(cos_h) * flag_h          f: 1 -> units (relu) -> 1,
                                              shared by every slot
    term        = sum_h age_weight_h * slot_cost_h
    logits     += term * level_direction      (a learned [L] direction)

where cos_h is the CWM's acoustic cosine between the candidate and history
slot h and flag_h says the slot holds a track. `f` can learn a threshold
(only near tracks tire), the age weights how fatigue fades, and because the
term is a sum over slots it extrapolates to histories with more near tracks
than training showed. Everything is a built-in Keras layer, so a model with
the term still loads with `safe_mode=True` and converts to LiteRT.

With the history out of the MLP the term fits held-out logs better, but it
does not remove the learned simulator's optimism for taste-chasing
policies, which comes from the logging policy's confounded choice of the
history, not from the model's shape (docs/model_bias.md).
"""

from user_models import _keras2  # noqa: F401  (must run before TensorFlow)
from user_models.features import NUM_LEVELS

import tensorflow as tf  # pylint: disable=g-import-not-at-top,g-bad-import-order

__all__ = ["HISTORY_TERM_LAYERS", "HistoryTerm", "NUM_SESSION_SCALARS"]

#: Parametrised layers of the term (shared by name between CWM and SWM).
HISTORY_TERM_LAYERS = ("history_slot_hidden", "history_slot", "history_ages",
                       "history_levels")
#: Scalars before the history block in the CWM's context columns (position,
#: consecutive skips, skips, has-previous, distance to previous).
NUM_SESSION_SCALARS = 5
_L = tf.keras.layers
# Name of the layer that keeps only the session scalars for the MLP.
_SCALARS = "session_scalars"


class HistoryTerm:
  """The term's layers, built once and applied to CWM or SWM context rows."""

  def __init__(self, units: int, history_window: int, in_mlp: bool = True):
    """Builds the layers.

    Args:
      units: hidden units of the per-slot function f.
      history_window: H, the history slots of the context.
      in_mlp: the CWM's MLP reads the history slots too; False leaves it
        only the session scalars, so the history acts through this term
        alone (additive in the logit, as fatigue does in the world).

    Raises:
      ValueError: if `units` or `history_window` is not positive.
    """
    if int(units) < 1 or int(history_window) < 1:
      raise ValueError(
          f"HistoryTerm: units and history_window must be >= 1, got "
          f"{units} and {history_window}")
    self.window = int(history_window)
    self.in_mlp = bool(in_mlp)
    self.slot_hidden = _L.Dense(int(units), activation="relu",
                                name="history_slot_hidden")
    self.slot = _L.Dense(1, name="history_slot")
    self.ages = _L.Dense(1, use_bias=False, name="history_ages")
    # Zero start: the term begins as no term and grows only as the data
    # asks, so a model with it starts as one without.
    self.levels = _L.Dense(NUM_LEVELS, use_bias=False,
                           kernel_initializer="zeros", name="history_levels")

  @classmethod
  def from_model(cls, model: tf.keras.Model) -> "HistoryTerm | None":
    """The term of a built or loaded model, or None if it has none."""
    names = {layer.name: layer for layer in model.layers}
    if "history_slot_hidden" not in names:
      return None
    term = cls.__new__(cls)
    term.slot_hidden = names["history_slot_hidden"]
    term.slot = names["history_slot"]
    term.ages = names["history_ages"]
    term.levels = names["history_levels"]
    term.window = int(term.ages.kernel.shape[0])
    term.in_mlp = not any(name.endswith(_SCALARS) for name in names)
    return term

  def mlp_context(self, context, prefix: str = ""):
    """The context columns the MLP reads: all, or only the session scalars."""
    if self.in_mlp:
      return context
    width = int(context.shape[-1])
    lead = (-1,) if len(context.shape) == 3 else ()
    x = _L.Reshape(lead + (width, 1), name=f"{prefix}scalars_r")(context)
    if lead:
      x = _L.Cropping2D(((0, 0), (0, width - NUM_SESSION_SCALARS)),
                        name=f"{prefix}scalars_c")(x)
    else:
      x = _L.Cropping1D((0, width - NUM_SESSION_SCALARS),
                        name=f"{prefix}scalars_c")(x)
    return _L.Reshape(lead + (NUM_SESSION_SCALARS,),
                      name=f"{prefix}{_SCALARS}")(x)

  def logits(self, context, prefix: str = ""):
    """[..., L] logits to add, from context rows [..., 5 + 2H]."""
    h, rank3 = self.window, len(context.shape) == 3
    width = int(context.shape[-1])
    if width != NUM_SESSION_SCALARS + 2 * h:
      raise ValueError(
          f"HistoryTerm: context rows have {width} columns, expected "
          f"{NUM_SESSION_SCALARS} scalars + 2 x {h} history slots")
    lead = (-1,) if rank3 else ()
    x = _L.Reshape(lead + (width, 1), name=f"{prefix}history_r")(context)
    start = NUM_SESSION_SCALARS
    crop = (_L.Cropping2D if rank3 else _L.Cropping1D)
    pad = lambda a, b: ((0, 0), (a, b)) if rank3 else (a, b)  # noqa: E731
    cos = crop(pad(start, h), name=f"{prefix}history_cos")(x)
    flags = crop(pad(start + h, 0), name=f"{prefix}history_flags")(x)
    cost = self.slot(self.slot_hidden(cos))                   # [..., H, 1]
    cost = _L.Multiply(name=f"{prefix}history_cost")([cost, flags])
    cost = _L.Reshape(lead + (h,), name=f"{prefix}history_costs")(cost)
    return self.levels(self.ages(cost))
