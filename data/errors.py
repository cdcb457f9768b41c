"""What a user can fix: ``UserError``, tables whose lookups explain themselves, range checks.

Every table the project looks names up in (datasets, models, optimizers,
activations, schedules) is a ``Registry``: its ``get`` raises one
``UserError`` line naming the valid choices. ``check_integer`` and
``check_number`` do the same for a value outside its range. The entrypoints
print a ``UserError`` as one line and exit with status 1; every other
exception is a bug and keeps its traceback. ``data/``, ``models/`` and
``experiments/`` all import this module, and it imports nothing of theirs.
"""

import math
import os
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Generic
from typing import TypeVar

T = TypeVar("T")

MAX_COUNT = 2**31 - 1  # step and example counters are int32 in the compiled programs.
MAX_SEED = 2**32 - 1  # JAX keys hold 32 bits of a seed: larger seeds would collide.
FLOAT32_TINY = 1.1754943508222875e-38  # the smallest normal float32 (XLA:CPU flushes smaller to 0)
FLOAT32_MAX = 3.4028234663852886e38


class UserError(Exception):
  """Something the user can fix (a flag, a file, a setting); reported as one line, exit 1."""

  exit_status = 1


class Interrupted(BaseException):
  """A signal (Ctrl-C, SIGTERM, SIGHUP) stopped the work; the message says what was kept.

  A ``BaseException``, as ``KeyboardInterrupt`` is, so that no ``except
  Exception`` on the way swallows it. The process exits with 128 + the
  signal's number, as the shell reports a process the signal killed.
  """

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.signum = signum
    self.exit_status = 128 + signum


class Registry(Generic[T]):
  """An ordered, read-only name -> entry table whose lookups explain their errors."""

  def __init__(self, kind: str, entries: Mapping[str, T]):
    self.kind = kind
    self._entries = dict(entries)

  def get(self, name: str) -> T:
    """The entry ``name``; UserError "unknown <kind> 'name'; choose one of ..." if absent."""
    if name not in self._entries:
      raise UserError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self)}")
    return self._entries[name]

  def check(self, name: str) -> str:
    """``name`` itself, after ``get`` has checked it."""
    self.get(name)
    return name

  def items(self):
    return self._entries.items()

  def __contains__(self, name: object) -> bool:
    return name in self._entries

  def __iter__(self) -> Iterator[str]:
    return iter(self._entries)

  def __len__(self) -> int:
    return len(self._entries)


def check_integer(name: str, value, low: int, high: int, prefix: str = "") -> None:
  """UserError unless ``value`` is an integer (not a bool) in [low, high]."""
  if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
    raise UserError(f"{name} must be {prefix}an integer in [{low}, {high}], got {value}")


def check_folder(name: str, value: str) -> None:
  """UserError unless ``value`` names an existing folder (a mistyped path is bad input)."""
  if not os.path.isdir(value):
    what = "a file" if os.path.exists(value) else "no such folder"
    raise UserError(f"{name} must name an existing folder, got {value} ({what})")


def check_number(name: str, value, low: float, high: float = math.inf, low_open: bool = False,
                 high_open: bool = True) -> None:
  """UserError unless ``value`` is a finite number in the interval (open where stated).

  The computations are float32, so a value must also keep its meaning
  there: 0, or a magnitude in [FLOAT32_TINY, FLOAT32_MAX] (1e-300 would
  round to 0, 1e39 overflow to infinity).
  """
  ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
  ok = ok and (value > low if low_open else value >= low)
  ok = ok and (value < high if high_open else value <= high)
  if not ok:
    interval = (("(" if low_open else "[") + f"{low:g}, {high:g}" + (")" if high_open else "]"))
    raise UserError(f"{name} must be a finite number in {interval}, got {value}")
  if value and not FLOAT32_TINY <= abs(value) <= FLOAT32_MAX:
    raise UserError(f"{name} must be 0 or of magnitude {FLOAT32_TINY:.3g} to {FLOAT32_MAX:.3g} "
                    f"to keep its value in float32, got {value:g}")
