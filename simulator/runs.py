"""What every script shares: common flags, gin parsing, run outputs.

Every entry script takes `--root_dir`, `--seed`, `--gin_file` and
`--gin_bindings`, parses gin through `parse_gin` (so a bad file or binding
gives a `ConfigError` that names it), and ends with `write_run_files`, which
writes the metrics JSON and the operative gin config into root_dir.
"""

import importlib
import os
from typing import Any, Sequence

from absl import flags
import gin

from simulator.io_utils import atomic_path, ensure_writable_dir, write_json

__all__ = ["ConfigError", "define_common_flags", "parse_gin",
           "write_run_files"]


class ConfigError(ValueError):
  """A gin file or binding could not be parsed or applied."""


def define_common_flags(default_gin_files: Sequence[str] = ()) -> None:
  """Defines --root_dir, --seed, --gin_file and --gin_bindings."""
  flags.DEFINE_string("root_dir", None, "Folder for all outputs of the run.")
  flags.DEFINE_integer("seed", 0, "Seed of every random draw of the run.")
  flags.DEFINE_multi_string("gin_file", list(default_gin_files),
                            "Gin config files, applied in order.")
  flags.DEFINE_multi_string("gin_bindings", [],
                            "Gin bindings applied after the files, e.g. "
                            "'PlaylistEnvironment.batch_size = 8'.")
  flags.mark_flag_as_required("root_dir")


#: Modules that register the gin configurables the shipped configs name.
_CONFIGURABLE_MODULES = ("simulator.builder", "simulator.log_episodes")


def parse_gin(gin_files: Sequence[str], gin_bindings: Sequence[str]) -> None:
  """Parses gin files, then bindings, naming whichever one fails.

  Args:
    gin_files: paths of .gin files.
    gin_bindings: binding strings.

  Raises:
    ConfigError: for a missing file, or a file or binding gin rejects (unknown
      configurable or parameter, syntax error).
  """
  # `simulator` loads its names lazily; the modules whose configurables the
  # shipped configs name are loaded here, before a config names them.
  for module in _CONFIGURABLE_MODULES:
    importlib.import_module(module)
  for path in gin_files:
    if not os.path.isfile(path):
      raise ConfigError(f"gin file {path!r} does not exist")
    try:
      gin.parse_config_file(path)
    except Exception as e:  # gin raises ValueError, KeyError, SyntaxError...
      raise ConfigError(f"gin file {path!r} could not be parsed: {e}") from e
  for binding in gin_bindings:
    try:
      gin.parse_config(binding)
    except Exception as e:
      raise ConfigError(f"gin binding {binding!r} was rejected: {e}") from e


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
