"""Per-fatigue-bin gaps of learned models along greedy/cosine/logging world trajectories.

    python benchmarks/model_bias_experiments/analyse.py S A=PATH [B=PATH ...]

Throwaway experiments behind docs/model_bias.md; logs are read from
/tmp/s6/w{S}/logs (the default-size world logs of docs/selection.md).
"""
import sys, numpy as np, gin
sys.path.insert(0, '.')
from playlist_sim.data.log_files import find_log_files
from playlist_sim.data.sessions import LogSplit
from playlist_sim.data.world import SyntheticWorld
from playlist_sim.evaluation import model_bias
from user_models.keras_user_model import KerasUserModel
from user_models.listener import ParametricListener
S = int(sys.argv[1]); paths = dict(a.split('=') for a in sys.argv[2:])
gin.parse_config_files_and_bindings(['configs/evaluate.gin'], [f'SyntheticWorld.seed = {S}'])
logs = f'/tmp/s6/w{S}/logs'; tracks = find_log_files(logs)[1]
models = {n: KerasUserModel(p, tracks) for n, p in paths.items()}
with gin.config_scope('world'):
  world = ParametricListener(SyntheticWorld())
lg = lambda p: np.log(np.clip(p,1e-6,1-1e-6)/(1-np.clip(p,1e-6,1-1e-6)))
for pol in ['greedy', 'cosine', 'logging']:
  r = model_bias.record_policy_states(world, models, logs, pol, models['A'], 300, 0, LogSplit('user',0.2,0), 8)
  print(f'== {pol} n={len(r.world)} world {r.world.mean():.3f} ' + ' '.join(f'{n} {p.mean():.3f}' for n,p in r.models.items()))
  for lo, hi in [(-1,1e-6),(1e-6,0.25),(0.25,0.5),(0.5,0.75),(0.75,1),(1,1.25),(1.25,1.5),(1.5,9)]:
    m = (r.fatigue>lo)&(r.fatigue<=hi)
    if m.sum()<20: continue
    print(f'  F({lo:.2f},{hi:.2f}] n={m.sum():5d} world {r.world[m].mean():.3f} ' + ' '.join(f'{n} {p[m].mean():.3f} gap {p[m].mean()-r.world[m].mean():+.3f}' for n,p in r.models.items()))
  # top of model A's ranking at F==0
  m0 = r.fatigue<=1e-6
  q = np.quantile(r.models['A'][m0], 0.9); t = m0 & (r.models['A']>=q)
  print(f'  F=0 & A top decile n={t.sum()} world {r.world[t].mean():.3f} ' + ' '.join(f'{n} {p[t].mean():.3f}' for n,p in r.models.items()))
