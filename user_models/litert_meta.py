"""`user_model.meta.json`: what a LiteRT user model is, checked, not trusted.

The quantiser writes one meta file beside its flatbuffers: the model kind,
the user-embedding size, the SWM's state and candidate widths, and a
SHA-256 of every flatbuffer it wrote (`"sha256": {file name: hex}`).
`read_meta` checks the file's types before anything uses them, and
`check_flatbuffer` checks it against the flatbuffer it describes: the
content hash, and the user vocabulary against the embedding table's rows.
A meta that lies (a smaller `user_vocab` would serve every listener as the
unknown user; a larger one crashes inside LiteRT) is a `UserModelLoadError`
naming the field.
"""

import hashlib
import json
import os
import re

from user_models.base import UserModelLoadError
from user_models.keras_models import CWM_NAME, SWM_NAME

__all__ = ["META_FILE", "check_flatbuffer", "file_sha256", "meta_path",
           "read_meta", "record_sha256"]

META_FILE = "user_model.meta.json"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def meta_path(model_path: str | os.PathLike) -> str:
  """The meta file beside a flatbuffer."""
  return os.path.join(os.path.dirname(os.fspath(model_path)), META_FILE)


def file_sha256(path: str | os.PathLike) -> str:
  """Hex SHA-256 of a file's bytes."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def record_sha256(meta: dict, path: str | os.PathLike) -> dict:
  """Adds `path`'s hash to `meta["sha256"]` (by file name); returns meta."""
  meta.setdefault("sha256", {})[os.path.basename(os.fspath(path))] = (
      file_sha256(path))
  return meta


def _field_error(path: str, field: str, problem: str) -> UserModelLoadError:
  return UserModelLoadError(
      f"{path}: field {field!r} {problem}; rerun "
      "scripts/quantize_user_model.py to write a matching meta file")


def _count(meta: dict, path: str, field: str, minimum: int) -> int:
  value = meta.get(field)
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    raise _field_error(path, field, f"must be an integer >= {minimum}, got "
                       f"{value!r}")
  return value


def read_meta(model_path: str | os.PathLike) -> dict:
  """Reads and type-checks the meta file beside `model_path`.

  Args:
    model_path: a `.tflite` written by the quantiser.

  Returns:
    The meta dict (kind, user_vocab, sha256, and for an SWM state_units and
    candidate_dim; training_split if recorded).

  Raises:
    UserModelLoadError: if the file is missing, not JSON, or a field is
      missing or of the wrong type (the message names the field).
  """
  path = meta_path(model_path)
  try:
    with open(path) as f:
      meta = json.load(f)
  except OSError as e:
    raise UserModelLoadError(
        f"LiteRT user model {os.fspath(model_path)!r} needs {META_FILE} "
        f"beside it (written by scripts/quantize_user_model.py): {e}") from e
  except ValueError as e:
    raise UserModelLoadError(f"{path} is not valid JSON ({e}); rerun "
                             "scripts/quantize_user_model.py") from e
  if not isinstance(meta, dict):
    raise UserModelLoadError(f"{path} must hold a JSON object, got "
                             f"{type(meta).__name__}")
  if meta.get("kind") not in (CWM_NAME, SWM_NAME):
    raise _field_error(path, "kind", f"must be {CWM_NAME!r} or "
                       f"{SWM_NAME!r}, got {meta.get('kind')!r}")
  _count(meta, path, "user_vocab", 0)
  if meta["kind"] == SWM_NAME:
    _count(meta, path, "state_units", 1)
    _count(meta, path, "candidate_dim", 1)
  hashes = meta.get("sha256")
  if not isinstance(hashes, dict) or not all(
      isinstance(k, str) and isinstance(v, str) and _HEX64.fullmatch(v)
      for k, v in hashes.items()):
    raise _field_error(path, "sha256", "must map each .tflite file name to "
                       f"its hex SHA-256, got {hashes!r}")
  split = meta.get("training_split")
  if split is not None and not isinstance(split, dict):
    raise _field_error(path, "training_split", "must be an object or null")
  return meta


def check_flatbuffer(meta: dict, model_path: str | os.PathLike,
                     embedding_rows: int) -> None:
  """Checks a flatbuffer against its meta.

  Args:
    meta: from `read_meta`.
    model_path: the flatbuffer (a CWM, an SWM head or step).
    embedding_rows: rows of its user-embedding table (0 if none), from
      `LiteRTRunner.embedding_rows`; None to skip (the SWM step has none).

  Raises:
    UserModelLoadError: if the hash is missing or differs, or `user_vocab`
      differs from the embedding's rows.
  """
  path = meta_path(model_path)
  name = os.path.basename(os.fspath(model_path))
  expected = meta["sha256"].get(name)
  if expected is None:
    raise _field_error(path, "sha256", f"has no hash of {name!r}")
  if file_sha256(model_path) != expected:
    raise _field_error(path, "sha256", f"does not match {name!r} (the file "
                       "changed after quantisation, or the meta belongs to "
                       "another model)")
  if embedding_rows is not None and embedding_rows != meta["user_vocab"]:
    raise _field_error(path, "user_vocab", f"is {meta['user_vocab']}, but "
                       f"{name!r} has a user embedding of {embedding_rows} "
                       "rows")
