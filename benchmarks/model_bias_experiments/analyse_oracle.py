"""Gaps of model A and of the oracle-feature model O (oracle_train.py).

    python benchmarks/model_bias_experiments/analyse_oracle.py S A_PATH O_PATH

Throwaway experiments behind docs/model_bias.md; logs are read from
/tmp/s6/w{S}/logs (the default-size world logs of docs/selection.md).
"""
import sys, dataclasses, numpy as np, gin
sys.path.insert(0, '.')
from playlist_sim.data.log_files import find_log_files
from playlist_sim.data.sessions import LogSplit
from playlist_sim.data.world import SyntheticWorld
from playlist_sim.evaluation import model_bias
from user_models.keras_user_model import KerasUserModel
from user_models.listener import ParametricListener
from user_models.base import AbstractUserModel
S = int(sys.argv[1]); a_path, o_path = sys.argv[2], sys.argv[3]
gin.parse_config_files_and_bindings(['configs/evaluate.gin'], [f'SyntheticWorld.seed = {S}'])
logs = f'/tmp/s6/w{S}/logs'; tracks = find_log_files(logs)[1]
with gin.config_scope('world'):
  sw = SyntheticWorld()
world = ParametricListener(sw)
class Swapped(AbstractUserModel):
  response_levels = world.response_levels
  def __init__(self, m): self.m = m
  def predict(self, context, track_ids):
    c = dataclasses.replace(context, user_features=sw.user_features[np.asarray(context.user_ids)])
    return self.m.predict(c, track_ids)
A = KerasUserModel(a_path, tracks); O = Swapped(KerasUserModel(o_path, tracks))
models = {'A': A, 'O': O}
for pol, scorer in [('greedy', A), ('greedy', O), ('cosine', A), ('logging', A)]:
  r = model_bias.record_policy_states(world, models, logs, pol, scorer, 300, 0, LogSplit('user',0.2,0), 8)
  tag = pol + (' by O' if scorer is O else '')
  print(f'== {tag} n={len(r.world)} world {r.world.mean():.3f} ' + ' '.join(f'{n} {p.mean():.3f} ({p.mean()-r.world.mean():+.3f})' for n,p in r.models.items()))
  for lo, hi in [(-1,1e-6),(1e-6,0.5),(0.5,1),(1,1.5),(1.5,9)]:
    m = (r.fatigue>lo)&(r.fatigue<=hi)
    if m.sum()<20: continue
    print(f'  F({lo:.2f},{hi:.2f}] n={m.sum():5d} world {r.world[m].mean():.3f} ' + ' '.join(f'{n} {p[m].mean()-r.world[m].mean():+.3f}' for n,p in r.models.items()))
