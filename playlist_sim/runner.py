"""Runs a command module inside its run folder (gin, lock, manifest).

A command module defines `KIND` (recorded in run.json), its absl flags,
`run(flag_values, run_folder)`, and optionally `INPUTS` (names of flags that
hold folders the run reads: root_dir may not be one of them) and
`RERUN_WITH_NEW_CONFIG` (a finished run with another configuration is handed
to `run`, which checks the differences itself, instead of being refused) and
`SEED_CONFIGURABLES` (the gin entry points whose `<name>.seed` binding is the
run's seed, besides `PlaylistEnvironment.seed` for every command: `--seed`
and such a binding must agree, see `playlist_sim.common.runs.resolve_seed`).
"""

import logging
from types import ModuleType

from absl import flags
import gin

from playlist_sim.common import runs
# The modules whose gin configurables the shipped configs name without an
# `import` line of their own (`simulator` loads its names lazily): loaded
# here, at the edge, before any config is parsed.
import simulator.builder  # noqa: F401
import simulator.log_episodes  # noqa: F401

__all__ = ["EDGE_FLAGS", "config_flags", "run_in_folder"]

#: Flags that change how a run is reported or guarded, not what it computes.
EDGE_FLAGS = ("root_dir", "overwrite", "verbose", "debug",
              "allow_config_change")
_log = logging.getLogger(__name__)


def config_flags(module: ModuleType) -> dict:
  """The flag values that decide a run's outputs (hashed into run.json).

  Args:
    module: the command module.

  Returns:
    Flag name -> value for the module's own flags and the common ones that
    change results (seed, gin files, bindings and imports).
  """
  values = flags.FLAGS.flag_values_dict()
  owned = [f.name for f in flags.FLAGS.get_key_flags_for_module(
      module.__name__)]
  names = owned + ["seed", "gin_file", "gin_bindings", "gin_imports"]
  return {n: values[n] for n in sorted(set(names)) if n not in EDGE_FLAGS}


def run_in_folder(module: ModuleType) -> None:
  """Parses gin, then runs `module.run` inside its `RunFolder`.

  A folder that already holds this finished run (same kind and
  configuration) is left untouched and the call returns at once.

  Args:
    module: the command module (see the module docstring).

  Raises:
    ConfigError: for a bad gin file, binding or import.
    RunFolderError: if root_dir belongs to another run, is busy, or is an
      input of the run.
  """
  values = flags.FLAGS
  gin.clear_config()  # Only this command's files and bindings.
  runs.parse_gin(values.gin_file, values.gin_bindings, values.gin_imports)
  # Before the config is hashed: the seed the run really uses. Every
  # command seeds its environments from the run's seed, so a
  # `PlaylistEnvironment.seed` binding is a seed of the run too.
  values.seed = runs.resolve_seed(
      values.seed, values["seed"].present,
      (*getattr(module, "SEED_CONFIGURABLES", ()), "PlaylistEnvironment"))
  config = {"kind": module.KIND, "gin": gin.config_str(),
            "flags": config_flags(module)}
  inputs = {name: values[name].value for name in getattr(module, "INPUTS",
                                                         ())}
  with runs.RunFolder(
      values.root_dir, module.KIND, config, overwrite=values.overwrite,
      inputs=inputs,
      rerun_with_new_config=getattr(module, "RERUN_WITH_NEW_CONFIG", False)
  ) as run_folder:
    if run_folder.already_finished:
      _log.info("%s already holds this finished %s run (run.json): nothing "
                "to do; pass --overwrite to run it again",
                run_folder.root_dir, module.KIND)
      return
    if run_folder.resumed:
      _log.info("%s holds an unfinished %s run: continuing it",
                run_folder.root_dir, module.KIND)
    module.run(values, run_folder)
    run_folder.finish(gin.operative_config_str())
