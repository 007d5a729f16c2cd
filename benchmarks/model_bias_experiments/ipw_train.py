"""Throwaway experiment behind docs/model_bias.md: propensity-weighted training.

Experiment: a CWM trained with each row's selection weight multiplied by an
inverse-propensity ratio over the last K logged choices of its session
(the row's own track and the K - 1 before it), so that in the weighted logs
those choices look as if a policy that cannot see the listener's taste had
made them:

* target "uniform": ratio = 1 / (n_available * logged propensity);
* target "obs": ratio = pi_obs / logged propensity, pi_obs the logging
  policy's softmax with the listens profile in place of the world's taste
  vector (its normaliser taken as the catalog mean, the pool being a uniform
  draw from the catalog).

The per-position mean of the ratio estimates n_available (uniform) or 1
(obs); each ratio is divided by it. Weights are capped at their 0.99
quantile on the fit rows and scaled to mean 1.

Usage, from the repository root:
  python benchmarks/model_bias_experiments/ipw_train.py LOGS WORLD_SEED OUT \
      {uniform,obs} K TRAIN_SEED [TEMPERATURE=1.0 POPULARITY_WEIGHT=0.5]
"""
import sys

import gin
import numpy as np

sys.path.insert(0, ".")
from playlist_sim.data import selection as selection_lib
from playlist_sim.data.catalog import acoustic_vectors
from user_models import log_inputs, training

logs, world_seed, out, target = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
window, train_seed = int(sys.argv[5]), int(sys.argv[6])
temperature = float(sys.argv[7]) if len(sys.argv) > 7 else 1.0
popularity_weight = float(sys.argv[8]) if len(sys.argv) > 8 else 0.5
gin.parse_config_files_and_bindings(
    ["configs/user_model_cwm_users.gin"], [f"SyntheticWorld.seed = {world_seed}"])

captured = {}
_prepare = log_inputs.prepare_inputs


def prepare(*args, **kwargs):
  captured["inputs"] = _prepare(*args, **kwargs)
  return captured["inputs"]


def unit(x):
  return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)


def ratios(inputs):
  data = inputs.data
  p = data.table.column("propensity").to_numpy().astype(np.float64)
  inv = 1.0 / p
  if target == "obs":
    vec = unit(acoustic_vectors(data.catalog).astype(np.float64))
    pop = np.asarray(data.catalog.popularity, np.float64)
    user = unit(inputs.context.user_features.astype(np.float64))
    score = (popularity_weight * pop[data.track_rows] +
             np.einsum("rd,rd->r", user, vec[data.track_rows])) / temperature
    profiles, which = np.unique(user.round(6), axis=0, return_inverse=True)
    z = np.exp((popularity_weight * pop[None, :] + profiles @ vec.T) /
               temperature).mean(axis=1)
    inv = np.exp(score) / z[which.ravel()] / p
  pos = data.table.column("session_position").to_numpy()
  per_position = np.bincount(pos, inv) / np.maximum(np.bincount(pos), 1)
  return inv / per_position[pos]


_weights = selection_lib.training_selection_weights


def weights(*args, **kwargs):
  selection, summary = _weights(*args, **kwargs)
  inputs = captured["inputs"]
  bounds = inputs.data.bounds
  log_r = np.log(ratios(inputs))
  cum = np.concatenate([[0.0], np.cumsum(log_r)])
  rows = np.arange(log_r.size)
  start = np.maximum(rows - window + 1, bounds.offsets[bounds.session_index])
  w = np.exp(cum[rows + 1] - cum[start])
  fit = inputs.fit[bounds.session_index]
  w = np.minimum(w, np.quantile(w[fit], 0.99))
  w = w * selection.row_weights
  selection.row_weights[:] = w / w[fit].mean()
  ess = w[fit].sum() ** 2 / (w[fit] ** 2).sum() / fit.sum()
  summary["ipw"] = {"target": target, "window": window, "ess_fraction": ess}
  print("ipw", summary["ipw"])
  return selection, summary


training.prepare_inputs = prepare
selection_lib.training_selection_weights = weights
m = training.train_user_model(out, logs, seed=train_seed, progress=False)
print(m["auc"], m["log_loss"], m["ece"], m["bayes_auc"])
