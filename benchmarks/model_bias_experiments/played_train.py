"""Throwaway experiment behind docs/model_bias.md (logs in /tmp/s6/w{S}/logs).

Experiment: CWM user features = [listens profile, played profile] (16-d),
the played profile being the mean acoustic vector of every track played to
the listener in their other sessions."""
import sys, numpy as np, gin
sys.path.insert(0, '.')
from playlist_sim.data.catalog import acoustic_vectors
from user_models import log_inputs, training
S = int(sys.argv[1]); out = sys.argv[2]
gin.parse_config_files_and_bindings(['configs/user_model_cwm_users.gin'], [f'SyntheticWorld.seed = {S}'])
orig = log_inputs.leave_session_out_profiles
def played_profiles(data):
  a = np.asarray(acoustic_vectors(data.catalog), np.float64)[data.track_rows]
  sess = data.bounds.session_index; users = data.session_users
  ns = data.bounds.num_sessions; nu = int(users.max()) + 1
  s_sum = np.zeros((ns, a.shape[1])); np.add.at(s_sum, sess, a)
  s_cnt = np.bincount(sess, minlength=ns).astype(float)
  u_sum = np.zeros((nu, a.shape[1])); np.add.at(u_sum, users, s_sum)
  u_cnt = np.bincount(users, weights=s_cnt, minlength=nu)
  other = u_sum[users] - s_sum; cnt = u_cnt[users] - s_cnt
  return np.where(cnt[:, None] > 0, other / np.maximum(cnt, 1)[:, None], 0.0).astype(np.float32)
log_inputs.leave_session_out_profiles = lambda data: np.concatenate([orig(data), played_profiles(data)], axis=1)
import dataclasses
orig_prep = training.prepare_inputs
training.prepare_inputs = lambda *a, **k: (lambda inp: dataclasses.replace(inp, spec=inp.tables.spec(16)))(orig_prep(*a, **k))
m = training.train_user_model(out, f'/tmp/s6/w{S}/logs', progress=False)
print(m['auc'], m['bayes_auc'], m['selection_weighting']['held_out'], m['epochs'])
