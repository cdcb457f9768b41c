"""A sweep's grid: values per setting, expanded into groups of models to train together.

The sweepable settings are TrainConfig's fields with ``sweep`` metadata
(``config.py``). Those that shape the compiled program (``GROUP_SETTINGS``:
the model and its architecture, the optimizer) split the grid into groups,
trained one after another; the member settings (``MEMBER_GRID``: α or its
multiplier, optimizer hyperparameters, penalties, weight decay, dropout,
seed) vary within a group, whose members train together (vmapped) or one
after another. A setting applies to the models or optimizers that
have it: the hidden sizes to the MLP, γ to momentum, and so on; a grid over
a setting that none of them has is an error. Folds (``TrainConfig.folds``)
add k members per configuration, one per fold.
"""

import dataclasses
import itertools

from data import errors
from data.errors import UserError
from experiments.training.settings import settings
from experiments.training.settings.config import TrainConfig
from models import networks
from models import optimizers

GROUP_SETTINGS = settings.names(TrainConfig, sweep=settings.GROUP)
MEMBER_GRID = tuple(name for setting in settings.names(TrainConfig, sweep=settings.MEMBER)
                    for name in ((setting, "learning_rate_multiplier")
                                 if setting == "learning_rate" else (setting,)))
SETTINGS = (*GROUP_SETTINGS, *MEMBER_GRID)


def _takers(setting: str, groups: list[dict], form: str) -> list[str]:
  """The models or optimizers of ``groups`` that have ``setting``."""
  if setting in networks.ARCHITECTURE_SETTINGS:
    return sorted({g["model"] for g in groups if networks.takes(g["model"], setting)})
  if setting in optimizers.SYMBOLS:
    return sorted({g["optimizer"] for g in groups
                   if setting in optimizers.form(g["optimizer"], form).hyperparameters})
  return ["all"]


def check(grid: dict[str, list]) -> None:
  """UserError for an unknown setting, an empty grid, a repeated or non-positive α."""
  for name, values in grid.items():
    if name not in SETTINGS:
      raise UserError(f"cannot sweep {name!r}; sweepable: {', '.join(SETTINGS)}")
    if not values:
      raise UserError(f"empty grid: the {name} grid needs at least one value")
    if len(set(values)) < len(values):
      raise UserError(f"the {name} grid repeats a value: {values}")
  if "learning_rate" in grid and "learning_rate_multiplier" in grid:
    raise UserError("give learning rates or learning rate multipliers, not both")
  for name in ("learning_rate", "learning_rate_multiplier"):
    for value in grid.get(name, []):
      errors.check_number(name, value, 0.0, low_open=True)


def expand(base: TrainConfig, grid: dict[str, list]) -> list[list[TrainConfig]]:
  """The grid's groups, each a list of resolved member configs (folds included).

  A setting not in ``grid`` keeps ``base``'s value (``base`` as the user gave
  it, not resolved); like a grid, a hyperparameter of ``base`` applies only
  to the optimizers that take it. Every model shares ``base``'s data seed.
  UserError (one line) on an invalid grid or member, before anything is
  loaded or compiled.
  """
  check(grid)
  base = dataclasses.replace(base, data_seed=base.seed if base.data_seed is None
                             else base.data_seed)
  axes = {s: grid.get(s, [getattr(base, s)]) for s in GROUP_SETTINGS}
  groups = []
  for values in itertools.product(*axes.values()):
    group = dict(zip(axes, values))
    for setting in networks.ARCHITECTURE_SETTINGS:  # a setting the model lacks: one value
      if setting in group and not networks.takes(group["model"], setting):
        group[setting] = None
    if group not in groups:
      groups.append(group)
  for setting in (*networks.ARCHITECTURE_SETTINGS, *optimizers.SYMBOLS):
    if setting in grid and not _takers(setting, groups, base.optimizer_form):
      owners = ", ".join(sorted({g["model" if setting in networks.ARCHITECTURE_SETTINGS
                                   else "optimizer"] for g in groups}))
      raise UserError(f"the {setting} grid applies to none of {owners}: none has {setting}")
  return [_members(_group_base(base, group), grid) for group in groups]


def _group_base(base: TrainConfig, group: dict) -> TrainConfig:
  """``base`` with a group's settings, without the hyperparameters its optimizer does not take."""
  taken = optimizers.form(group["optimizer"], base.optimizer_form).hyperparameters
  return dataclasses.replace(base, **group,
                             **{k: None for k in optimizers.SYMBOLS if k not in taken})


def _members(base: TrainConfig, grid: dict[str, list]) -> list[TrainConfig]:
  """The members of one group: the product of its member-setting grids, then folds."""
  spec = optimizers.form(base.optimizer, base.optimizer_form)
  axes = {}
  for name in MEMBER_GRID:
    if name in grid and (name not in optimizers.SYMBOLS or name in spec.hyperparameters):
      axes[name] = grid[name]
  members = []
  for values in itertools.product(*axes.values()):
    settings = dict(zip(axes, values))
    multiplier = settings.pop("learning_rate_multiplier", None)
    if multiplier is not None:  # rounded so that 0.05 x 3 reads 0.15
      settings["learning_rate"] = float(f"{spec.default_learning_rate * multiplier:.12g}")
    member = dataclasses.replace(base, **settings)
    for fold in range(member.folds) if member.folds else [0]:
      members.append(dataclasses.replace(member, fold=fold).resolve())
  return members


def swept(grid: dict[str, list], folds: int) -> list[str]:
  """The settings that vary across a sweep's models, as result columns (α for multipliers)."""
  names = [("learning_rate" if n == "learning_rate_multiplier" else n) for n in grid]
  return [n for n in SETTINGS if n in names] + (["fold"] if folds else [])


def configuration(config: TrainConfig, columns: list[str]) -> dict:
  """The values of ``columns`` in ``config`` (what identifies a sweep's configuration)."""
  return {c: getattr(config, c) for c in columns}


def label(config: TrainConfig, columns: list[str]) -> str:
  """A short description of ``config`` by the swept ``columns``, e.g. "adam, l2 = 1e-05"."""
  parts = []
  for c in columns:
    value = getattr(config, c)
    if c in ("optimizer", "model"):
      parts.append(str(value))
    elif c == "hidden_sizes":
      parts.append("hidden " + ("-".join(map(str, value)) if value else "none"))
    else:
      symbol = {"learning_rate": "α", **optimizers.SYMBOLS}.get(c, c)
      parts.append(f"{symbol} = {value:g}" if isinstance(value, float) else f"{symbol} = {value}")
  return ", ".join(parts)


def to_json(grid: dict[str, list]) -> dict:
  return {k: [list(v) if isinstance(v, tuple) else v for v in values]
          for k, values in grid.items()}

