"""What the logs show of a listener's taste is worth: the taste ceiling.

The world's own held-out figures (`bayes_auc` of `user_models.training`) use
each listener's latent taste, which no model of the logs can know. What the
logs show of a listener is their listening: the taste profile the models
read (the mean acoustic vector of their listens in their other visible
sessions) and, within a session, the responses so far. `taste_ceiling`
measures what that evidence is worth with everything else exact: the
world's own response function (fatigue, transitions, patience, quality all
as the world computes them) with the taste replaced by its best linear read
from the evidence. The linear read is fitted on the training sessions
(least squares of the world's taste on the evidence) and scored on the
held-out rows, so it is a ceiling for what the evidence gives a linear
taste estimate, not a bound for every model; a learned model also has to
learn the response function, which this one is given.

Two kinds of evidence are scored:

* `profile`: the logs' profile, exactly the user features the CWM reads;
* `listens_and_skips`: the mean acoustic vectors of the listener's listens
  and of their skips, over their other visible sessions and this session
  so far, with the counts of each (what a sequence model could add).
"""

import numpy as np

from playlist_sim.data.catalog import acoustic_vectors
from playlist_sim.data.log_stats import LISTEN_LEVEL
from user_models.listener import ParametricListener
from user_models.log_inputs import LogInputs
from user_models.metrics import auc

__all__ = ["EVIDENCE", "taste_ceiling", "taste_evidence"]

#: The kinds of evidence `taste_ceiling` scores (module docstring).
EVIDENCE = ("profile", "listens_and_skips")


def _totals_so_far(inputs: LogInputs, weight: np.ndarray,
                   vectors: np.ndarray):
  """Per row: sums of `weight` * vectors and of `weight` over the user's
  other visible sessions (`LoggedSessions.visible_totals`) and the row's
  own session before it."""
  data = inputs.data
  session = data.bounds.session_index
  other_sum, other_count = data.visible_totals(weight, vectors,
                                               leave_session_out=True)
  # This session before each row (whether or not the session is visible:
  # a model reads the session it is asked about).
  start = data.bounds.offsets[session]
  cum = np.concatenate([np.zeros((1, vectors.shape[1])),
                        np.cumsum(vectors * weight[:, None], axis=0)])
  cum_count = np.concatenate([[0.0], np.cumsum(weight)])
  index = np.arange(len(session))
  return (other_sum[session] + cum[index] - cum[start],
          other_count[session] + cum_count[index] - cum_count[start])


def taste_evidence(inputs: LogInputs) -> dict[str, np.ndarray]:
  """The evidence of every logged row, by kind (`EVIDENCE`).

  Args:
    inputs: prepared logs (`user_models.log_inputs.prepare_inputs`).

  Returns:
    kind -> float64 [R, width] evidence of each row.
  """
  data = inputs.data
  vectors = acoustic_vectors(data.catalog).astype(np.float64)[
      data.track_rows]
  listened = (data.levels == LISTEN_LEVEL).astype(np.float64)
  parts = []
  for weight in (listened, 1.0 - listened):
    sums, counts = _totals_so_far(inputs, weight, vectors)
    parts += [sums / np.maximum(counts, 1.0)[:, None],
              np.log1p(counts)[:, None]]
  return {"profile": np.asarray(inputs.context.user_features, np.float64),
          "listens_and_skips": np.concatenate(parts, axis=1)}


def _linear_read(evidence: np.ndarray, taste: np.ndarray,
                 train: np.ndarray) -> np.ndarray:
  """Least-squares taste from evidence (with an intercept), fitted on the
  `train` rows, applied to every row."""
  x = np.concatenate([evidence, np.ones((len(evidence), 1))], axis=1)
  coef, *_ = np.linalg.lstsq(x[train], taste[train], rcond=None)
  return x @ coef


def taste_ceiling(listener: ParametricListener, inputs: LogInputs,
                  evidence: dict[str, np.ndarray] | None = None
                  ) -> dict[str, float]:
  """Held-out AUC of P(skip) of the world given each kind of evidence.

  Args:
    listener: the world the logs come from.
    inputs: its logs, prepared as for training (the split decides the
      held-out rows and which sessions are visible).
    evidence: kind -> float [R, width]; default `taste_evidence(inputs)`.

  Returns:
    {"world_auc": the world with each listener's own taste,
     "<kind>_auc": the world with the taste read from that evidence,
     "rows": held-out rows}.
  """
  data = inputs.data
  if evidence is None:
    evidence = taste_evidence(inputs)
  held = data.held_out[data.bounds.session_index]
  context, tracks = inputs.context, data.track_rows[:, None]
  skipped = (data.levels != LISTEN_LEVEL).astype(np.float64)
  taste = listener.world.user_taste[np.asarray(context.user_ids)]

  def held_auc(logits: np.ndarray) -> float:
    # A lower listen logit is a higher P(skip); AUC needs only the order.
    return float(auc(skipped[held], -logits[held, 0].astype(np.float64)))

  out = {"world_auc": held_auc(listener.listen_logits(context, tracks)),
         "rows": int(held.sum())}
  for kind, values in evidence.items():
    read = _linear_read(np.asarray(values, np.float64), taste, ~held)
    out[f"{kind}_auc"] = held_auc(
        listener.listen_logits(context, tracks, taste=read))
  return out
