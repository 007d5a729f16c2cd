"""Exporting a trained agent's greedy policy as a SavedModel."""

import os
import shutil

import tensorflow as tf
from tf_agents.policies import policy_saver

__all__ = ["PolicyExportError", "export_policy",
           "recover_interrupted_export"]


class PolicyExportError(OSError):
  """The policy's SavedModel could not be written."""


def recover_interrupted_export(path: str) -> bool:
  """Puts the previous policy back if an export was killed mid-swap.

  `export_policy` moves the old model aside (`path.old`) before renaming the
  new one into place; a kill between the two renames leaves no `path`. The
  old model is whole, so it goes back.

  Args:
    path: the SavedModel folder.

  Returns:
    True if the previous policy was put back.
  """
  path = os.path.abspath(path)
  old = path + ".old"
  if os.path.exists(path) or not os.path.isdir(old):
    return False
  os.replace(old, path)
  return True


def export_policy(agent, path: str, global_step: tf.Variable) -> str:
  """Saves the agent's greedy policy as a SavedModel.

  Load it with `tf.saved_model.load(path)` and call `.action(time_step)`.
  The model is written beside `path` and renamed into place, so a reader
  never sees half a model (a kill between the renames is undone by
  `recover_interrupted_export`, which `train_eval` also runs at start).

  Args:
    agent: a trained TF-Agents agent.
    path: the SavedModel folder (replaced if present).
    global_step: saved as the policy's train step.

  Returns:
    The path.

  Raises:
    PolicyExportError: if the SavedModel cannot be written.
  """
  path = os.path.abspath(path)
  recover_interrupted_export(path)
  tmp, old = path + ".tmp", path + ".old"
  for leftover in (tmp, old):
    shutil.rmtree(leftover, ignore_errors=True)
  try:
    policy_saver.PolicySaver(agent.policy, train_step=global_step).save(tmp)
    if os.path.exists(path):
      os.replace(path, old)
    os.replace(tmp, path)
  except (tf.errors.OpError, OSError) as e:  # Read-only, full, quota.
    shutil.rmtree(tmp, ignore_errors=True)
    raise PolicyExportError(
        f"could not save the policy to {path!r} ({type(e).__name__}: "
        f"{str(e).splitlines()[0]}); make its folder writable or free "
        "space") from e
  shutil.rmtree(old, ignore_errors=True)
  return path
