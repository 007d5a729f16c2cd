"""Throwaway check behind docs/model_bias.md ("An ensemble of training seeds"):
int8 minus Keras P(listen) of a pipeline's CWM, along random's trajectories in
the Keras simulator (by the run of skips before the track) and on the logged
held-out rows (by band of P).

python benchmarks/model_bias_experiments/int8_random.py PIPELINE_DIR SKIP_LIMIT
"""
import sys

import numpy as np

sys.path.insert(0, ".")
import user_models  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
from playlist_sim.data.leaving import leaving_model_beside  # noqa: E402
from playlist_sim.data.sessions import LogSplit  # noqa: E402
from playlist_sim.evaluation.simulated import run_logged_episodes  # noqa: E402
from playlist_sim.jobs.quantization import replay_probabilities  # noqa: E402
from playlist_sim.policies import registry  # noqa: E402
from user_models import training  # noqa: E402
from user_models.keras_user_model import KerasUserModel, training_split  # noqa: E402
from user_models.litert_user_model import LiteRTUserModel  # noqa: E402

root, limit = sys.argv[1], int(sys.argv[2])
keras_path = f"{root}/user_model/user_model.keras"
tracks = f"{root}/logs/tracks.parquet"
keras = KerasUserModel(keras_path, tracks)
int8 = LiteRTUserModel(f"{root}/quantized/user_model.int8.tflite", tracks)

records = []
keras_predict = keras.predict


def recording_predict(context, ids):
  p = keras_predict(context, ids)
  records.append((p[:, 0, -1], int8.predict(context, ids)[:, 0, -1],
                  np.asarray(context.consecutive_skips)))
  return p


keras.predict = recording_predict
run_logged_episodes(
    keras, f"{root}/logs",
    lambda env: registry.make_policy("random", env, scorer=keras, seed=1),
    1000, 1, leaving_model=leaving_model_beside(keras_path),
    log_split=LogSplit(**training_split(keras_path)),
    consecutive_skip_limit=limit)
keras.predict = keras_predict
pk, pq, run = (np.concatenate(x) for x in zip(*records))
dp = pq - pk
print(f"random's steps {len(dp)}: int8 - Keras {dp.mean():+.5f} "
      f"({dp.mean() / pk.mean():+.2%} of mean P {pk.mean():.4f})")
for r in range(limit):
  m = run == r
  if m.any():
    print(f"  after {r} skips: n {m.sum():6d}  {dp[m].mean():+.5f} "
          f"({dp[m].mean() / pk[m].mean():+.2%})")

inputs = training.prepare_inputs(f"{root}/logs", "user")
sessions = np.flatnonzero(inputs.data.held_out)[:1500]
pk = replay_probabilities(keras, inputs, sessions)[:, -1]
dp = replay_probabilities(int8, inputs, sessions)[:, -1] - pk
print(f"logged held-out rows {len(dp)}: int8 - Keras {dp.mean():+.5f}")
for lo, hi in [(0, .05), (.05, .1), (.1, .2), (.2, .4), (.4, .6), (.6, .8),
               (.8, 1.01)]:
  m = (pk >= lo) & (pk < hi)
  if m.any():
    print(f"  P in [{lo:.2f}, {hi:.2f}): n {m.sum():6d}  {dp[m].mean():+.5f} "
          f"({dp[m].mean() / pk[m].mean():+.2%})")
