"""Saved policies named on the command line, checked before anything runs.

`scripts/evaluate.py --policy name=folder` names TF-Agents policies saved
by `PolicySaver` (a `train_eval` run's `root_dir/policy`). Every check that
can fail does so here, before a model is loaded or an episode simulated:
the flag's form, a name that would shadow a built-in policy (its row in
the results would silently be another policy's), a missing folder, a
folder that is not a TF-Agents policy (no `saved_model.pb`, or a
SavedModel without `policy_specs.pbtxt`), and a policy saved for another
observation or action spec (another pool size, catalog or slate).
"""

import os
from typing import Iterable, Mapping

import numpy as np
from tf_agents.specs import tensor_spec

from playlist_sim.policies.baselines import BASELINES
from playlist_sim.policies.score_features import SCORE_KEY

__all__ = ["PolicyInputError", "check_policy_folders", "check_policy_specs",
           "parse_policy_flags", "POLICY_SPECS_FILE", "RESERVED_NAMES"]

#: The spec file `PolicySaver` writes beside `saved_model.pb`.
POLICY_SPECS_FILE = "policy_specs.pbtxt"
#: An observation key that score-reading policies add themselves, filled by
#: the evaluation (`playlist_sim.policies.score_features`).
_SCORE_KEYS = frozenset({SCORE_KEY})
#: Names the evaluation always means its own policies by.
RESERVED_NAMES = frozenset(BASELINES) | {"greedy"}


class PolicyInputError(ValueError):
  """A saved policy named for evaluation cannot be used."""


def parse_policy_flags(values: Iterable[str]) -> dict[str, str]:
  """`--policy name=folder` flags as {name: folder}.

  Raises:
    PolicyInputError: for a flag without `name=`, an empty name or folder,
      or a name given twice.
  """
  saved = {}
  for value in values:
    name, sep, folder = str(value).partition("=")
    name, folder = name.strip(), folder.strip()
    if not sep or not name or not folder:
      raise PolicyInputError(
          f"--policy {value!r} must be name=folder, e.g. --policy "
          "ahdqn=runs/ahdqn/policy")
    if name in saved:
      raise PolicyInputError(f"--policy name {name!r} is given twice")
    saved[name] = folder
  return saved


def check_policy_folders(saved: Mapping[str, str],
                         reserved: Iterable[str]) -> dict[str, dict]:
  """Checks names and folders; returns each policy's saved specs.

  Args:
    saved: name -> folder.
    reserved: names of the policies the evaluation builds itself besides
      `RESERVED_NAMES` (e.g. its stochastic policies).

  Returns:
    name -> the specs `PolicySaver` wrote (`collect_data_spec`, ...).

  Raises:
    PolicyInputError: naming the policy and what to do.
  """
  reserved = set(reserved) | RESERVED_NAMES
  specs = {}
  for name, folder in saved.items():
    if name in reserved:
      raise PolicyInputError(
          f"--policy name {name!r} is already a built-in policy of this "
          f"evaluation ({sorted(reserved)}); give the saved policy another "
          f"name, e.g. --policy my_{name}={folder}")
    if not os.path.isdir(folder):
      raise PolicyInputError(f"saved policy {name!r}: no folder {folder!r}; "
                             "pass a train_eval run's root_dir/policy")
    if not os.path.isfile(os.path.join(folder, "saved_model.pb")):
      raise PolicyInputError(
          f"saved policy {name!r}: {folder!r} is not a SavedModel (no "
          "saved_model.pb); pass a train_eval run's root_dir/policy")
    spec_path = os.path.join(folder, POLICY_SPECS_FILE)
    if not os.path.isfile(spec_path):
      raise PolicyInputError(
          f"saved policy {name!r}: {folder!r} is a SavedModel but not a "
          f"TF-Agents policy (no {POLICY_SPECS_FILE}); save it with "
          "tf_agents' PolicySaver")
    try:
      specs[name] = tensor_spec.from_pbtxt_file(spec_path)
      if not hasattr(specs[name]["collect_data_spec"], "observation"):
        raise ValueError("no collect_data_spec with an observation")
    except Exception as e:  # Protobuf parse errors have no common base.
      raise PolicyInputError(f"saved policy {name!r}: {spec_path!r} cannot "
                             f"be read ({type(e).__name__}: {e})") from e
  return specs


def _describe(spec) -> tuple:
  maximum = getattr(spec, "maximum", None)
  return (tuple(spec.shape), np.dtype(spec.dtype.as_numpy_dtype if hasattr(
      spec.dtype, "as_numpy_dtype") else spec.dtype).name,
          None if maximum is None else np.asarray(maximum).max().item())


def check_policy_specs(name: str, saved_specs: dict, observation_spec: dict,
                       action_spec) -> None:
  """Checks a saved policy's specs against the evaluation environment's.

  Args:
    name: the policy's name, for the message.
    saved_specs: from `check_policy_folders`.
    observation_spec: the environment's observation spec (dict).
    action_spec: the environment's action spec.

  Raises:
    PolicyInputError: naming the first observation key (or the action)
      whose shape, dtype or upper bound differ.
  """
  collect = saved_specs["collect_data_spec"]
  theirs = {k: v for k, v in dict(collect.observation).items()
            if k not in _SCORE_KEYS}
  if set(theirs) != set(observation_spec):
    raise PolicyInputError(
        f"saved policy {name!r} observes {sorted(theirs)}, the evaluation "
        f"environment gives {sorted(observation_spec)}")
  pairs = [(f"observation {k!r}", theirs[k], observation_spec[k])
           for k in sorted(theirs)] + [("action", collect.action, action_spec)]
  for what, saved, env in pairs:
    if _describe(saved) != _describe(env):
      raise PolicyInputError(
          f"saved policy {name!r} was trained on another environment: its "
          f"{what} is (shape, dtype, max) {_describe(saved)}, the "
          f"evaluation's is {_describe(env)}; evaluate it on the logs and "
          "pool size it was trained with")
