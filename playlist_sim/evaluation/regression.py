"""Cross-fitted reward models and estimated propensities for OPE.

`RegressionModel` (OBP's name) fits any scikit-learn-style model, anything
with `fit(X, y)` and `predict(X)` or `predict_proba(X)`, including a Keras
model, to predict the reward of (context, action, position), and predicts
`estimated_rewards_by_reg_model [n, K, L]` for every action and position by
K-fold cross-fitting: each row's predictions come from a model that never
saw that row, which keeps DR-type estimators free of the overfitting bias of
in-sample predictions (Chernozhukov et al. 2018; OBP's `n_folds`).

`estimate_propensities` does the same for the logging policy when its
propensities were not logged: a classifier of the action given the context,
cross-fitted, whose probability of the logged action is the estimated
`pscore` (OBP's `estimated_pscore`).

NumPy only; a Keras model passed in brings its own TensorFlow.
"""

import copy
from typing import Any, Callable

import numpy as np
from numpy.typing import ArrayLike

from playlist_sim.evaluation.inputs import EstimatorInputError
from playlist_sim.evaluation.inputs import check_lengths
from playlist_sim.evaluation.inputs import real_array

__all__ = ["RegressionModel", "cross_fit_folds", "estimate_propensities"]

#: A model, or a zero-argument function making a fresh one per fold (use a
#: function for Keras models, which cannot be deep-copied reliably).
ModelSource = Any | Callable[[], Any]


def _fresh_model(owner: str, source: ModelSource) -> Any:
  if isinstance(source, type) or (callable(source) and
                                  not hasattr(source, "fit")):
    model = source()
  else:
    model = copy.deepcopy(source)
  if not hasattr(model, "fit") or not (hasattr(model, "predict") or
                                       hasattr(model, "predict_proba")):
    raise EstimatorInputError(
        "base_model", f"{owner}: base_model must have fit(X, y) and "
        f"predict(X) or predict_proba(X) (or be a function returning such a "
        f"model), got {type(model).__name__}")
  return model


def _predict(model: Any, features: np.ndarray, column: int | None) -> np.ndarray:
  """predict_proba's column `column` if asked and available, else predict."""
  if column is not None and hasattr(model, "predict_proba"):
    return np.asarray(model.predict_proba(features))[:, column]
  return np.asarray(model.predict(features), np.float64).reshape(
      features.shape[0], -1)[:, 0]


def cross_fit_folds(num_rows: int, n_folds: int,
                    seed: int | np.random.Generator) -> np.ndarray:
  """int [num_rows]: a random fold 0..n_folds-1 for each row, balanced.

  Raises:
    EstimatorInputError: unless 1 <= n_folds <= num_rows.
  """
  if isinstance(n_folds, bool) or not isinstance(
      n_folds, (int, np.integer)) or not 1 <= n_folds <= num_rows:
    raise EstimatorInputError(
        "n_folds", f"n_folds must be an integer in [1, {num_rows}] (the "
        f"number of rows), got {n_folds!r}")
  rng = np.random.default_rng(seed)
  return rng.permutation(np.arange(num_rows) % n_folds)


class RegressionModel:
  """A reward model over (context, action, position), cross-fitted.

  Features are the context, a one-hot action and (when L > 1) a one-hot
  position. Rewards in {0, 1} with a classifier: pass `predict_column=1` to
  use `predict_proba(X)[:, 1]`.

  Args:
    n_actions: K.
    base_model: a model with fit/predict(_proba), or a function making one.
    len_list: L, the number of positions.
    fit_kwargs: keyword arguments of every `fit` call (e.g. Keras epochs).
    predict_column: the `predict_proba` column to use (None: `predict`).

  Raises:
    EstimatorInputError: for n_actions or len_list < 1.
  """

  def __init__(self, n_actions: int, base_model: ModelSource,
               len_list: int = 1, fit_kwargs: dict | None = None,
               predict_column: int | None = None):
    for name, value in (("n_actions", n_actions), ("len_list", len_list)):
      if isinstance(value, bool) or not isinstance(
          value, (int, np.integer)) or value < 1:
        raise EstimatorInputError(
            name, f"RegressionModel: {name} must be a positive integer, got "
            f"{value!r}")
    self.n_actions, self.len_list = int(n_actions), int(len_list)
    self.base_model = base_model
    self.fit_kwargs = dict(fit_kwargs or {})
    self.predict_column = predict_column
    _fresh_model("RegressionModel", base_model)  # Fail early on a bad model.

  def _features(self, context: np.ndarray, action: np.ndarray,
                position: np.ndarray) -> np.ndarray:
    parts = [context, np.eye(self.n_actions)[action]]
    if self.len_list > 1:
      parts.append(np.eye(self.len_list)[position])
    return np.concatenate(parts, axis=1)

  def fit_predict(self, context: ArrayLike, action: ArrayLike,
                  reward: ArrayLike, position: ArrayLike | None = None,
                  n_folds: int = 2,
                  random_state: int | np.random.Generator = 0) -> np.ndarray:
    """Cross-fitted predictions for every action and position.

    Args:
      context: float [n, d].
      action: int [n] in [0, n_actions).
      reward: float [n].
      position: int [n] in [0, len_list) (None: all 0).
      n_folds: folds of cross-fitting (1: fit and predict on all rows).
      random_state: seed of the fold assignment.

    Returns:
      float [n, n_actions, len_list], OBP's `estimated_rewards_by_reg_model`.

    Raises:
      EstimatorInputError: for inputs of the wrong shape, type or range.
    """
    owner = "RegressionModel"
    context = real_array(owner, "context", context, ndim=2)
    reward = real_array(owner, "reward", reward)
    action = _indices(owner, "action", action, self.n_actions)
    position = (np.zeros(reward.shape[0], np.int64) if position is None else
                _indices(owner, "position", position, self.len_list))
    check_lengths(owner, {"reward": reward, "context": context,
                          "action": action, "position": position},
                  ("reward",))
    n = reward.shape[0]
    folds = cross_fit_folds(n, n_folds, random_state)
    out = np.zeros((n, self.n_actions, self.len_list))
    features = self._features(context, action, position)
    for fold in range(n_folds):
      held = folds == fold
      train = ~held if n_folds > 1 else held
      model = _fresh_model(owner, self.base_model)
      model.fit(features[train], reward[train], **self.fit_kwargs)
      rows = np.flatnonzero(held)
      for a in range(self.n_actions):
        for slot in range(self.len_list):
          grid = self._features(context[rows], np.full(rows.size, a),
                                np.full(rows.size, slot))
          out[rows, a, slot] = _predict(model, grid, self.predict_column)
    return out


def _indices(owner: str, name: str, values: ArrayLike, size: int
             ) -> np.ndarray:
  array = np.asarray(values)
  if array.dtype.kind not in "iu" or array.ndim != 1:
    raise EstimatorInputError(
        name, f"{owner}: {name} must be a 1-D integer array, got dtype "
        f"{array.dtype} and shape {array.shape}")
  if array.size and (array.min() < 0 or array.max() >= size):
    raise EstimatorInputError(
        name, f"{owner}: {name} must be in [0, {size}), got values from "
        f"{array.min()} to {array.max()}")
  return array.astype(np.int64)


def estimate_propensities(context: ArrayLike, action: ArrayLike,
                          n_actions: int, base_model: ModelSource,
                          n_folds: int = 2,
                          random_state: int | np.random.Generator = 0,
                          fit_kwargs: dict | None = None,
                          min_propensity: float = 1e-3) -> np.ndarray:
  """Cross-fitted estimates of the logging policy's P(action | context).

  Args:
    context: float [n, d].
    action: int [n] in [0, n_actions), the logged actions.
    n_actions: K.
    base_model: a classifier with fit(X, y) and predict_proba(X) whose
      columns are the actions 0..K-1 (every action must occur in each
      training fold), or a function making one.
    n_folds: folds of cross-fitting (1: in-sample).
    random_state: seed of the fold assignment.
    fit_kwargs: keyword arguments of every `fit` call.
    min_propensity: floor of the estimates, which keeps weights finite.

  Returns:
    float [n] in [min_propensity, 1]: the estimated `pscore`.

  Raises:
    EstimatorInputError: for bad inputs, or a classifier whose
      predict_proba does not give one column per action.
  """
  owner = "estimate_propensities"
  context = real_array(owner, "context", context, ndim=2)
  action = _indices(owner, "action", action, n_actions)
  check_lengths(owner, {"context": context, "action": action}, ("context",))
  if not 0.0 < min_propensity <= 1.0:
    raise EstimatorInputError(
        "min_propensity", f"{owner}: min_propensity must be in (0, 1], got "
        f"{min_propensity}")
  folds = cross_fit_folds(action.shape[0], n_folds, random_state)
  out = np.zeros(action.shape[0])
  for fold in range(n_folds):
    held = folds == fold
    train = ~held if n_folds > 1 else held
    model = _fresh_model(owner, base_model)
    if not hasattr(model, "predict_proba"):
      raise EstimatorInputError(
          "base_model", f"{owner}: base_model needs predict_proba(X)")
    model.fit(context[train], action[train], **dict(fit_kwargs or {}))
    probabilities = np.asarray(model.predict_proba(context[held]))
    if probabilities.shape != (int(held.sum()), n_actions):
      raise EstimatorInputError(
          "base_model", f"{owner}: predict_proba gave shape "
          f"{probabilities.shape}, expected ({int(held.sum())}, {n_actions});"
          " every action must be a column (and occur in every training fold)")
    out[held] = probabilities[np.arange(probabilities.shape[0]),
                              action[held]]
  return np.clip(out, min_propensity, 1.0)
