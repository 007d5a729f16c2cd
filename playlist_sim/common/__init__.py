"""The common layer: atomic file writes, run folders, run settings, version,
the logistic function.

The bottom of the layers; imports no other package of the project.
"""
