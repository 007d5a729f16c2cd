r"""Converts a trained user model to LiteRT (fp32, int8, fp16, int8_full) and
reports what quantisation changes.

    playlist-sim quantize --model DIR/user_model.keras --logs_dir LOGS \
        --root_dir QDIR

Writes QDIR/user_model.<variant>.tflite (an SWM also .step.tflite),
user_model.meta.json, quantization_report.json and .png, metrics.json, the
gin config and QDIR/run.json.
"""

from absl import flags

from playlist_sim.common import runs
from playlist_sim.jobs.quantization import quantize_user_model

__all__ = ["DEFAULT_GIN_FILES", "INPUTS", "KIND", "run"]

KIND = "quantize"
DEFAULT_GIN_FILES = []
INPUTS = ("logs_dir",)

runs.define_common_flags(DEFAULT_GIN_FILES)
flags.DEFINE_string("model", None, "The trained .keras user model.")
flags.DEFINE_string("logs_dir", None, "The logs it was trained on.")
flags.mark_flags_as_required(["model", "logs_dir"])


def run(values: flags.FlagValues, run_folder: runs.RunFolder) -> None:
  """Quantises and prints the per-variant table."""
  report = quantize_user_model(values.model, values.logs_dir,
                               run_folder.root_dir, seed=values.seed)
  runs.write_run_files(run_folder.root_dir, report)
  print(f"{'variant':<10} {'mean|dp|':>9} {'max|dp|':>8} {'argmax':>7} "
        f"{'dAUC':>8} {'KiB':>7}  return delta (± paired s.e.)")
  for name, v in report["variants"].items():
    if "skipped" in v:
      print(f"{name:<10} skipped: {v['skipped']}")
      continue
    deltas = ", ".join(
        f"{p} {100 * d:+.2f}±{100 * v['return_delta_se'][p]:.2f}%"
        for p, d in v["return_delta"].items())
    print(f"{name:<10} {v['mean_abs_err']:>9.4f} {v['max_abs_err']:>8.4f} "
          f"{v['argmax_agreement']:>7.3f} {v['auc_delta']:>+8.4f} "
          f"{v['file_bytes'] / 1024:>7.1f}  {deltas}")
