"""The signals that stop a run: noted during training, acted on at a step boundary.

``caught()`` notes the first of ``SIGNALS`` received while its body runs (the
current block of steps goes on; ``fit`` checks ``Received.signum`` after each
block and epoch), and restores the handlers that were there before, however
the body ends. Outside training the entrypoints' handlers (``experiments/cli.py``)
stop at once.
"""

import contextlib
import os
import signal
import threading

from data import errors

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Received:
  """The first signal received, or None."""

  def __init__(self):
    self.signum: int | None = None

  def note(self, signum, frame) -> None:
    del frame
    self.signum = self.signum or signum


@contextlib.contextmanager
def caught():
  """Yields a ``Received`` noting the signals the body receives (main thread only)."""
  received = Received()
  previous = {}
  if threading.current_thread() is threading.main_thread():
    previous = {s: signal.signal(s, received.note) for s in SIGNALS}
  try:
    yield received
  finally:
    for signum, handler in previous.items():
      signal.signal(signum, handler)


def interrupted(signum: int, epoch: int, checkpoint_epoch: int | None,
                directory: str | None) -> errors.Interrupted:
  """The one-line error of a run stopped by ``signum`` after ``epoch`` (exit 128 + signum)."""
  name = signal.Signals(signum).name
  if checkpoint_epoch:
    kept = (f"the checkpoint of epoch {checkpoint_epoch} in "
            f"{os.path.join(directory, 'checkpoints')} is kept; rerun the same command "
            "to resume from it")
  else:
    kept = "no epoch had finished, so nothing was saved"
  return errors.Interrupted(f"stopped by {name} after epoch {epoch}: {kept}", signum)
