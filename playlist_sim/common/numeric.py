"""The logistic function, written once for every layer that turns logits into
probabilities (the world's features, the listener, the leaving model)."""

import numpy as np

__all__ = ["LOGIT_CLIP", "sigmoid"]

#: Bound of a clipped logit: sigmoid(30) is 1 in float32, and exp(30) stays
#: far from overflow in float32 and float64.
LOGIT_CLIP = 30.0


def sigmoid(x: np.ndarray, clip: float | None = None) -> np.ndarray:
  """1 / (1 + exp(-x)), elementwise, in the dtype of `x`.

  Args:
    x: logits.
    clip: if given, `x` is first clipped to [-clip, clip] (e.g.
      `LOGIT_CLIP`), so the exponential never overflows.

  Returns:
    The probabilities, of the shape of `x`.
  """
  if clip is not None:
    x = np.clip(x, -clip, clip)
  return 1.0 / (1.0 + np.exp(-x))
