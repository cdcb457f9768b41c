"""Files written so that a killed process never leaves one half-written, and exclusive locks.

Every file the project writes (the decoded-array cache, config.json,
metrics.jsonl, summary.json, sweep results) goes through ``write_atomically``:
the bytes go to a temporary file beside the target, are flushed to disk, and
the temporary file is renamed over the target (``os.replace`` is atomic on
POSIX). Readers see the old file or the new one, never a mix.

``exclusive_lock`` serializes processes that would write the same thing (two
preparing one dataset): an ``fcntl.flock`` on a lock file, which the kernel
releases when its process dies, so a killed process never leaves a stale lock.
"""

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import BinaryIO


def write_atomically(path: str, write: Callable[[BinaryIO], None]) -> None:
  """Calls ``write(f)`` on a temporary binary file beside ``path``, then renames it to ``path``."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise


def write_text(path: str, text: str) -> None:
  write_atomically(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path: str, obj) -> None:
  write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str):
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def write_jsonl(path: str, rows: list) -> None:
  write_text(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))


@contextlib.contextmanager
def exclusive_lock(path: str, blocking: bool = True) -> Iterator[None]:
  """Holds an exclusive lock on the file ``path`` (created if needed) for the ``with`` body.

  Blocks until the lock is free, or with ``blocking=False`` raises
  BlockingIOError at once if another process holds it.
  """
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    yield
  finally:
    os.close(fd)  # releases the lock
