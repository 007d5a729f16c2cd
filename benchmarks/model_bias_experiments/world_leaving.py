"""Throwaway check behind docs/model_bias.md ("What is left": the leaving
model's extrapolation): a copy of a pipeline's int8 simulator folder whose
leaving_model.json holds the world's own leaving coefficients
(`ParametricListener.leave_*` of configs/world.gin) instead of the ones
fitted on the logs, so that `scripts/evaluate.py` on the copy separates the
user model's error from the leaving model's.

python benchmarks/model_bias_experiments/world_leaving.py PIPELINE_DIR OUT_DIR
"""
import dataclasses
import shutil
import sys

import gin

sys.path.insert(0, ".")
import user_models  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
from playlist_sim.data.leaving import load_leaving_model  # noqa: E402

pipeline_dir, out_dir = sys.argv[1], sys.argv[2]
shutil.copytree(f"{pipeline_dir}/quantized", out_dir)
gin.parse_config_file("configs/world.gin")
fitted = load_leaving_model(f"{out_dir}/leaving_model.json")
# The world's log-odds: bias + skip weight * run - position weight * n, with
# n the tracks played (the fitted model's `position`).
world = (gin.query_parameter("ParametricListener.leave_bias"),
         gin.query_parameter("ParametricListener.leave_consecutive_skip_weight"),
         -gin.query_parameter("ParametricListener.leave_position_weight"))
dataclasses.replace(fitted, coefficients=world, standard_errors=(0.0,) * 3
                    ).save(f"{out_dir}/leaving_model.json")
print(f"fitted {fitted.coefficients} (s.e. {fitted.standard_errors}) -> "
      f"world {world}: {out_dir}")
