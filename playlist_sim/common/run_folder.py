"""A run owns its folder: a manifest (`run.json`) and a lock held while it runs.

Every command writes `root_dir/run.json`:

    {"kind": "train_agent", "version": "0.1.0", "config_hash": "...",
     "operative_config_hash": "...", "status": "finished", "pid": 123,
     "started": "2026-12-02T16:20:59+00:00", "ended": "...", "error": null}

`config_hash` is the SHA-256 of what decides the run's outputs, known before
it starts (the bound gin config and the command's arguments); it is how a
rerun is recognised. `operative_config_hash` hashes `operative_config.gin`
(the parameters the run actually used) once the run has finished.

`RunFolder` holds a `filelock` lock on `root_dir/.run.lock` from `__enter__`
to `__exit__`, so a second process on the same folder stops at once with
`RunBusyError`. It refuses a folder that holds a run of another kind (or that
is also one of the run's inputs) unless `overwrite`, and tells the caller when
the folder already holds a finished run of the same configuration
(`already_finished`): the caller then writes nothing.
"""

import datetime
import hashlib
import json
import logging
import os
from typing import Any, Mapping

import filelock

from playlist_sim.common.io_utils import write_json
from playlist_sim.common.version import __version__

__all__ = ["MANIFEST", "RunBusyError", "RunFolder", "RunFolderError",
           "config_hash", "read_manifest"]

MANIFEST = "run.json"
_LOCK = ".run.lock"
_log = logging.getLogger(__name__)


class RunFolderError(ValueError):
  """root_dir cannot be used by this run (another kind, an input, ...)."""


class RunBusyError(RunFolderError):
  """Another process holds root_dir's lock."""


def config_hash(config: Mapping[str, Any]) -> str:
  """SHA-256 of a JSON-serialisable description of the run's configuration."""
  text = json.dumps(config, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()


def read_manifest(root_dir: str) -> dict | None:
  """The manifest in root_dir, or None if there is none (or it is unreadable).

  Args:
    root_dir: a run folder.

  Returns:
    The parsed run.json, or None.
  """
  path = os.path.join(root_dir, MANIFEST)
  try:
    with open(path) as f:
      manifest = json.load(f)
  except (OSError, ValueError):
    return None
  return manifest if isinstance(manifest, dict) else None


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec="seconds")


class RunFolder:
  """The lock and manifest of one run in root_dir (a context manager).

  Attributes:
    root_dir: the absolute run folder.
    kind: the kind of run ("train_agent", "generate_logs", ...).
    previous: the manifest found when the run started, or None.
    already_finished: True if root_dir holds a finished run of this kind and
      configuration (and not `overwrite`): the caller should write nothing.
    resumed: True if root_dir holds an unfinished run of this kind (killed,
      failed or interrupted) that this run continues or redoes.
  """

  def __init__(self, root_dir: str, kind: str,
               config: Mapping[str, Any] | None = None, *,
               overwrite: bool = False,
               inputs: Mapping[str, str | None] | None = None,
               rerun_with_new_config: bool = False):
    """Describes the run; nothing is touched before `__enter__`.

    Args:
      root_dir: the run folder.
      kind: the kind of run, recorded in run.json.
      config: what decides the run's outputs (hashed into `config_hash`).
      overwrite: allow a folder of another kind, one of the inputs, or a
        finished run to be written over.
      inputs: flag name -> folder the run reads (for example
        {"logs_dir": ...}); root_dir may not be one of them.
      rerun_with_new_config: a finished run with another configuration is
        run again instead of refused (train_agent checks the differences
        itself, see `agents.train_eval`).

    Raises:
      RunFolderError: if root_dir is empty or not a folder.
    """
    if not root_dir:
      raise RunFolderError("--root_dir is required: the folder for the run's "
                           "outputs")
    self.root_dir = os.path.abspath(os.fspath(root_dir))
    self.kind = kind
    self.config_hash = config_hash(config or {})
    self._overwrite = overwrite
    self._inputs = dict(inputs or {})
    self._rerun_with_new_config = rerun_with_new_config
    self._lock: filelock.BaseFileLock | None = None
    self._created = False
    self.previous: dict | None = None
    self.already_finished = False
    self.resumed = False

  @property
  def manifest_path(self) -> str:
    return os.path.join(self.root_dir, MANIFEST)

  def _check_inputs(self) -> None:
    for flag, path in self._inputs.items():
      if path and os.path.abspath(path) == self.root_dir and not (
          self._overwrite):
        raise RunFolderError(
            f"--root_dir {self.root_dir!r} is also --{flag}: the run would "
            f"write over its own input; choose another --root_dir (or pass "
            "--overwrite)")

  def _acquire(self) -> None:
    if os.path.exists(self.root_dir) and not os.path.isdir(self.root_dir):
      raise RunFolderError(f"root_dir {self.root_dir!r} exists and is not a "
                           "folder; choose another --root_dir")
    self._created = not os.path.exists(self.root_dir)
    try:
      os.makedirs(self.root_dir, exist_ok=True)
    except OSError as e:
      raise RunFolderError(f"root_dir {self.root_dir!r} cannot be created: "
                           f"{e.strerror}") from e
    self._lock = filelock.FileLock(os.path.join(self.root_dir, _LOCK))
    try:
      self._lock.acquire(timeout=0)
    except filelock.Timeout:
      self._lock = None
      other = read_manifest(self.root_dir) or {}
      raise RunBusyError(
          f"root_dir {self.root_dir!r} is in use by another run (kind "
          f"{other.get('kind', '?')}, pid {other.get('pid', '?')}, started "
          f"{other.get('started', '?')}); wait for it to end or choose "
          "another --root_dir") from None

  def _check_previous(self) -> None:
    previous = self.previous = read_manifest(self.root_dir)
    if previous is None:
      return
    if previous.get("kind") != self.kind and not self._overwrite:
      raise RunFolderError(
          f"root_dir {self.root_dir!r} holds a {previous.get('kind')!r} run; "
          f"a {self.kind!r} run would write over it. Choose another "
          "--root_dir (or pass --overwrite)")
    if previous.get("kind") != self.kind:
      return
    same = previous.get("config_hash") == self.config_hash
    if previous.get("status") == "finished":
      if self._overwrite:
        return
      if same:
        self.already_finished = True
      elif not self._rerun_with_new_config:
        raise RunFolderError(
            f"root_dir {self.root_dir!r} holds a finished {self.kind!r} run "
            "with another configuration (gin files, bindings or flags); "
            "choose another --root_dir, or pass --overwrite to run again "
            "into it")
      return
    self.resumed = True

  def __enter__(self) -> "RunFolder":
    self._check_inputs()
    self._acquire()
    try:
      self._check_previous()
      if not self.already_finished:
        self._write(status="running", started=_now(), ended=None, error=None)
    except BaseException:
      self._release(remove_if_empty=True)
      raise
    return self

  def _write(self, **fields: Any) -> None:
    if fields.get("status") == "running":  # A new attempt: a fresh manifest.
      attempts = 1
      if self.previous and self.previous.get("kind") == self.kind:
        attempts += int(self.previous.get("attempts", 1))
      manifest = {"attempts": attempts}
    else:
      manifest = read_manifest(self.root_dir) or {}
    manifest.update(kind=self.kind, version=__version__,
                    config_hash=self.config_hash, pid=os.getpid(), **fields)
    write_json(self.manifest_path, manifest)

  def finish(self, operative_config: str | None = None) -> None:
    """Marks the run finished (call when every output is written).

    Args:
      operative_config: the text of operative_config.gin, hashed into the
        manifest.
    """
    fields = {"status": "finished", "ended": _now(), "error": None}
    if operative_config is not None:
      fields["operative_config_hash"] = hashlib.sha256(
          operative_config.encode()).hexdigest()
    self._write(**fields)

  def __exit__(self, exc_type, exc, tb) -> None:
    try:
      if exc_type is not None and not self.already_finished:
        if self._only_our_files():
          self._release(remove_if_empty=True)
          return
        if self._refused_rerun(exc):
          # A finished run stays finished when a rerun is refused (another
          # config): its manifest is put back byte for byte.
          write_json(self.manifest_path, self.previous)
          return
        error = ("interrupted" if exc_type is KeyboardInterrupt else
                 f"{exc_type.__name__}: {exc}".splitlines()[0][:500])
        self._write(status="failed", ended=_now(), error=error)
    finally:
      self._release(remove_if_empty=False)

  def _refused_rerun(self, exc: BaseException | None) -> bool:
    """True if a rerun of a finished run stopped on one of the package's
    refusals (a ValueError, raised before any work) without --overwrite."""
    return (self.previous is not None and not self._overwrite and
            self.previous.get("kind") == self.kind and
            self.previous.get("status") == "finished" and
            isinstance(exc, ValueError))

  def _only_our_files(self) -> bool:
    """True if root_dir holds nothing but this run's manifest and lock."""
    if not self._created:
      return False
    return set(os.listdir(self.root_dir)) <= {MANIFEST, _LOCK}

  def _release(self, remove_if_empty: bool) -> None:
    if self._lock is not None:
      self._lock.release()
      self._lock = None
    if remove_if_empty and self._only_our_files():
      # A run that failed before writing anything leaves no folder behind.
      for name in (MANIFEST, _LOCK):
        path = os.path.join(self.root_dir, name)
        if os.path.exists(path):
          os.remove(path)
      try:
        os.rmdir(self.root_dir)
      except OSError:
        _log.debug("could not remove %s", self.root_dir)
      self._created = False
