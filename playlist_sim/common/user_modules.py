"""The user's own modules, so that other processes can import them too.

A run's gin config can name configurables from the user's own modules (a
user model in `my_listener.py`, imported with `--gin_imports my_listener`,
by a gin file's `import` line, or by the user's script). A Ray worker that
parses the same config in a fresh process knows none of them: it must import
the same modules, from the same folders, first.

    modules = ModuleSet.of_gin_config()     # in the driver
    modules.import_all(where="collect worker 0")   # in each worker

`ModuleSet.of_gin_config` takes the modules of the gin config's `import`
lines (`playlist_sim.common.runs.import_modules` adds one for each
`--gin_imports` module, so they live and die with the config) and the module
of every configurable the config binds or references, each with the
`sys.path` folder it was imported from.
"""

import dataclasses
import importlib
import os
import sys
from typing import Iterable

from gin import config as gin_config

__all__ = ["ModuleSet", "WorkerImportError"]


class WorkerImportError(ImportError):
  """A module the driver imported could not be imported in a worker."""


def _module_root(name: str) -> str | None:
  """The sys.path folder module `name` was imported from (None: built in,
  or not imported)."""
  module = sys.modules.get(name)
  path = getattr(module, "__file__", None)
  if not path:
    return None
  root = os.path.dirname(os.path.abspath(path))
  levels = name.count(".") + (os.path.basename(path).startswith("__init__.")
                              and 1 or 0)
  for _ in range(levels):
    root = os.path.dirname(root)
  return root


def _references(value) -> Iterable:
  """Every configurable reference in a bound value (nested containers too)."""
  if isinstance(value, gin_config.ConfigurableReference):
    yield value.configurable
  elif isinstance(value, dict):
    for item in value.values():
      yield from _references(item)
  elif isinstance(value, (list, tuple, set)):
    for item in value:
      yield from _references(item)


def _imported_modules() -> list[str]:
  """The modules of the gin config's `import` lines, sorted."""
  # pylint: disable=protected-access
  return sorted({statement.module for statement in gin_config._IMPORTS})


def _configured_modules() -> dict[str, str]:
  """Module -> a configurable of it, for every configurable the current
  gin config binds or references (macros included)."""
  found: dict[str, str] = {}
  # gin keeps the parsed bindings in private tables; there is no public
  # listing of the configurables a config uses.
  # pylint: disable=protected-access
  for (_, selector), params in gin_config._CONFIG.items():
    configurable = gin_config._REGISTRY.get_match(selector)
    used = [configurable] if configurable is not None else []
    for value in params.values():
      used.extend(_references(value))
    for item in used:
      found.setdefault(getattr(item.wrapped, "__module__", None) or
                       item.module, item.name)
  # pylint: enable=protected-access
  found.pop("", None)
  return found


@dataclasses.dataclass(frozen=True)
class ModuleSet:
  """Modules to import, and the folders they come from.

  Attributes:
    names: module names, in import order.
    folders: sys.path folders they were imported from in the driver.
  """
  names: tuple[str, ...] = ()
  folders: tuple[str, ...] = ()

  @classmethod
  def of_gin_config(cls) -> "ModuleSet":
    """The modules behind this process's gin config (see the module doc).

    Returns:
      The set: the config's `import` lines first, then the configurables'
      modules.

    Raises:
      WorkerImportError: if a configurable the config uses is defined in
        the script being run (`__main__`), which no other process can
        import.
    """
    configured = _configured_modules()
    if "__main__" in configured:
      raise WorkerImportError(
          f"gin configurable {configured['__main__']!r} is defined in the "
          "script being run (__main__), which Ray workers cannot import: "
          "move it into a module of its own and import that (a gin "
          "`import` line or --gin_imports)")
    imported = _imported_modules()
    names = imported + sorted(n for n in configured if n not in imported)
    folders = []
    for name in names:
      root = _module_root(name)
      if root is not None and root not in folders:
        folders.append(root)
    return cls(tuple(names), tuple(folders))

  def import_all(self, where: str) -> None:
    """Imports every module, with the driver's folders on sys.path.

    Args:
      where: the process, for messages (e.g. "collect worker 1").

    Raises:
      WorkerImportError: naming the module, the process, the folders
        searched and what to do.
    """
    # Appended: the process's own packages come first, and the driver's
    # folders are where the user's modules are found.
    for folder in self.folders:
      if folder not in sys.path:
        sys.path.append(folder)
    for name in self.names:
      try:
        importlib.import_module(name)
      except Exception as e:  # A module's own error, too: it is user code.
        raise WorkerImportError(
            f"{where} could not import module {name!r}, which the driver's "
            f"gin config uses ({type(e).__name__}: {e}); it is looked up "
            f"in the driver's folders {list(self.folders)}. On a Ray "
            "cluster, install the module on every node or ship it with "
            "the job (ray.init runtime_env py_modules or working_dir)"
        ) from e
