"""Quantising a trained user model and measuring what quantisation changes.

`quantize_user_model` converts a `.keras` CWM or SWM to every LiteRT variant
(`user_models.litert.LITERT_VARIANTS`) and writes, into root_dir,
`user_model.<v>.tflite` (for an SWM also `user_model.<v>.step.tflite`),
`user_model.meta.json`, `quantization_report.json` and
`quantization_report.png`, and a copy of the leaving model trained beside
the `.keras` file (`leaving_model.json`, checked as it is read), so that the
LiteRT simulator's folder holds its whole session end. Per variant the report holds, against the fp32
Keras model on held-out logged sessions replayed through the user-model API
(so SWM state is carried exactly as in the environment): `max_abs_err`,
`mean_abs_err` of the level probabilities, `argmax_agreement`, `auc_delta`
(AUC of P(skip)), `file_bytes`, and `return_delta.<policy>`: the relative
difference in mean simulated return of fixed policies between the variant's
simulator and the fp32 Keras simulator on the same seeded episodes, with
its paired standard error `return_delta_se.<policy>` (one flipped response
changes the rest of a session, so even paired episodes differ: with 1,000
episodes the error is about 2% for the random policy).
"""

import os

import gin
import numpy as np

from playlist_sim.common.io_utils import atomic_path, ensure_writable_dir
from playlist_sim.common.io_utils import write_json
from playlist_sim.evaluation.simulated import run_on_logged_sessions
from playlist_sim.data.leaving import LEAVING_MODEL_FILE, load_leaving_model
from user_models import features, keras_models, metrics, training
from user_models.keras_user_model import KerasUserModel, load_user_model
from user_models.litert import LITERT_VARIANTS, convert_keras_model
from user_models.litert_meta import record_sha256
from user_models.litert_user_model import LiteRTUserModel, META_FILE, step_path

__all__ = ["quantize_user_model", "replay_probabilities"]


def replay_probabilities(user_model, inputs: training.LogInputs,
                         sessions: np.ndarray, record=None) -> np.ndarray:
  """Level probabilities of logged rows, replaying sessions through a model.

  Sessions run side by side (one environment row each): begin_sessions,
  then per position predict the logged track and observe the logged level.

  Args:
    user_model: an `AbstractUserModel` over the logs' catalog.
    inputs: prepared logs.
    sessions: session indices to replay.
    record: optional callback(rows, context, track_ids, levels) before each
      predict.

  Returns:
    float32 [R, L] over the L response levels, for the rows of those
    sessions, in log order.
  """
  offsets = inputs.data.bounds.offsets
  starts, lengths = offsets[sessions], np.diff(offsets)[sessions]
  slots = np.arange(len(sessions))
  user_model.begin_sessions(slots, inputs.data.session_users[sessions])
  out = np.zeros((lengths.sum(), user_model.num_levels), np.float32)
  out_start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
  context = inputs.context
  for t in range(int(lengths.max())):
    live = slots[lengths > t]
    rows = starts[live] + t
    ctx = type(context)(**{f: getattr(context, f)[rows]
                           for f in context.__dataclass_fields__})
    ctx = type(ctx)(**{**ctx.__dict__, "rows": live.astype(np.int64)})
    tracks = inputs.data.track_rows[rows][:, None]
    levels = inputs.data.levels[rows]
    if record is not None:
      record(live, ctx, tracks, levels)
    out[out_start[live] + t] = user_model.predict(ctx, tracks)[:, 0]
    user_model.observe(live, tracks, levels[:, None])
  return out


def _simulated_returns(user_model, logs_dir: str, policies, episodes: int,
                       seed: int) -> dict[str, np.ndarray]:
  """Per-episode returns of each policy (paired across user models)."""
  return {name: np.asarray(run_on_logged_sessions(
      user_model, logs_dir, name, episodes, seed).returns, np.float64)
          for name in policies}


def _return_deltas(returns: dict, base: dict) -> tuple[dict, dict]:
  """Relative difference of mean returns, and its paired standard error.

  Episodes are paired (same seeds, common random numbers), so the standard
  error is that of the mean per-episode difference, over the base mean.
  """
  delta, error = {}, {}
  for p, r in returns.items():
    diff, scale = r - base[p], max(abs(base[p].mean()), 1e-12)
    delta[p] = float(diff.mean() / scale)
    error[p] = float(diff.std(ddof=1) / np.sqrt(len(diff)) / scale) if (
        len(diff) > 1) else float("nan")
  return delta, error


@gin.configurable(denylist=["model_path", "logs_dir", "root_dir", "seed"])
def quantize_user_model(model_path: str, logs_dir: str, root_dir: str,
                        seed: int = 0,
                        variants: tuple[str, ...] = LITERT_VARIANTS,
                        eval_sessions: int = 1000,
                        calibration_rows: int = 2000,
                        return_episodes: int = 1000,
                        policies: tuple[str, ...] = ("random", "popularity",
                                                     "greedy")) -> dict:
  """Converts, checks and reports (see the module docstring).

  Args:
    model_path: a `.keras` CWM or SWM.
    logs_dir: the logs it was trained on (held-out sessions are used).
    root_dir: output folder.
    seed: seed of the sampling and the simulations.
    variants: LiteRT variants to write.
    eval_sessions: held-out sessions replayed for the error figures.
    calibration_rows: rows sampled to calibrate `int8_full`.
    return_episodes: episodes per policy and simulator.
    policies: fixed policies simulated.

  Returns:
    The report (also written as quantization_report.json).
  """
  root_dir = ensure_writable_dir(root_dir)
  model = load_user_model(model_path)
  kind = keras_models.model_kind(model)
  inputs = training.prepare_inputs(logs_dir)
  catalog = inputs.data.catalog
  keras_model = KerasUserModel(model_path, catalog)
  rng = np.random.default_rng(seed)
  held = np.flatnonzero(inputs.data.held_out)
  held = rng.permutation(held)[:eval_sessions]
  fit = np.flatnonzero(~inputs.data.held_out)
  calib = rng.permutation(fit)[:max(1, calibration_rows // 15)]

  # Calibration inputs: what each served part sees on training sessions.
  recorded = {"x": [], "state": [], "cand": [], "step": []}

  def record(rows, ctx, tracks, levels):
    if kind == keras_models.CWM_NAME:
      recorded["x"].append(keras_model._with_index(  # pylint: disable=protected-access
          features.cwm_features(ctx, tracks, keras_model.tables),
          ctx.user_ids)[:, 0])
    else:
      recorded["state"].append(keras_model.state[rows].copy())
      recorded["cand"].append(keras_model._with_index(  # pylint: disable=protected-access
          features.swm_candidate_features(ctx, tracks, keras_model.tables),
          ctx.user_ids)[:, 0])
      recorded["step"].append(features.swm_step_features(
          tracks[:, 0], features.one_hot_levels(levels), keras_model.tables))
  replay_probabilities(keras_model, inputs, calib, record)
  reference = replay_probabilities(keras_model, inputs, held)
  rows = np.concatenate([np.arange(inputs.data.bounds.offsets[s],
                                   inputs.data.bounds.offsets[s + 1])
                         for s in held])
  listen = features.NUM_LEVELS - 1
  skipped = (inputs.data.levels[rows] != listen).astype(np.float64)
  keras_auc = metrics.auc(skipped, 1.0 - reference[:, listen])

  meta = {"kind": kind, "user_vocab": keras_model.user_vocab,
          "source": os.path.abspath(model_path),
          "training_split": keras_model.training_split, "sha256": {}}
  parts = {"": model}
  calibration = {"": [np.concatenate(recorded["x"])] if recorded["x"] else
                 None}
  if kind == keras_models.SWM_NAME:
    step, head = keras_models.swm_serving_models(model, keras_model.spec)
    parts = {"": head, ".step": step}
    states = np.concatenate(recorded["state"])
    calibration = {
        "": _ordered(head, {"state": states,
                            "candidates": np.concatenate(recorded["cand"])}),
        ".step": _ordered(step, {"state": states,
                                 "step": np.concatenate(recorded["step"])})}
    meta.update(state_units=keras_model.state_units,
                candidate_dim=int(head.input_shape[1][-1]))
  write_json(os.path.join(root_dir, META_FILE), meta)

  report = {"kind": kind, "model": os.path.abspath(model_path),
            "eval_rows": int(len(rows)), "keras_auc": keras_auc,
            "variants": {}}
  base_returns = _simulated_returns(keras_model, logs_dir, policies,
                                    return_episodes, seed)
  report["keras_returns"] = {p: float(r.mean())
                             for p, r in base_returns.items()}
  for variant in variants:
    if variant == "int8_full" and kind == keras_models.SWM_NAME:
      # The calibrator feeds inputs in the flatbuffer's order, which the
      # converter reorders for the two-input SWM parts; left for later.
      report["variants"][variant] = {
          "skipped": "int8_full is not supported for an SWM yet"}
      continue
    path = os.path.join(root_dir, f"user_model.{variant}.tflite")
    size = 0
    for suffix, part in parts.items():
      content = convert_keras_model(part, variant, calibration[suffix])
      target = path if not suffix else step_path(path)
      with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
          f.write(content)
      size += len(content)
      record_sha256(meta, target)
    write_json(os.path.join(root_dir, META_FILE), meta)
    served = LiteRTUserModel(path, catalog)
    probs = replay_probabilities(served, inputs, held)
    error = np.abs(probs - reference)
    returns = _simulated_returns(served, logs_dir, policies, return_episodes,
                                 seed)
    deltas, errors = _return_deltas(returns, base_returns)
    report["variants"][variant] = {
        "max_abs_err": float(error.max()),
        "mean_abs_err": float(error.mean()),
        "argmax_agreement": float((probs.argmax(1) ==
                                   reference.argmax(1)).mean()),
        "auc_delta": float(metrics.auc(skipped, 1.0 - probs[:, listen]) -
                           keras_auc),
        "file_bytes": int(size),
        "mean_return": {p: float(r.mean()) for p, r in returns.items()},
        "return_delta": deltas, "return_delta_se": errors}
  leaving_path = os.path.join(os.path.dirname(os.path.abspath(model_path)),
                              LEAVING_MODEL_FILE)
  if os.path.isfile(leaving_path):
    report["leaving_model"] = load_leaving_model(leaving_path).save(
        os.path.join(root_dir, LEAVING_MODEL_FILE))
  write_json(os.path.join(root_dir, "quantization_report.json"), report)
  _plot(report, os.path.join(root_dir, "quantization_report.png"))
  return report


def _ordered(model, arrays: dict) -> list[np.ndarray]:
  """Arrays in the order of the Keras model's inputs (matched by name)."""
  return [arrays[next(k for k in arrays if k in t.name)]
          for t in model.inputs]


def _plot(report: dict, path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  v = {n: x for n, x in report["variants"].items() if "skipped" not in x}
  names = list(v)
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
  axes[0].bar(names, [v[n]["mean_abs_err"] for n in names], color="tab:blue")
  axes[0].set_title("mean |Δp| vs Keras fp32")
  axes[1].bar(names, [v[n]["file_bytes"] / 1024 for n in names],
              color="tab:green")
  axes[1].set_title("file size (KiB)")
  policies = list(report["keras_returns"])
  width = 0.8 / max(len(policies), 1)
  for i, p in enumerate(policies):
    axes[2].bar(np.arange(len(names)) + i * width,
                [100 * v[n]["return_delta"][p] for n in names], width,
                yerr=[100 * v[n]["return_delta_se"][p] for n in names],
                capsize=2, label=p)
  axes[2].set_xticks(np.arange(len(names)) + 0.4 - width / 2, names)
  axes[2].axhline(0, color="black", lw=0.8)
  axes[2].set_title("Δ mean simulated return (%, ± paired s.e.)")
  axes[2].legend(fontsize=8)
  fig.tight_layout()
  with atomic_path(path) as tmp:
    fig.savefig(tmp, format="png", dpi=110)
  plt.close(fig)
