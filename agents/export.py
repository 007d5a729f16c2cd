"""Exporting a trained agent's greedy policy as a portable SavedModel.

The folder is TF-Agents' `PolicySaver` output (`action`,
`get_initial_state`, `get_train_step`, `get_metadata`, `policy_specs.pbtxt`)
with two changes that let it run on its own (see `agents.portable`):

* a policy trained on the learned model's `candidate_scores` is saved with
  the scorer in its graph (`ScoredTFPolicy`), so it takes the environment's
  plain observation;
* the `distribution` function is left out (a bare `tf.saved_model.load`
  cannot rebuild its TensorFlow Probability types), and a `select_track`
  signature (readable input names, an int32 slot out) is added.
"""

import logging
import os
import shutil

import tensorflow as tf
from tf_agents.policies import policy_saver

from agents.graph_scores import UnsupportedScorerError
from agents.portable import SELECT_TRACK, ScoredTFPolicy, observation_signature
from playlist_sim.policies.score_features import SCORE_KEY

__all__ = ["PolicyExportError", "export_policy", "portable_policy",
           "recover_interrupted_export"]

_LOG = logging.getLogger(__name__)


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


def portable_policy(policy, scorer=None,
                    lookahead_shortlist: int | None = None):
  """The policy to export: `policy`, with its scorer in the graph if needed.

  Args:
    policy: a trained greedy TF policy.
    scorer: the user model whose scores the policy reads (if it does).
    lookahead_shortlist: for a policy that reads the scorer's one-step
      lookahead, its shortlist (see `agents.portable.ScoredTFPolicy`).

  Returns:
    A policy over the environment's plain observation, or `policy` itself
    when its scores cannot be computed in the graph (then logged: it needs
    `candidate_scores` in its observation).

  Raises:
    ValueError: if the policy reads scores and no scorer is given.
  """
  if SCORE_KEY not in policy.time_step_spec.observation:
    return policy
  if scorer is None:
    raise ValueError(f"the policy reads {SCORE_KEY!r}: pass the user model "
                     "that scored its training observations as `scorer`")
  try:
    return ScoredTFPolicy(policy, scorer, lookahead_shortlist)
  except UnsupportedScorerError as e:
    _LOG.warning("exporting a policy that needs %r in its observation: %s",
                 SCORE_KEY, e)
    return policy


def _save(policy, path: str, global_step: tf.Variable) -> None:
  saver = policy_saver.PolicySaver(policy, train_step=global_step)
  # pylint: disable=protected-access  (PolicySaver has no option for these)
  saver._policy.distribution = None
  try:
    saver._signatures[SELECT_TRACK] = observation_signature(policy)
  except ValueError as e:  # Slates or recurrent policies: TF-Agents' only.
    _LOG.info("no %s signature: %s", SELECT_TRACK, e)
  saver.save(path)


def export_policy(agent, path: str, global_step: tf.Variable,
                  scorer=None, lookahead_shortlist: int | None = None) -> str:
  """Saves the agent's greedy policy as a portable SavedModel.

  Load it with `tf.saved_model.load(path)` (no package import needed) and
  call `.signatures["select_track"](**observation)`, or with
  `agents.load_policy(path)` as a TF-Agents policy. The model is written
  beside `path` and renamed into place, so a reader
  never sees half a model (a kill between the renames is undone by
  `recover_interrupted_export`, which `train_eval` also runs at start).

  Args:
    agent: a trained TF-Agents agent.
    path: the SavedModel folder (replaced if present).
    global_step: saved as the policy's train step.
    scorer: the user model that scored the observations, for a policy
      trained with `candidate_scores` (see `portable_policy`).
    lookahead_shortlist: see `portable_policy`.

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
    _save(portable_policy(agent.policy, scorer, lookahead_shortlist), tmp,
          global_step)
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
