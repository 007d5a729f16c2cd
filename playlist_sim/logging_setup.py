"""One output setup for every command: quiet by default, everything with -v.

TensorFlow, absl, Gym and Ray print a dozen lines at start (CUDA probes,
oneDNN notes, "Gym has been unmaintained...") that say nothing about the
run. `quiet_environment` runs before TensorFlow is imported: it sets the
environment variables TensorFlow and Ray read and, for the C++ messages that
no variable reaches (absl's "before InitializeLog" lines), `silenced_stderr`
points file descriptor 2 at /dev/null while the heavy modules are imported.
`configure_logging` then sends the package's own messages (the loggers
`simulator`, `user_models`, `agents`, `playlist_sim`, `benchmarks`) to stderr at
INFO as plain lines, and keeps the libraries' Python loggers and warnings at
ERROR. With verbose, nothing is suppressed.
"""

import contextlib
import logging
import os
import sys
import warnings
from typing import Iterator

from absl import logging as absl_logging

__all__ = ["PACKAGE_LOGGERS", "configure_logging", "quiet_environment",
           "silenced_stderr"]

PACKAGE_LOGGERS = ("simulator", "user_models", "agents", "playlist_sim",
                   "benchmarks")
_LIBRARY_LOGGERS = ("tensorflow", "absl", "tf_agents", "ray", "jax", "h5py",
                    "matplotlib", "py.warnings")


def quiet_environment(verbose: bool) -> None:
  """Sets the variables the libraries read at import (call before TF).

  Args:
    verbose: leave the libraries' defaults alone.
  """
  if verbose:
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
  os.environ.setdefault("GLOG_minloglevel", "3")
  os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
  os.environ.setdefault("RAY_DEDUP_LOGS", "1")
  os.environ.setdefault("PYTHONWARNINGS", "ignore")  # Ray's workers too.
  warnings.simplefilter("ignore")
  for package in PACKAGE_LOGGERS:  # Our own warnings still show.
    warnings.filterwarnings("default", module=rf"{package}(\.|$)")


@contextlib.contextmanager
def silenced_stderr(enabled: bool = True) -> Iterator[None]:
  """Points file descriptor 2 at /dev/null inside the block.

  Only the imports of TensorFlow and friends run inside it: their C++
  logging writes to the descriptor directly. An exception raised inside
  still propagates and is reported after the descriptor is restored.

  Args:
    enabled: if False, does nothing.

  Yields:
    None.
  """
  if not enabled:
    yield
    return
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  try:
    os.dup2(devnull, 2)
    yield
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


def configure_logging(verbose: bool) -> None:
  """Routes the package's messages to stderr; quiets the libraries'.

  Args:
    verbose: DEBUG for the package, INFO for the libraries (absl included).
  """
  handler = logging.StreamHandler(sys.stderr)
  handler.setFormatter(logging.Formatter(
      "%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s"))
  for name in PACKAGE_LOGGERS:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
  # Libraries that log through the root logger (gin's file probes do).
  logging.getLogger().setLevel(logging.INFO if verbose else
                               logging.CRITICAL)
  for name in _LIBRARY_LOGGERS:
    logging.getLogger(name).setLevel(logging.INFO if verbose else
                                     logging.ERROR)
  absl_logging.set_verbosity(absl_logging.INFO if verbose else
                             absl_logging.ERROR)
