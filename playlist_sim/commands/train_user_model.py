r"""Trains a learned user model (CWM or SWM) from session logs.

    playlist-sim train-user-model --gin_file user_model_cwm \
        --logs_dir LOGS --root_dir DIR
    playlist-sim train-user-model --gin_file user_model_swm \
        --logs_dir LOGS --root_dir DIR

Writes DIR/user_model.keras, DIR/reliability.png, DIR/metrics.json (auc,
log_loss, ece on held-out sessions, and the world's bayes_* figures when the
logs come from the listener world; skip_prediction: the Skip Prediction
Challenge's scores, see `playlist-sim evaluate-skip-prediction`), the gin
config and DIR/run.json.
"""

from absl import flags

from playlist_sim.common import runs
from user_models.training import train_user_model

__all__ = ["DEFAULT_GIN_FILES", "INPUTS", "KIND", "run"]

KIND = "train_user_model"
DEFAULT_GIN_FILES = ["configs/user_model_cwm.gin"]
INPUTS = ("logs_dir",)

runs.define_common_flags(DEFAULT_GIN_FILES)
flags.DEFINE_string("logs_dir", None,
                    "Folder of sessions.* and tracks.* (generate-logs).")
flags.mark_flag_as_required("logs_dir")


def run(values: flags.FlagValues, run_folder: runs.RunFolder) -> None:
  """Trains the model and prints its held-out figures."""
  metrics = train_user_model(run_folder.root_dir, values.logs_dir,
                             seed=values.seed)
  bayes = (f" (world: auc {metrics['bayes_auc']:.4f}, log_loss "
           f"{metrics['bayes_log_loss']:.4f})" if "bayes_auc" in metrics else
           f" (no bayes figures: {metrics['bayes_unavailable']})")
  print(f"{metrics['model_type']}: held-out auc {metrics['auc']:.4f}, "
        f"log_loss {metrics['log_loss']:.4f}, ece {metrics['ece']:.4f}{bayes}"
        f"; trained in {metrics['train_seconds']:.0f} s; wrote "
        f"{metrics['model_path']}")
  sp = metrics["skip_prediction"]
  print(f"skip prediction (held-out second halves): mean average accuracy "
        f"{sp['mean_average_accuracy']:.4f}, first-prediction accuracy "
        f"{sp['first_prediction_accuracy']:.4f} (repeat last skip "
        f"{sp['repeat_last_skip']['mean_average_accuracy']:.4f} / "
        f"{sp['repeat_last_skip']['first_prediction_accuracy']:.4f})")
