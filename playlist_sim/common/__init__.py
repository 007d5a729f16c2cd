"""The common layer: atomic file writes, run folders, run settings, version.

The bottom of the layers; imports no other package of the project.
"""
