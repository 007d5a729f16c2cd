"""What every command shares: common flags, gin parsing, run outputs.

Every command takes `--root_dir`, `--seed`, `--gin_file`, `--gin_bindings`,
`--gin_imports` and `--overwrite`, parses gin through `parse_gin` (so a bad
file or binding gives a `ConfigError` that names it), runs inside a
`RunFolder` (manifest and lock, see `playlist_sim.common.run_folder`) and ends
with `write_run_files`, which writes the metrics JSON and the operative gin
config into root_dir.

Shipped configs are found by name from any folder: `--gin_file ahdqn`,
`ahdqn.gin` and `configs/ahdqn.gin` all name `configs/ahdqn.gin` of the
package (installed as `simulator/configs`) when no such file exists relative
to the current folder. A gin `include` is looked up in the current folder, the
folders of the `--gin_file`s given, and the package's configs.
"""

import contextlib
import importlib
import logging
import os
import re
import sys
from typing import Any, Iterator, Sequence

from absl import flags
import gin

from playlist_sim.common.io_utils import atomic_path
from playlist_sim.common.io_utils import ensure_writable_dir
from playlist_sim.common.io_utils import write_json
from playlist_sim.common.run_folder import (MANIFEST, RunBusyError, RunFolder,
                                            RunFolderError, config_hash,
                                            read_manifest)

__all__ = ["ConfigError", "MANIFEST", "RunBusyError", "RunFolder",
           "RunFolderError", "config_dir", "config_hash", "define_common_flags",
           "import_modules", "isolated_gin_config", "operative_bindings",
           "parse_gin", "read_manifest", "resolve_gin_file", "resolve_seed",
           "write_run_files"]

_log = logging.getLogger(__name__)

# The folder that holds the packages: site-packages, or the repository root.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


class ConfigError(ValueError):
  """A gin file or binding could not be parsed or applied."""


def config_dir() -> str:
  """The folder of the shipped gin configs (installed or in the repository).

  Returns:
    `simulator/configs` of an installed package, else the repository's
    `configs/` folder.
  """
  installed = os.path.join(_ROOT, "simulator", "configs")
  if os.path.isdir(installed):
    return installed
  return os.path.join(_ROOT, "configs")


def resolve_gin_file(name: str) -> str:
  """The path of a gin file given as a path or a shipped config's name.

  Args:
    name: a path (relative to the current folder or absolute), or the name of
      a shipped config: "ahdqn", "ahdqn.gin" or "configs/ahdqn.gin".

  Returns:
    An existing file's path.

  Raises:
    ConfigError: if neither the path nor a shipped config exists.
  """
  if os.path.isfile(name):
    return name
  shipped = config_dir()
  base = name[len("configs/"):] if name.startswith("configs/") else name
  if not os.path.isabs(name) and os.sep not in base:
    for candidate in (base, base + ".gin"):
      path = os.path.join(shipped, candidate)
      if os.path.isfile(path):
        return path
  names = sorted(f[:-4] for f in os.listdir(shipped) if f.endswith(".gin"))
  raise ConfigError(f"gin file {name!r} does not exist (relative to "
                    f"{os.getcwd()!r}) and is not a shipped config; shipped "
                    f"configs: {', '.join(names)}")


def define_common_flags(default_gin_files: Sequence[str] = ()) -> None:
  """Defines the flags every command takes (see `docs/cli.md`).

  Several commands in one process share the definitions; the last call's
  `default_gin_files` is the default (`playlist_sim.cli` sets it again for
  the command it runs).

  Args:
    default_gin_files: the command's default --gin_file values.
  """
  if "root_dir" in flags.FLAGS:
    flags.FLAGS.set_default("gin_file", list(default_gin_files))
    return
  flags.DEFINE_string("root_dir", None, "Folder for all outputs of the run "
                      "(required).")
  flags.DEFINE_integer("seed", 0, "Seed of every random draw of the run.")
  flags.DEFINE_multi_string("gin_file", list(default_gin_files),
                            "Gin config files, applied in order: a path, or "
                            "a shipped config's name (e.g. 'ahdqn').")
  flags.DEFINE_multi_string("gin_bindings", [],
                            "Gin bindings applied after the files, e.g. "
                            "'PlaylistEnvironment.batch_size = 8'.")
  flags.DEFINE_multi_string("gin_imports", [],
                            "Python modules imported before gin is parsed "
                            "(your own user model, e.g. 'my_listener'); "
                            "looked up in the current folder first.")
  flags.DEFINE_bool("overwrite", False,
                    "Write into a folder holding another kind of run, a "
                    "finished run, or an input of the run.")
  flags.DEFINE_bool("verbose", False, "Show TensorFlow, absl and library "
                    "messages (also -v).")
  flags.DEFINE_bool("debug", False, "Show the traceback of an error.")


def import_modules(names: Sequence[str], search_dirs: Sequence[str] = ()
                   ) -> None:
  """Imports the user's modules (so their gin configurables register).

  Args:
    names: module names, e.g. "my_listener" or "mypkg.models".
    search_dirs: folders put on sys.path first (the current folder is
      always one: an installed command does not have it on sys.path).

  Raises:
    ConfigError: naming the module that could not be imported.
  """
  for folder in [os.getcwd(), *search_dirs]:
    folder = os.path.abspath(folder)
    if folder not in sys.path:
      sys.path.insert(0, folder)
  for name in names:
    try:
      importlib.import_module(name)
    except ImportError as e:
      raise ConfigError(f"--gin_imports {name!r} could not be imported ({e}); "
                        "give a module on the current folder's path, e.g. "
                        "'my_listener' for ./my_listener.py") from e
    # An `import` line in the config: other processes that parse it (Ray
    # workers, `playlist_sim.common.user_modules`) import it too, and it is
    # gone with the config (gin.clear_config).
    gin.parse_config(f"import {name}")


def _safe_existence_check(check):
  """gin's package-path check raises TypeError for a namespace package."""
  def wrapped(path: str) -> bool:
    try:
      return check(path)
    except TypeError:  # `configs/` on sys.path: a package without a file.
      return False
  wrapped.safe = True
  return wrapped


def _search_paths(gin_files: Sequence[str]) -> None:
  """Adds the folders gin looks for includes in (see the module docstring)."""
  # pylint: disable=protected-access
  gin.config._FILE_READERS[:] = [
      (reader, check if getattr(check, "safe", False) else
       _safe_existence_check(check))
      for reader, check in gin.config._FILE_READERS]
  # pylint: enable=protected-access
  shipped = config_dir()
  for folder in ([os.path.dirname(os.path.abspath(p)) for p in gin_files] +
                 [os.path.dirname(shipped), shipped]):
    if folder not in gin.config._LOCATION_PREFIXES:  # pylint: disable=protected-access
      gin.add_config_file_search_path(folder)


def parse_gin(gin_files: Sequence[str], gin_bindings: Sequence[str],
              gin_imports: Sequence[str] = ()) -> None:
  """Parses gin files, then bindings, naming whichever one fails.

  Args:
    gin_files: paths of .gin files, or names of shipped configs.
    gin_bindings: binding strings.
    gin_imports: modules to import first (see `import_modules`); a gin file's
      own `import` statements find modules beside the file or in the current
      folder too.

  Raises:
    ConfigError: for a missing file or module, or a file or binding gin
      rejects (unknown configurable or parameter, syntax error).
  """
  paths = [resolve_gin_file(p) for p in gin_files]
  import_modules(gin_imports,
                 [os.path.dirname(os.path.abspath(p)) for p in paths])
  _search_paths(paths)
  for name, path in zip(gin_files, paths):
    try:
      gin.parse_config_file(path)
    except Exception as e:  # gin raises ValueError, KeyError, SyntaxError...
      message = str(e).splitlines()[0] if str(e) else type(e).__name__
      raise ConfigError(f"gin file {name!r} could not be parsed: "
                        f"{message}") from e
  for binding in gin_bindings:
    try:
      gin.parse_config(binding)
    except Exception as e:
      hint = ("; give the seed with --seed" if "denylisted kwarg 'seed'"
              in str(e) else "")
      raise ConfigError(f"gin binding {binding!r} was rejected: {e}{hint}"
                        ) from e


def resolve_seed(flag_seed: int, flag_given: bool,
                 configurables: Sequence[str]) -> int:
  """The run's seed, from `--seed` and a gin binding of the entry point's.

  The rule (docs/cli.md, "The seed"): a seed bound in gin (`train_eval.seed
  = 7` in a file or `--gin_bindings`) is used when `--seed` is not given; a
  `--seed` is used when nothing binds one; both given must agree, since
  silently preferring one would run another experiment than the user wrote.

  Args:
    flag_seed: the value of `--seed`.
    flag_given: whether `--seed` was on the command line.
    configurables: the entry points whose unscoped `<name>.seed` binding is
      the run's seed (e.g. ("train_eval",)).

  Returns:
    The seed to run with.

  Raises:
    ConfigError: if `--seed` and a binding give different seeds, or two
      bindings do.
  """
  bound = {}
  for name in configurables:
    try:
      bound[f"{name}.seed"] = gin.query_parameter(f"{name}.seed")
    except ValueError:  # Not bound.
      continue
  values = set(bound.values())
  if len(values) > 1:
    raise ConfigError(f"the gin config binds different seeds: {bound}; "
                      "bind one, or give --seed and remove the bindings")
  if not bound:
    return int(flag_seed)
  (name, value), = list(bound.items())[:1]
  if isinstance(value, bool) or not isinstance(value, int):
    raise ConfigError(f"gin binding {name} = {value!r}: a seed must be an "
                      "integer")
  if flag_given and int(flag_seed) != value:
    raise ConfigError(
        f"--seed {flag_seed} and the gin binding {name} = {value} give "
        "different seeds; give the seed once: drop --seed to use the "
        f"binding, or remove the binding (or pass --seed {value})")
  if not flag_given:
    _log.info("seed %d from the gin binding %s (no --seed given)", value,
              name)
  return value


@contextlib.contextmanager
def isolated_gin_config() -> Iterator[None]:
  """Bindings parsed inside the block are gone after it.

  For a stage that must configure its own code through gin (an agent config)
  without any later stage reading what it bound. On exit the configuration
  is what it was on entry (every binding, macro, scope and import), parsed
  back from its text (`gin.config_str`, which holds every binding, not only
  the operative ones), and unlocked for the parse.
  """
  saved = gin.config_str()
  try:
    yield
  finally:
    with gin.unlock_config():
      gin.clear_config()
      gin.parse_config(saved)


_BINDING = re.compile(r"^([A-Za-z_][\w./%@-]*)\s*=\s*(.*)$")


def operative_bindings(config_text: str | None = None) -> dict[str, str]:
  """The bindings of a gin config text, binding -> value text.

  Args:
    config_text: gin config text; by default `gin.operative_config_str()`
      (every parameter the configurables called so far have used).

  Returns:
    {"scope/Configurable.param": "value"}, multi-line values joined.
  """
  text = gin.operative_config_str() if config_text is None else config_text
  bindings: dict[str, str] = {}
  key = None
  for line in text.splitlines():
    if not line.strip() or line.lstrip().startswith("#"):
      continue
    match = _BINDING.match(line)
    if match and not line[0].isspace():
      key = match.group(1)
      bindings[key] = match.group(2).strip()
    elif key is not None:  # A continuation of a multi-line value.
      bindings[key] += " " + line.strip()
  return bindings


def write_run_files(root_dir: str, metrics: dict[str, Any],
                    metrics_name: str = "metrics.json") -> str:
  """Writes metrics JSON and the gin configs of the run, atomically.

  `operative_config.gin` lists the parameters the run actually used;
  `config.gin` everything that was bound.

  Args:
    root_dir: the run folder.
    metrics: JSON-serialisable metrics.
    metrics_name: file name of the metrics.

  Returns:
    The metrics path.
  """
  root_dir = ensure_writable_dir(root_dir)
  path = os.path.join(root_dir, metrics_name)
  write_json(path, metrics)
  for name, text in (("operative_config.gin", gin.operative_config_str()),
                     ("config.gin", gin.config_str())):
    with atomic_path(os.path.join(root_dir, name)) as tmp:
      with open(tmp, "w") as f:
        f.write(text)
  return path
