"""Stops a training process right after a given checkpoint, for kill tests.

Imported into `scripts/train_agent.py` with `--gin_imports
tests.pause_at_checkpoint`. If the environment variable `STOP_AFTER_STEP`
holds a step K, the first checkpoint saved at a step >= K is committed, a
line `stopped after checkpoint at step S` goes to stderr, and the process
sends itself SIGSTOP. A test then SIGKILLs it: the kill lands at a known
point, and the run cannot finish before it (as it could after a sleep on a
fast machine). Without the variable nothing changes, so every attempt of a
run can import the module and share one configuration.
"""

import os
import signal
import sys

from agents.checkpointing import RunCheckpointer

__all__ = ["ENV_VAR"]

ENV_VAR = "STOP_AFTER_STEP"
_save = RunCheckpointer.save


def _save_then_stop(self, global_step, run_state=None):
  _save(self, global_step, run_state=run_state)
  stop_after = os.environ.get(ENV_VAR)
  step = int(global_step.numpy())
  if stop_after and step >= int(stop_after):
    os.environ.pop(ENV_VAR)  # Once: after SIGCONT the run would go on.
    print(f"stopped after checkpoint at step {step}", file=sys.stderr,
          flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)


RunCheckpointer.save = _save_then_stop
