import os, sys
from user_models import _keras2
import tensorflow as tf
from tests.user_models import crafted_models as c
target = "/tmp/trust_pwned.pth"
if os.path.exists(target): os.remove(target)
p = c.write_archive("/tmp/trust_attack.keras", c.with_layers(c.write_file_layer(target)))
try:
  tf.keras.models.load_model(p, compile=False, safe_mode=True)
except Exception as e:
  print("raised", type(e).__name__, str(e)[:300])
print("written:", os.path.exists(target))
