"""The policies layer: baselines, the softmax scoring policy, oracles, registry.

TF-Agents PyPolicies that need only the simulator and user models:
`baselines` (random, popularity, cosine, greedy by a user model),
`softmax` (the one softmax scoring policy: logging policy and OPE targets,
drawn by `sampling`), `oracle` (the listener world's truth),
`score_features` (a user model's scores as an observation feature) and
`registry.make_policy`, every policy by name.
"""

from user_models import _keras2  # noqa: F401  (must run before TensorFlow)
