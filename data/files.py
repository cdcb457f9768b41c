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
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

from data.errors import UserError


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
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's files are private; these are ordinary files
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise


def current_umask() -> int:
  """The process's umask (read by setting it and back)."""
  mask = os.umask(0)
  os.umask(mask)
  return mask


def write_text(path: str, text: str) -> None:
  write_atomically(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path: str, obj) -> None:
  write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str):
  """The JSON value in ``path``; UserError naming the file if it cannot be read or parsed."""
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except OSError as e:
    raise UserError(f"cannot read {path}: {e.strerror}") from None
  except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
    raise UserError(f"{path} is damaged ({str(e).splitlines()[0]}); delete it to start "
                    "over") from None


def write_jsonl(path: str, rows: list) -> None:
  write_text(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))


@contextlib.contextmanager
def exclusive_lock(path: str, blocking: bool = True) -> Iterator[None]:
  """Holds an exclusive lock on the file ``path`` (created if needed) for the ``with`` body.

  Blocks until the lock is free, or with ``blocking=False`` raises
  BlockingIOError at once if another process holds it. The holder's pid is
  written into the file (``lock_holder`` reads it).
  """
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    yield
  finally:
    os.close(fd)  # releases the lock


def lock_holder(path: str) -> str:
  """The pid written into a lock file, or "unknown"."""
  try:
    with open(path, encoding="utf-8") as f:
      return f.read().strip() or "unknown"
  except OSError:
    return "unknown"


@contextlib.contextmanager
def workdir_lock(directory: str, process: int = 0) -> Iterator[None]:
  """One run per workdir: UserError naming the holder's pid if another holds it.

  A run over several processes takes one lock per process (``.lock`` for
  process 0, ``.lock.process<i>`` for the others), so a second launch of any
  process on the same workdir is refused.
  """
  path = os.path.join(directory, ".lock" if process == 0 else f".lock.process{process}")
  try:
    with exclusive_lock(path, blocking=False):
      yield
  except BlockingIOError:
    raise UserError(f"{directory} is in use by another process (pid {lock_holder(path)}); "
                    "wait for it to finish, or use another --workdir") from None


def check_writable(directory: str) -> None:
  """Creates ``directory`` if needed and writes a probe file in it; UserError naming why not."""
  if not directory:
    raise UserError("a directory to write to must be given, got ''")
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise UserError(f"cannot write to {directory}: it is a file, not a directory")
  try:
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryFile(dir=directory):
      pass
  except OSError as e:
    raise UserError(f"cannot write to {directory}: {e.strerror or e}") from None


def read_verified(path: str) -> bytes:
  """The bytes of ``path`` if they match the SHA-256 in ``path.sha256``.

  Raises ValueError (what is wrong, one line) if either file is missing or
  unreadable or the digest differs.
  """
  try:
    with open(path, "rb") as f:
      data = f.read()
    with open(path + ".sha256", encoding="utf-8") as f:
      expected = f.read().strip()
  except OSError as e:
    raise ValueError(f"cannot read {e.filename}: {e.strerror}") from None
  if hashlib.sha256(data).hexdigest() != expected:
    raise ValueError("its bytes do not match its SHA-256 digest")
  return data


def write_verified(path: str, data: bytes) -> None:
  """Writes ``data`` and then its SHA-256 digest beside it (``path.sha256``), both atomically."""
  write_atomically(path, lambda f: f.write(data))
  write_text(path + ".sha256", hashlib.sha256(data).hexdigest() + "\n")
