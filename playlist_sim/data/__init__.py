"""The data layer: catalogs, the synthetic world, session logs and their splits.

Reading, writing and validating logs in the public dataset's schema, log
statistics, the published MSSD figures, and the logged sessions with their
train/held-out split. Imports no TensorFlow and no TF-Agents (the layers
contract in pyproject.toml holds that), so log tooling stays light.
"""
