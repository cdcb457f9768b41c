"""Progress bars on stderr: redrawn in place on a terminal; in a log file, a line every 10 s.

Log lines go above a bar on a terminal (``experiments/cli.py``). When stderr
is not a terminal (a log file, CI, a cluster job) each state is a line of its
own, written at most every 10 s and at the end, so the log stays readable and
no log line is glued to a bar.
"""

import sys

from tqdm import tqdm


def bar(**kwargs) -> tqdm:
  """A tqdm bar on stderr (``kwargs``: tqdm's), drawn as the module says."""
  if sys.stderr.isatty():
    return tqdm(**kwargs)
  return tqdm(file=_Lines(), mininterval=10.0, **kwargs)


class _Lines:
  """A bar's output as whole lines: carriage returns and blank redraws dropped."""

  def write(self, text: str) -> None:
    text = text.replace("\r", "").rstrip()
    if text:
      sys.stderr.write(text + "\n")

  def flush(self) -> None:
    sys.stderr.flush()
