"""The jobs layer: log generation, quantisation, simulation, the pipeline.

Each job wires the layers below into one run (`generate_logs`,
`quantize_user_model`, `simulate`, `evaluate_policies` on Ray, the
`run_pipeline` of every stage); the commands of `playlist_sim.commands`
call them after parsing flags and gin.
"""

from user_models import _keras2  # noqa: F401  (must run before TensorFlow)
