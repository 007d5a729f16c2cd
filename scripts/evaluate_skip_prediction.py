"""Scores a user model on the Skip Prediction Challenge's task (see `playlist-sim evaluate-skip-prediction --help`).

    python scripts/evaluate_skip_prediction.py [flags]   ==   playlist-sim evaluate-skip-prediction [flags]

A thin wrapper for running from the repository without installing it; the
code is `playlist_sim.commands` (see docs/cli.md).
"""

import os
import sys

# The repository root, so the packages import without installing them.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from playlist_sim import cli  # noqa: E402  pylint: disable=wrong-import-position

if __name__ == "__main__":
  cli.script_main("evaluate-skip-prediction")
