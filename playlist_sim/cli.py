"""`playlist-sim`: one installed command, a subcommand per job.

    playlist-sim pipeline --root_dir runs/q --quick
    playlist-sim simulate --root_dir runs/sim --policy cosine
    playlist-sim train-agent --gin_file ahdqn --root_dir runs/ahdqn

Each subcommand is a module of `playlist_sim.commands` (the `scripts/*.py`
call the same code). Adding one is one line in `COMMANDS`. A module either
defines `KIND`, its absl flags and `run(flag_values, run_folder)` (the runner
parses gin, takes the run folder's lock and writes its manifest, see
`playlist_sim.common.run_folder`), or only its flags and `main(argv)`, run as
is.

Exit status: 0 on success (a finished run found again is a success), 2 for a
usage or package error (one line on stderr, the traceback with --debug), 1 for
an unexpected error, 130 after Ctrl-C (a rerun of the same command resumes).
"""

import importlib
import importlib.metadata
import json
import os
import sys
import time
import traceback
from typing import Sequence

from absl import app
from absl import flags
import filelock

from playlist_sim import logging_setup

__all__ = ["COMMANDS", "main", "run"]

#: Subcommand -> module. One line per command.
COMMANDS = {
    "pipeline": "playlist_sim.commands.pipeline",
    "simulate": "playlist_sim.commands.simulate",
    "generate-logs": "playlist_sim.commands.generate_logs",
    "train-user-model": "playlist_sim.commands.train_user_model",
    "quantize": "playlist_sim.commands.quantize",
    "train-agent": "playlist_sim.commands.train_agent",
    "evaluate": "playlist_sim.commands.evaluate",
    "benchmark": "playlist_sim.commands.benchmark",
    "order-matters": "playlist_sim.commands.order_matters",
    "log-stats": "playlist_sim.commands.log_stats",
    "evaluate-skip-prediction":
        "playlist_sim.commands.evaluate_skip_prediction",
}

_PACKAGES = ("simulator", "user_models", "agents", "playlist_sim")
_PACKAGE_DIRS = tuple(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                 p) + os.sep for p in _PACKAGES)
_HELP = ("-h", "--help", "--helpshort", "--helpfull", "-?")


def _is_package_error(error: BaseException) -> bool:
  """True for the package's own errors (raised by its code, or its types)."""
  if isinstance(error, (flags.Error, app.UsageError)):
    return True
  if type(error).__module__.split(".")[0] in _PACKAGES:
    return True
  tb = error.__traceback__
  while tb is not None and tb.tb_next is not None:
    tb = tb.tb_next
  return (isinstance(error, (ValueError, OSError)) and tb is not None and
          tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIRS))


def _one_line(error: BaseException) -> str:
  text = " ".join(str(error).split()) or "(no message)"
  return f"{type(error).__name__}: {text}"


def _print_help(name: str, module, prog: str) -> None:
  doc = (module.__doc__ or "").strip()
  lines = [f"usage: {prog} [flags]", "", doc, ""]
  for owner, title in ((module.__name__, f"flags of {name}"),
                       ("playlist_sim.common.runs", "common flags")):
    text = flags.FLAGS.module_help(owner).strip("\n")
    body = text.split("\n", 1)[1] if "\n" in text else ""
    if body.strip():
      lines += [f"{title}:", body.rstrip(), ""]
  lines += ["  -v: same as --verbose", "",
            "exit status: 0 done (or already done), 2 usage or package error, "
            "1 unexpected error, 130 interrupted (rerun to resume)"]
  print("\n".join(lines))


def _root_dir_arg(argv: Sequence[str]) -> str | None:
  for i, arg in enumerate(argv):
    if arg.startswith("--root_dir="):
      return arg.split("=", 1)[1]
    if arg == "--root_dir" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _busy_before_imports(argv: Sequence[str]) -> str | None:
  """The busy message if root_dir's lock is held, checked before TensorFlow
  is imported (seconds) so that a second run stops at once. The run folder
  takes the lock for real later (`playlist_sim.common.run_folder.RunFolder`)."""
  root_dir = _root_dir_arg(argv)
  if not root_dir:
    return None
  lock_path = os.path.join(root_dir, ".run.lock")
  if not os.path.exists(lock_path):
    return None
  lock = filelock.FileLock(lock_path)
  try:
    lock.acquire(timeout=0)
  except filelock.Timeout:
    try:
      with open(os.path.join(root_dir, "run.json")) as f:
        other = json.load(f)
    except (OSError, ValueError):
      other = {}
    return (f"RunBusyError: root_dir {os.path.abspath(root_dir)!r} is in use "
            f"by another run (kind {other.get('kind', '?')}, pid "
            f"{other.get('pid', '?')}, started {other.get('started', '?')}); "
            "wait for it to end or choose another --root_dir")
  lock.release()
  return None


def _split_edge_args(argv: Sequence[str]) -> tuple[list[str], bool, bool,
                                                  bool]:
  verbose = any(a in ("-v", "--verbose", "--verbose=true") for a in argv)
  debug = any(a in ("--debug", "--debug=true") for a in argv)
  wants_help = any(a in _HELP for a in argv)
  rest = [a if a != "-v" else "--verbose" for a in argv]
  return rest, verbose, debug, wants_help


def run(name: str, argv: Sequence[str], prog: str | None = None) -> int:
  """Runs subcommand `name` with its arguments; returns the exit status.

  Args:
    name: a key of `COMMANDS`.
    argv: the arguments after the subcommand.
    prog: the program name shown in messages.

  Returns:
    The exit status (see the module docstring).
  """
  prog = prog or f"playlist-sim {name}"
  argv, verbose, debug, wants_help = _split_edge_args(argv)
  busy = None if wants_help else _busy_before_imports(argv)
  if busy:
    sys.stderr.write(f"{prog}: error: {busy}\n")
    return 2
  logging_setup.quiet_environment(verbose)
  logging_setup.configure_logging(verbose)
  start = time.monotonic()
  try:
    with logging_setup.silenced_stderr(enabled=not verbose):
      # Imported by name, here: TensorFlow comes with them, and must come
      # after the quiet setup.
      module = importlib.import_module(COMMANDS[name])
      runner = importlib.import_module("playlist_sim.runner")
    logging_setup.configure_logging(verbose)  # Again: TF resets absl's.
    if wants_help:
      _print_help(name, module, prog)
      return 0
    flags.FLAGS.unparse_flags()  # A second run in one process starts clean.
    if hasattr(module, "DEFAULT_GIN_FILES"):
      flags.FLAGS.set_default("gin_file", list(module.DEFAULT_GIN_FILES))
    positional = flags.FLAGS([prog, *argv])
    if hasattr(module, "run"):
      if len(positional) > 1:
        raise app.UsageError(f"unexpected arguments {positional[1:]}; every "
                             "input is a --flag (see --help)")
      runner.run_in_folder(module)
    else:
      module.main(positional)
    return 0
  except KeyboardInterrupt:
    sys.stderr.write(f"\n{prog}: interrupted after "
                     f"{time.monotonic() - start:.0f} s; run the same "
                     "command again to resume\n")
    return 130
  except Exception as e:  # pylint: disable=broad-except
    if debug:
      traceback.print_exc()
    if _is_package_error(e):
      sys.stderr.write(f"{prog}: error: {_one_line(e)}\n")
      return 2
    sys.stderr.write(f"{prog}: unexpected error: {_one_line(e)}\n"
                     + ("" if debug else "(rerun with --debug for the "
                        "traceback, and please report it)\n"))
    return 1


def _exit(status: int) -> None:
  """Exits without waiting for TensorFlow's and Ray's threads (Ctrl-C)."""
  sys.stdout.flush()
  sys.stderr.flush()
  if status == 130:
    os._exit(status)  # pylint: disable=protected-access
  sys.exit(status)


def main(argv: Sequence[str] | None = None) -> None:
  """The `playlist-sim` console entry point."""
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in _HELP:
    print("usage: playlist-sim COMMAND [flags]   (playlist-sim COMMAND "
          "--help for its flags)\n\ncommands:\n  " + "\n  ".join(COMMANDS) +
          "\n\nSee docs/cli.md.")
    _exit(0 if argv else 2)
  if argv[0] == "--version":
    try:
      version = importlib.metadata.version("playlist-sim")
    except importlib.metadata.PackageNotFoundError:
      version = "(not installed: running from the source tree)"
    print(f"playlist-sim {version}")
    _exit(0)
  if argv[0] not in COMMANDS:
    sys.stderr.write(f"playlist-sim: error: unknown command {argv[0]!r}; "
                     f"choose one of {', '.join(COMMANDS)}\n")
    _exit(2)
  _exit(run(argv[0], argv[1:]))


def script_main(name: str) -> None:
  """What `scripts/<name>.py` runs: the subcommand, named as the script."""
  _exit(run(name, sys.argv[1:], prog=sys.argv[0]))
