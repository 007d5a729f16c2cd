"""Checkpoints that resume a killed training run where it left off.

`RunCheckpointer` wraps TF-Agents' `common.Checkpointer` (agent, policy,
replay buffer, global step, metrics: so the network, the target network, the
optimizer and the step counter) and adds three string variables that travel
inside the same TF checkpoint:

* `rng_state`: the `bit_generator.state` of the run's NumPy generators (the
  training environment's play modes and outcome draws), so a resumed run
  continues their streams instead of replaying them from the seed;
* `run_fingerprint`: the agent name and the shapes of every checkpointed
  variable, so a root_dir holding another run's checkpoint is refused with a
  `CheckpointError` that names it, before TensorFlow tries to restore it;
* `resume_history`: the steps the run was resumed from, in order (a resume
  killed before its first checkpoint leaves no entry);
* `run_state`: the run's bookkeeping as of the checkpoint (learning curve,
  loss history, train steps, wall time), so a resumed run's metrics cover the
  whole run, never only its last process;
* `run_config`: the operative config the run was started with (binding ->
  value); a resume with other values is refused with a `ConfigChangeError`
  listing them, unless `allow_config_change`.

Being TF variables, they are written and committed with the checkpoint: TF
writes a checkpoint's data and index beside the old one and then replaces the
`checkpoint` state file atomically, and only then deletes the older
checkpoint. A kill at any moment therefore leaves the previous checkpoint
usable, and the RNG state restored is always the one saved with the weights
(there is no sidecar file that could be half written or paired with the
wrong checkpoint).

TensorFlow's own random ops (epsilon-greedy draws, replay sampling) are
reseeded on resume from (seed, step), and the epsilon schedule reads the
restored global step.
"""

import glob
import json
import os
import shutil
from typing import Any, Mapping

import logging

import numpy as np
import tensorflow as tf
from tf_agents.utils import common

__all__ = ["CheckpointError", "ConfigChangeError", "RunCheckpointer",
           "environment_generators"]

_log = logging.getLogger(__name__)
_KEYS = {name: f"{name}/.ATTRIBUTES/VARIABLE_VALUE"
         for name in ("rng_state", "run_fingerprint", "resume_history",
                      "run_config")}
# Bindings that change how a run is shown, not what it computes.
_IGNORED_BINDINGS = ("train_eval.progress", "train_ppo.progress",
                     "train_eval.ray_address", "generate_logs.progress")


class CheckpointError(ValueError):
  """A checkpoint in root_dir cannot be resumed by this run."""


class ConfigChangeError(CheckpointError):
  """The run's operative config differs from its checkpoint's."""


def environment_generators(environment: Any, seed: int,
                           name: str = "train_env"
                           ) -> dict[str, np.random.Generator]:
  """Gives `environment` a generator whose state the checkpoint can carry.

  The generator is `np.random.default_rng(seed)`, the same stream a
  `PlaylistEnvironment` built with `seed` draws from, so a fresh run is
  unchanged.

  Args:
    environment: the batched environment (with a `reseed` method taking a
      generator, as `PlaylistEnvironment` has).
    seed: the environment's seed.
    name: key of the generator in the checkpoint.

  Returns:
    {name: generator}, or {} (with a warning) if the environment cannot take
    a generator, in which case a resumed run restarts its stream.
  """
  if not callable(getattr(environment, "reseed", None)):
    _log.warning("%s has no reseed(generator) method: a resumed run "
                    "restarts its random stream from the seed",
                    type(environment).__name__)
    return {}
  generator = np.random.default_rng(seed)
  environment.reseed(generator)
  return {name: generator}


def _variable_shapes(trackable: Any) -> list[str]:
  if isinstance(trackable, tf.Variable):
    return [f"{trackable.dtype.name}{list(trackable.shape)}"]
  variables = getattr(trackable, "variables", None)
  if variables is None:
    return []
  variables = variables() if callable(variables) else variables
  return [f"{v.dtype.name}{list(v.shape)}" for v in variables]


class RunCheckpointer:
  """TF-Agents checkpoints plus the run's RNG state and resume history."""

  def __init__(self, ckpt_dir: str, seed: int,
               generators: Mapping[str, np.random.Generator] | None = None,
               fingerprint: Mapping[str, Any] | None = None,
               max_to_keep: int = 1,
               config: Mapping[str, str] | None = None,
               allow_config_change: bool = False, **trackables):
    """Prepares checkpoints in `ckpt_dir`; call `restore` next.

    Args:
      ckpt_dir: the checkpoint folder (root_dir/checkpoint).
      seed: the run's seed; TF random ops are reseeded from (seed, step) on
        resume.
      generators: NumPy generators whose state is saved and restored.
      fingerprint: JSON-serialisable facts a resumed run must share (such as
        the agent name); the shapes of the trackables' variables are added.
      max_to_keep: checkpoints kept.
      config: the run's operative config, binding -> value text (see
        `playlist_sim.common.runs.operative_bindings`); saved with the first checkpoint
        and compared on resume.
      allow_config_change: resume even if `config` differs from the
        checkpoint's (the differences are logged, and the new config saved).
      **trackables: objects to checkpoint, as for `common.Checkpointer`;
        must include `global_step`, the step variable.

    Raises:
      ValueError: without a `global_step` trackable.
    """
    if "global_step" not in trackables:
      raise ValueError("RunCheckpointer needs the step variable as the "
                       "`global_step` keyword argument")
    self.ckpt_dir = os.path.abspath(ckpt_dir)
    self.seed = int(seed)
    self._generators = dict(generators or {})
    self._fingerprint = json.dumps(
        {**dict(fingerprint or {}),
         "variables": {name: _variable_shapes(obj)
                       for name, obj in sorted(trackables.items())}},
        sort_keys=True)
    self._max_to_keep = max_to_keep
    self._trackables = trackables
    self._rng_state = tf.Variable("{}", dtype=tf.string, trainable=False)
    self._run_fingerprint = tf.Variable(self._fingerprint, dtype=tf.string,
                                        trainable=False)
    self._resume_history = tf.Variable("[]", dtype=tf.string,
                                       trainable=False)
    self._config = {k: str(v) for k, v in (config or {}).items()}
    self._allow_config_change = allow_config_change
    self._run_config = tf.Variable(json.dumps(self._config, sort_keys=True),
                                   dtype=tf.string, trainable=False)
    self._run_state = tf.Variable("{}", dtype=tf.string, trainable=False)
    self._checkpointer = None
    self._saved_step = None
    self.resumed_from_steps: list[int] = []

  @property
  def root_dir(self) -> str:
    return os.path.dirname(self.ckpt_dir)

  def _error(self, what: str) -> CheckpointError:
    return CheckpointError(
        f"root_dir {self.root_dir!r} holds a checkpoint this run cannot "
        f"resume: {what}. Use a fresh --root_dir for a different run, or "
        f"delete {self.ckpt_dir!r} to start over.")

  def _check_fingerprint(self, path: str) -> None:
    try:
      reader = tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError) as e:
      raise self._error(f"{path!r} cannot be read ({type(e).__name__}: "
                        f"{str(e).splitlines()[0]})") from e
    if not reader.has_tensor(_KEYS["run_fingerprint"]):
      raise self._error(f"{path!r} was written by another program or an "
                        "older version (it has no run fingerprint)")
    saved = _flatten(json.loads(reader.get_tensor(_KEYS["run_fingerprint"])))
    ours = _flatten(json.loads(self._fingerprint))
    differing = sorted(k for k in set(saved) | set(ours)
                       if saved.get(k) != ours.get(k))
    if differing:
      details = "; ".join(
          f"{k}: checkpoint {_short(saved.get(k))} vs this run "
          f"{_short(ours.get(k))}" for k in differing[:3])
      raise self._error(f"it belongs to another run ({details})")

  def restore(self) -> int:
    """Restores the latest checkpoint if there is one.

    Returns:
      The global step restored (0 for a fresh run).

    Raises:
      CheckpointError: if the checkpoint belongs to another run (another
        agent or network shape) or cannot be read.
    """
    latest = tf.train.latest_checkpoint(self.ckpt_dir)
    if latest is not None:
      self._check_fingerprint(latest)
      self._check_config(latest)
    try:
      self._checkpointer = common.Checkpointer(
          ckpt_dir=self.ckpt_dir, max_to_keep=self._max_to_keep,
          rng_state=self._rng_state, run_fingerprint=self._run_fingerprint,
          resume_history=self._resume_history, run_config=self._run_config,
          run_state=self._run_state, **self._trackables)
      status = self._checkpointer.initialize_or_restore()
      if latest is not None:
        status.assert_existing_objects_matched()
    except (tf.errors.OpError, ValueError, AssertionError) as e:
      raise self._error(f"restoring {latest!r} failed "
                        f"({type(e).__name__}: {str(e).splitlines()[0]})"
                        ) from e
    self._remove_orphans()
    if latest is None:
      return 0
    step = int(self._trackables["global_step"].numpy())
    self._saved_step = step
    states = json.loads(self._rng_state.numpy())
    for name, generator in self._generators.items():
      if name in states:
        generator.bit_generator.state = states[name]
      else:
        _log.warning("checkpoint %s has no state for generator %r",
                        latest, name)
    # The saved config was restored into the variable; the run goes on with
    # its own (the same, or a change that was allowed).
    self._run_config.assign(json.dumps(self._config, sort_keys=True))
    self.resumed_from_steps = json.loads(self._resume_history.numpy()) + [step]
    self._resume_history.assign(json.dumps(self.resumed_from_steps))
    tf.random.set_seed(int(np.random.SeedSequence(
        [self.seed, step]).generate_state(1)[0] & 0x7FFFFFFF))
    _log.info("resumed from %s at step %d (resumes so far: %s)", latest,
              step, self.resumed_from_steps)
    return step

  def _check_config(self, path: str) -> None:
    """Refuses a resume whose operative config differs from the saved one."""
    reader = tf.train.load_checkpoint(path)
    if not reader.has_tensor(_KEYS["run_config"]) or not self._config:
      return  # A checkpoint of an older version, or a run without config.
    saved = json.loads(reader.get_tensor(_KEYS["run_config"]))
    # Only bindings both runs used: a configurable called later in a
    # long-lived process (evaluation, baselines) is not a difference.
    differing = sorted(k for k in set(saved) & set(self._config)
                       if saved[k] != self._config[k] and
                       k not in _IGNORED_BINDINGS)
    if not differing:
      return
    listed = "; ".join(f"{k}: checkpoint {saved[k]} vs now {self._config[k]}"
                       for k in differing[:12])
    more = f" (and {len(differing) - 12} more)" if len(differing) > 12 else ""
    if self._allow_config_change:
      _log.warning("resuming with a changed config (allowed): %s%s", listed,
                   more)
      return
    raise ConfigChangeError(
        f"root_dir {self.root_dir!r} holds a checkpoint trained with another "
        f"config: {listed}{more}. Resume with the same gin files and "
        "bindings, pass --allow_config_change to continue anyway, or use a "
        "fresh --root_dir")

  @property
  def run_state(self) -> dict:
    """The bookkeeping saved with the latest checkpoint ({} for a new run)."""
    return json.loads(self._run_state.numpy())

  def _remove_orphans(self) -> None:
    """Deletes what a kill mid-save left: files of unrecorded checkpoints."""
    kept = {os.path.basename(p) for p in self._checkpointer.manager.checkpoints}
    for path in glob.glob(os.path.join(self.ckpt_dir, "ckpt-*")):
      prefix = os.path.basename(path).split(".")[0]
      if prefix not in kept:
        if os.path.isdir(path):
          shutil.rmtree(path, ignore_errors=True)
        else:
          os.remove(path)
        _log.info("removed %s, left by an interrupted save", path)

  def save(self, global_step: tf.Variable,
           run_state: Mapping[str, Any] | None = None) -> None:
    """Saves a checkpoint numbered by the step, with the generators' state.

    A step already saved is not saved again: TF would rewrite that
    checkpoint's files in place, which a kill could leave half written.

    Args:
      global_step: the step variable.
      run_state: JSON-serialisable bookkeeping saved with the checkpoint
        (read back by `run_state`); None keeps the previous value.

    Raises:
      RuntimeError: if called before `restore`.
      CheckpointError: if TensorFlow cannot write the checkpoint.
    """
    if self._checkpointer is None:
      raise RuntimeError("RunCheckpointer.save called before restore")
    step = int(global_step.numpy())
    if step == self._saved_step:
      return
    if run_state is not None:
      self._run_state.assign(json.dumps(run_state, default=_to_json))
    self._rng_state.assign(json.dumps(
        {name: g.bit_generator.state for name, g in self._generators.items()},
        default=lambda x: x.tolist() if hasattr(x, "tolist") else int(x)))
    try:
      self._checkpointer.save(global_step=global_step)
    except (tf.errors.OpError, OSError) as e:  # Read-only, full, quota.
      raise CheckpointError(
          f"could not save a checkpoint in {self.ckpt_dir!r} "
          f"({type(e).__name__}: {str(e).splitlines()[0]}); make the folder "
          "writable or free space, then rerun: training resumes from the "
          "last checkpoint") from e
    self._saved_step = step
    _log.debug("saved checkpoint at step %d in %s", step, self.ckpt_dir)


def _to_json(value: Any) -> Any:
  return value.tolist() if hasattr(value, "tolist") else str(value)


def _flatten(fingerprint: dict) -> dict:
  """{"variables": {"agent": [...]}} -> {"variables.agent": [...]}."""
  flat = {}
  for key, value in fingerprint.items():
    if isinstance(value, dict):
      flat.update({f"{key}.{k}": v for k, v in value.items()})
    else:
      flat[key] = value
  return flat


def _short(value: Any, limit: int = 120) -> str:
  text = json.dumps(value)
  return text if len(text) <= limit else text[:limit] + "..."
