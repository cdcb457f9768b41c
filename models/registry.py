"""Tables by name, and the error type for anything a user can fix.

Every table the project looks names up in (models, optimizers, activations,
schedules, datasets) is a ``Registry``: its ``get`` raises one ``UserError``
line naming the valid choices, so a typo in a flag never becomes a traceback.
"""

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class UserError(Exception):
  """Something the user can fix (a flag, a file, a setting); reported as one line, exit 1.

  Every other exception is a bug and keeps its traceback.
  """


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
