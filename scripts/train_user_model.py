"""Trains a learned user model (CWM or SWM) from session logs.

    python scripts/train_user_model.py --gin_file configs/user_model_cwm.gin \
        --logs_dir LOGS --root_dir DIR
    python scripts/train_user_model.py --gin_file configs/user_model_swm.gin \
        --logs_dir LOGS --root_dir DIR

Writes DIR/user_model.keras, DIR/reliability.png, DIR/metrics.json (auc,
log_loss, ece on held-out sessions, and the world's bayes_* figures when the
logs come from the listener world; skip_prediction: the Skip Prediction
Challenge's scores, see scripts/evaluate_skip_prediction.py) and the gin
config of the run.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from simulator import runs  # noqa: E402

runs.define_common_flags(default_gin_files=["configs/user_model_cwm.gin"])
flags.DEFINE_string("logs_dir", None,
                    "Folder of sessions.* and tracks.* (generate_logs.py).")
flags.mark_flag_as_required("logs_dir")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from user_models.training import train_user_model  # pylint: disable=g-import-not-at-top
  runs.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings)
  metrics = train_user_model(FLAGS.root_dir, FLAGS.logs_dir, seed=FLAGS.seed)
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


if __name__ == "__main__":
  app.run(main)
