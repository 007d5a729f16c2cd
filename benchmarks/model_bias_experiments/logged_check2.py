"""Calibration by the world's fatigue on the logged rows, selection-weighted.

    python benchmarks/model_bias_experiments/logged_check2.py S A=PATH [X=PATH]

Throwaway experiments behind docs/model_bias.md; logs are read from
/tmp/s6/w{S}/logs (the default-size world logs of docs/selection.md).
"""
import sys, copy, numpy as np, gin
sys.path.insert(0, '.')
from user_models.log_inputs import prepare_inputs, model_inputs
from user_models.keras_user_model import load_user_model
from playlist_sim.data.world import SyntheticWorld
from user_models.listener import ParametricListener
S = int(sys.argv[1]); paths = dict(a.split('=') for a in sys.argv[2:])
gin.parse_config_files_and_bindings(['configs/evaluate.gin'], [f'SyntheticWorld.seed = {S}'])
inp = prepare_inputs(f'/tmp/s6/w{S}/logs', split_by='user')
with gin.config_scope('world'):
  world = ParametricListener(SyntheticWorld())
ctx = inp.context; tr = inp.data.track_rows[:, None]
wp = world.listen_probability(ctx, tr)[:, 0]
nf = copy.copy(world); nf.fatigue_weight = 0.0
F = (nf.listen_logits(ctx, tr) - world.listen_logits(ctx, tr))[:, 0] / world.fatigue_weight
x = model_inputs(inp, 'cwm')['x']
sess = inp.data.bounds.session_index
held = inp.data.held_out[sess]; fitr = inp.fit[sess]
y = (inp.data.levels == 4).astype(float)
lg = lambda p: np.log(np.clip(p,1e-6,1-1e-6)/(1-np.clip(p,1e-6,1-1e-6)))
from playlist_sim.data import selection as sel
from playlist_sim.data.leaving import load_leaving_model
from playlist_sim.data.log_files import find_log_files
lm = load_leaving_model(list(paths.values())[0].replace('user_model.keras','leaving_model.json'))
w, _ = sel.training_selection_weights(inp.data.table, find_log_files(f'/tmp/s6/w{S}/logs')[0], lm, None, 0.999, fitr)
rw = w.row_weights
for n, p in paths.items():
  m = load_user_model(p)
  for part, rows in [('held', held), ('fit', fitr)]:
    idx = np.flatnonzero(rows)
    mp = m.predict(x[idx], batch_size=8192, verbose=0)[:, 4]
    print(f'== model {n} {part} rows={len(idx)} world {wp[idx].mean():.3f} model {mp.mean():.3f} y {y[idx].mean():.3f}')
    for lo, hi in [(-1,1e-6),(1e-6,0.25),(0.25,0.5),(0.5,0.75),(0.75,1),(1,1.5),(1.5,9)]:
      k = (F[idx]>lo)&(F[idx]<=hi)
      ww = rw[idx][k]; print(f'   F({lo:.2f},{hi:.2f}] n={k.sum():6d} weighted: y {np.average(y[idx][k],weights=ww):.3f} world {np.average(wp[idx][k],weights=ww):.3f} model {np.average(mp[k],weights=ww):.3f}')
