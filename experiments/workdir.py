"""Atomic writes into the workdir: a killed run never leaves a half-written file."""

import json
import os
import tempfile


def write_text(path: str, text: str) -> None:
  """Writes ``text`` to a temporary file beside ``path``, then renames it over ``path``."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path), suffix=".tmp")
  try:
    with os.fdopen(fd, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise


def write_json(path: str, obj) -> None:
  write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_jsonl(path: str, rows: list) -> None:
  write_text(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
