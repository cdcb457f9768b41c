"""Starting scripts.serve as users do, on a free port, and waiting for its address."""

import os
import re
import selectors
import signal
import subprocess
import sys
import time

from tests.helpers import COMPILATION_CACHE
from tests.helpers import ROOT
from tests.helpers import USERS_COMPILER


class Served:
  """A running ``python -m scripts.serve``: its process and address (compiled as users' are:
  the server compiles its model for 7 batch sizes before it answers)."""

  def __init__(self, *flags, timeout: float = 120):
    self.process = subprocess.Popen(
        [sys.executable, "-m", "scripts.serve", "--port=0", *flags], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "JAX_COMPILATION_CACHE_DIR": COMPILATION_CACHE, **USERS_COMPILER})
    line = _read_line(self.process.stdout, timeout)
    found = re.search(r"at (http://[\d.]+:\d+)/", line or "")
    if not found:
      self.process.kill()
      raise AssertionError(f"the server did not start: {line!r} {self.process.stderr.read()}")
    self.url = found.group(1)

  def stop(self, sig=signal.SIGTERM, timeout: float = 60) -> tuple[int, str, str]:
    """Sends ``sig``; the exit status, stdout and stderr."""
    if self.process.poll() is None:
      self.process.send_signal(sig)
    out, err = self.process.communicate(timeout=timeout)
    return self.process.returncode, out, err


def _read_line(stream, timeout: float) -> str | None:
  selector = selectors.DefaultSelector()
  selector.register(stream, selectors.EVENT_READ)
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if selector.select(timeout=deadline - time.monotonic()):
      return stream.readline()
  return None
