"""As analyse.py, on the listeners the model trained on.

    python benchmarks/model_bias_experiments/analyse_train_users.py S A_PATH

Throwaway experiments behind docs/model_bias.md; logs are read from
/tmp/s6/w{S}/logs (the default-size world logs of docs/selection.md).
"""
import sys, functools, numpy as np, gin
sys.path.insert(0, '.')
from playlist_sim.data.log_files import find_log_files
from playlist_sim.data.sessions import LogSplit
from playlist_sim.data.world import SyntheticWorld
from playlist_sim.evaluation import model_bias, simulated
from user_models.keras_user_model import KerasUserModel
from user_models.listener import ParametricListener
S = int(sys.argv[1]); a_path = sys.argv[2]
simulated.held_out_env = functools.partial(simulated.held_out_env, split="train")
gin.parse_config_files_and_bindings(['configs/evaluate.gin'], [f'SyntheticWorld.seed = {S}'])
logs = f'/tmp/s6/w{S}/logs'; tracks = find_log_files(logs)[1]
with gin.config_scope('world'):
  world = ParametricListener(SyntheticWorld())
A = KerasUserModel(a_path, tracks)
for pol in ['greedy', 'cosine', 'logging']:
  r = model_bias.record_policy_states(world, {'A': A}, logs, pol, A, 300, 0, LogSplit('user',0.2,0), 8)
  p = r.models['A']
  print(f'== TRAIN USERS {pol} n={len(r.world)} world {r.world.mean():.3f} A {p.mean():.3f} ({p.mean()-r.world.mean():+.3f})')
  for lo, hi in [(-1,1e-6),(1e-6,0.5),(0.5,1),(1,1.5),(1.5,9)]:
    m = (r.fatigue>lo)&(r.fatigue<=hi)
    if m.sum()<20: continue
    print(f'  F({lo:.2f},{hi:.2f}] n={m.sum():5d} world {r.world[m].mean():.3f} A {p[m].mean()-r.world[m].mean():+.3f}')
