"""Atomic file writes: a file appears whole under its name, or not at all."""

import contextlib
import json
import math
import os
import tempfile
from typing import Any, Iterator

__all__ = ["atomic_path", "write_json", "ensure_writable_dir"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
  """Yields a temporary path beside `path`; renames it to `path` on success.

  The temporary file lives in the same folder (so the rename is atomic on
  POSIX) and is removed if the body raises.

  Args:
    path: the final file path.

  Yields:
    The temporary path to write to.
  """
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.",
                             suffix=".tmp", dir=folder)
  os.close(fd)
  # mkstemp makes the file owner-only; give it the usual umask permissions.
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(tmp, 0o666 & ~umask)
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_json(path: str | os.PathLike, obj: Any) -> None:
  """Writes `obj` as indented JSON, atomically.

  NaN and infinities become `null`: the bare `NaN`/`Infinity` Python writes
  are not JSON, and other readers reject them. A figure that could not be
  computed is absent, never a number.

  Raises:
    TypeError: if `obj` holds something JSON cannot represent.
  """
  text = json.dumps(_finite(obj), indent=2, sort_keys=True, allow_nan=False)
  with atomic_path(path) as tmp:
    with open(tmp, "w") as f:
      f.write(text + "\n")


def _finite(obj: Any) -> Any:
  """`obj` with NumPy values as Python ones and non-finite floats as None."""
  if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
    obj = obj.tolist()  # NumPy scalars and arrays.
  if isinstance(obj, float):
    return obj if math.isfinite(obj) else None
  if isinstance(obj, dict):
    return {k: _finite(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [_finite(v) for v in obj]
  if obj is None or isinstance(obj, (str, int, bool)):
    return obj
  raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def ensure_writable_dir(path: str | os.PathLike) -> str:
  """Creates `path` if needed and checks that it is a writable folder.

  Args:
    path: a folder path.

  Returns:
    The absolute path.

  Raises:
    ValueError: if the path is a file or cannot be written to.
  """
  path = os.path.abspath(os.fspath(path))
  if os.path.exists(path) and not os.path.isdir(path):
    raise ValueError(f"root_dir {path!r} exists and is not a folder")
  try:
    os.makedirs(path, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
      pass
  except OSError as e:
    raise ValueError(f"root_dir {path!r} is not writable: {e}") from e
  return path
