"""Throwaway experiment behind docs/model_bias.md (logs in /tmp/s6/w{S}/logs).

Experiment: a CWM whose user features are the world's observable taste
(what the logging policy scored with) instead of the listens profile."""
import sys, numpy as np, gin
sys.path.insert(0, '.')
from playlist_sim.data.world import SyntheticWorld
from user_models import log_inputs, training
from user_models.listener import ParametricListener
S = int(sys.argv[1]); out = sys.argv[2]
gin.parse_config_files_and_bindings(['configs/user_model_cwm_users.gin'], [f'SyntheticWorld.seed = {S}'])
with gin.config_scope('world'):
  w = SyntheticWorld()
log_inputs.leave_session_out_profiles = lambda data: w.user_features[data.session_users].astype(np.float32)
m = training.train_user_model(out, f'/tmp/s6/w{S}/logs', progress=False)
print(m['auc'], m['bayes_auc'], m['selection_weighting']['held_out'])
