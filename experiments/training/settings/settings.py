"""Settings that carry their own metadata: a dataclass field declared once.

A field is declared with ``setting(default, help, ...)``, which records in
the field's metadata everything derived from it elsewhere:

  help     the flag's help and the README's flag table (``scripts.doc_tables``);
  check    its valid range or choices (``Integer``, ``Number``, ``OneOf``,
           ``Widths``), checked by ``check_each`` with one ``UserError`` line;
  kind     ``MEMBER``: may differ between models trained together in one
           compiled program (seed, fold, α, hyperparameters, penalties,
           weight decay, dropout); ``OUTPUT``: changes what a run writes, not
           what it trains, so a resumed run may change it; ``SHARED``: the
           rest, the same for every model of a run;
  sweep    ``GROUP`` (shapes the compiled program: a sweep trains one group
           after another) or ``MEMBER`` (varies within a group); None: not
           sweepable. Each sweepable setting gets a plural grid flag;
  flag     False for a setting with no flag of its own (``fold``: set by
           ``--folds``; ``activation_params``: one flag per parameter).

``experiments/config_flags.py`` turns the fields into absl flags and grid
flags; ``experiments/training/settings/config.py`` declares TrainConfig with them.
"""

import dataclasses
import math
import types
from typing import NamedTuple

from data import errors

SHARED, MEMBER, OUTPUT = "shared", "member", "output"
GROUP = "group"  # a sweep kind: settings that shape the compiled program


class Integer(NamedTuple):
  """An integer in [low, high]."""

  low: int
  high: int = errors.MAX_COUNT

  def check(self, name: str, value) -> None:
    errors.check_integer(name, value, self.low, self.high)

  def describe(self) -> str:
    return f"An integer in [{self.low}, {self.high}]."


class Number(NamedTuple):
  """A finite number in an interval, open where stated."""

  low: float
  high: float = math.inf
  low_open: bool = False
  high_open: bool = True

  def check(self, name: str, value) -> None:
    errors.check_number(name, value, self.low, self.high, self.low_open, self.high_open)

  def describe(self) -> str:
    return (("In (" if self.low_open else "In [") + f"{self.low:g}, {self.high:g}"
            + (")." if self.high_open else "]."))


class OneOf(NamedTuple):
  """A name in a table (``errors.Registry``)."""

  table: errors.Registry

  def check(self, name: str, value) -> None:
    del name  # the table's error names its kind
    self.table.get(value)

  def describe(self) -> str:
    return f"Choices: {' | '.join(self.table)}."


class Folder(NamedTuple):
  """An existing folder."""

  def check(self, name: str, value) -> None:
    errors.check_folder(name, value)

  def describe(self) -> str:
    return "An existing folder."


class Widths(NamedTuple):
  """Layer widths, each an integer in [1, MAX_COUNT]."""

  def check(self, name: str, value) -> None:
    for width in value:
      errors.check_integer(name, width, 1, errors.MAX_COUNT)

  def describe(self) -> str:
    return ""  # the help says it


def setting(default, help: str, *, kind: str = SHARED, check=None,  # help: dataclasses' word
            sweep: str | None = None, flag: bool = True, objectives: tuple[str, ...] = ()):
  """A dataclass field carrying its metadata (see the module docstring); ``objectives``: the
  objectives whose models take it, when not all do (a model trained for another refuses it)."""
  return dataclasses.field(default=default, metadata={
      "help": help, "kind": kind, "check": check, "sweep": sweep, "flag": flag,
      "objectives": objectives})


def names(config_class, *, of_kind: str | None = None,
          sweep: str | None = None) -> tuple[str, ...]:
  """The settings of ``config_class`` of a kind, or sweepable as ``sweep``, in field order."""
  return tuple(f.name for f in dataclasses.fields(config_class)
               if (of_kind is None or f.metadata["kind"] == of_kind)
               and (sweep is None or f.metadata["sweep"] == sweep))


def value_type(field: dataclasses.Field) -> type:
  """The type of a field's values: ``float`` for ``float | None``, ``tuple`` for widths."""
  annotation = field.type
  if isinstance(annotation, types.UnionType):
    annotation = next(a for a in annotation.__args__ if a is not type(None))
  return getattr(annotation, "__origin__", annotation)


def check_each(config) -> None:
  """UserError naming the first setting of ``config`` out of its own range or choices."""
  for field in dataclasses.fields(config):
    value = getattr(config, field.name)
    if field.metadata["check"] is not None and value is not None:
      field.metadata["check"].check(field.name, value)
