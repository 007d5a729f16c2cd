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
episodes the error is about 2% for the random policy). The held-out sessions
are those of the split the model trained on (read from its metrics.json, or
given: `split_by`, `holdout_fraction`, `split_seed`), recorded as the
report's `split`: a model must be checked on sessions it never fit.

The simulated returns end sessions as the learned simulator the agents train
in and the evaluation runs does (`playlist_sim.data.session_end.
learned_session_end`): the consecutive-skip limit estimated from the logs
(or `consecutive_skip_limit`) and the leaving model beside the `.keras`
file, for the Keras model and every variant alike. The report records it as
`consecutive_skip_limit` and `session_end`.
"""

import os

import gin
import numpy as np

from playlist_sim.common.io_utils import atomic_path, ensure_writable_dir
from playlist_sim.common.io_utils import write_json
from playlist_sim.evaluation.simulated import run_logged_episodes
from playlist_sim.data.leaving import LEAVING_MODEL_FILE, load_leaving_model
from playlist_sim.data.session_end import SessionEnd, learned_session_end
from playlist_sim.data.sessions import LogSplit
from playlist_sim.policies import registry
from user_models import features, keras_models, metrics, training
from user_models.keras_user_model import KerasUserModel, load_user_model
from user_models.keras_user_model import training_split
from user_models.litert import LITERT_VARIANTS, convert_keras_model
from user_models.litert_meta import record_sha256
from user_models.litert_user_model import LiteRTUserModel, META_FILE, step_path

__all__ = ["quantize_user_model", "replay_probabilities"]

_LISTEN = features.NUM_LEVELS - 1


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
                       seed: int, split: LogSplit,
                       session_end: SessionEnd) -> dict[str, np.ndarray]:
  """Per-episode returns of each policy (paired across user models), with
  the learned simulator's session end."""
  returns = {}
  for name in policies:
    run = run_logged_episodes(
        user_model, logs_dir, lambda env, name=name: registry.make_policy(
            name, env, scorer=user_model, seed=seed), episodes, seed,
        leaving_model=session_end.leaving_model, log_split=split,
        consecutive_skip_limit=session_end.consecutive_skip_limit)
    returns[name] = np.asarray(run.stats.returns, np.float64)
  return returns


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


def _record_calibration(keras_model: KerasUserModel, kind: str,
                        inputs: training.LogInputs,
                        sessions: np.ndarray) -> dict[str, list]:
  """What each served part sees, replaying training sessions (calibration
  inputs of the int8 variants)."""
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
  replay_probabilities(keras_model, inputs, sessions, record)
  return recorded


def _serving_parts(model, kind: str, keras_model: KerasUserModel,
                   recorded: dict, meta: dict) -> tuple[dict, dict]:
  """The Keras models converted (file suffix -> model) and their
  calibration inputs; an SWM serves as two parts (step and head), whose
  sizes go into `meta`."""
  if kind != keras_models.SWM_NAME:
    return {"": model}, {"": [np.concatenate(recorded["x"])]
                         if recorded["x"] else None}
  step, head = keras_models.swm_serving_models(model, keras_model.spec)
  states = np.concatenate(recorded["state"])
  calibration = {
      "": _ordered(head, {"state": states,
                          "candidates": np.concatenate(recorded["cand"])}),
      ".step": _ordered(step, {"state": states,
                               "step": np.concatenate(recorded["step"])})}
  meta.update(state_units=keras_model.state_units,
              candidate_dim=int(head.input_shape[1][-1]))
  return {"": head, ".step": step}, calibration


def _write_variant(parts: dict, calibration: dict, variant: str, path: str,
                   meta: dict) -> int:
  """Converts every part to `variant` at `path` (and its step file);
  records their digests in `meta`. Returns the bytes written."""
  size = 0
  for suffix, part in parts.items():
    content = convert_keras_model(part, variant, calibration[suffix])
    target = path if not suffix else step_path(path)
    with atomic_path(target) as tmp:
      with open(tmp, "wb") as f:
        f.write(content)
    size += len(content)
    record_sha256(meta, target)
  return size


def _model_split(model_path: str, split_by: str | None,
                 holdout_fraction: float | None,
                 split_seed: int | None) -> LogSplit:
  """The split given, completed by the one the model recorded (or the
  defaults): held-out figures must come from sessions it never fit."""
  recorded = training_split(model_path) or {}
  chosen = {"split_by": split_by, "holdout_fraction": holdout_fraction,
            "split_seed": split_seed}
  return LogSplit(**{**recorded, **{k: v for k, v in chosen.items()
                                    if v is not None}})


@gin.configurable(denylist=["model_path", "logs_dir", "root_dir", "seed"])
def quantize_user_model(model_path: str, logs_dir: str, root_dir: str,
                        seed: int = 0,
                        variants: tuple[str, ...] = LITERT_VARIANTS,
                        eval_sessions: int = 1000,
                        calibration_rows: int = 2000,
                        return_episodes: int = 1000,
                        policies: tuple[str, ...] = ("random", "popularity",
                                                     "greedy"),
                        split_by: str | None = None,
                        holdout_fraction: float | None = None,
                        split_seed: int | None = None,
                        consecutive_skip_limit: int | None = None) -> dict:
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
    split_by: "session" or "user": the logs' split whose held-out part is
      replayed and simulated, and whose training part calibrates. None: the
      split the model recorded (its metrics.json), else "session".
    holdout_fraction: share held out; None: the model's, else 0.2.
    split_seed: seed of the split; None: the model's, else 0.
    consecutive_skip_limit: skips in a row that end a simulated session;
      None: estimated from the logs, as for the agents' learned simulator
      (`learned_session_end`).

  Returns:
    The report (also written as quantization_report.json); its "split" is
    the split used, its "consecutive_skip_limit" and "session_end" how the
    simulated sessions ended.

  Raises:
    ValueError: for an unknown `split_by`, a `holdout_fraction` outside
      [0, 1), or a `consecutive_skip_limit` that is not an integer >= 1.
    LeavingModelError: if the leaving model beside the model is invalid.
  """
  session_end = learned_session_end(logs_dir, model_path,
                                    consecutive_skip_limit)
  root_dir = ensure_writable_dir(root_dir)
  model = load_user_model(model_path)
  kind = keras_models.model_kind(model)
  split = _model_split(model_path, split_by, holdout_fraction, split_seed)
  inputs = training.prepare_inputs(logs_dir, **split.as_kwargs())
  keras_model = KerasUserModel(model_path, inputs.data.catalog)
  rng = np.random.default_rng(seed)
  held = rng.permutation(np.flatnonzero(inputs.data.held_out))[:eval_sessions]
  calib = rng.permutation(np.flatnonzero(~inputs.data.held_out))[
      :max(1, calibration_rows // 15)]
  recorded = _record_calibration(keras_model, kind, inputs, calib)
  reference = replay_probabilities(keras_model, inputs, held)
  rows = np.concatenate([np.arange(inputs.data.bounds.offsets[s],
                                   inputs.data.bounds.offsets[s + 1])
                         for s in held])
  skipped = (inputs.data.levels[rows] != _LISTEN).astype(np.float64)
  keras_auc = metrics.auc(skipped, 1.0 - reference[:, _LISTEN])
  meta = {"kind": kind, "user_vocab": keras_model.user_vocab,
          "source": os.path.abspath(model_path),
          "training_split": keras_model.training_split, "sha256": {}}
  parts, calibration = _serving_parts(model, kind, keras_model, recorded,
                                      meta)
  write_json(os.path.join(root_dir, META_FILE), meta)
  report = {"kind": kind, "model": os.path.abspath(model_path),
            "eval_rows": int(len(rows)), "keras_auc": keras_auc,
            "split": split.as_kwargs(),
            "consecutive_skip_limit": session_end.consecutive_skip_limit,
            "session_end": session_end.to_json(), "variants": {}}
  simulate = lambda user_model: _simulated_returns(  # noqa: E731
      user_model, logs_dir, policies, return_episodes, seed, split,
      session_end)
  base_returns = simulate(keras_model)
  report["keras_returns"] = {p: float(r.mean())
                             for p, r in base_returns.items()}
  for variant in variants:
    if variant == "int8_full" and kind == keras_models.SWM_NAME:
      # The calibrator feeds inputs in the flatbuffer's order, which the
      # converter reorders for the two-input SWM parts.
      report["variants"][variant] = {
          "skipped": "int8_full is not supported for an SWM yet"}
      continue
    path = os.path.join(root_dir, f"user_model.{variant}.tflite")
    size = _write_variant(parts, calibration, variant, path, meta)
    write_json(os.path.join(root_dir, META_FILE), meta)
    served = LiteRTUserModel(path, inputs.data.catalog)
    probs = replay_probabilities(served, inputs, held)
    report["variants"][variant] = {
        **_probability_errors(probs, reference, skipped, keras_auc),
        "file_bytes": int(size),
        **_return_figures(simulate(served), base_returns)}
  _copy_leaving_model(model_path, root_dir, report)
  write_json(os.path.join(root_dir, "quantization_report.json"), report)
  _plot(report, os.path.join(root_dir, "quantization_report.png"))
  return report


def _probability_errors(probs: np.ndarray, reference: np.ndarray,
                        skipped: np.ndarray, keras_auc: float) -> dict:
  """A variant's level probabilities against the Keras model's."""
  error = np.abs(probs - reference)
  return {"max_abs_err": float(error.max()),
          "mean_abs_err": float(error.mean()),
          "argmax_agreement": float((probs.argmax(1) ==
                                     reference.argmax(1)).mean()),
          "auc_delta": float(metrics.auc(skipped, 1.0 - probs[:, _LISTEN]) -
                             keras_auc)}


def _return_figures(returns: dict, base_returns: dict) -> dict:
  """A variant's simulated returns, and their differences from Keras'."""
  deltas, errors = _return_deltas(returns, base_returns)
  return {"mean_return": {p: float(r.mean()) for p, r in returns.items()},
          "return_delta": deltas, "return_delta_se": errors}


def _copy_leaving_model(model_path: str, root_dir: str, report: dict) -> None:
  """Copies (checked) the leaving model trained beside the `.keras` file, so
  the LiteRT simulator's folder holds its whole session end."""
  leaving_path = os.path.join(os.path.dirname(os.path.abspath(model_path)),
                              LEAVING_MODEL_FILE)
  if os.path.isfile(leaving_path):
    report["leaving_model"] = load_leaving_model(leaving_path).save(
        os.path.join(root_dir, LEAVING_MODEL_FILE))


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
