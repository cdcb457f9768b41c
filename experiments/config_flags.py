"""The training flags and the sweep's grid flags, derived from TrainConfig's fields.

Each field with ``flag`` metadata becomes an absl flag of the same name,
default and type, its help followed by its valid range or choices; each
sweepable field (``sweep`` metadata) becomes a plural grid flag
(``--seeds``, ``--l2s``, ``--optimizers``; ``--hidden_sizes_grid`` for the
layer widths, whose values hold commas). ``config_from_flags`` and
``grid_from_flags`` read them back, so a new field is a new flag and, when
sweepable, a new grid flag, with no other line to write. The activation's
parameters are one flag each (``models.activations.PARAMETERS``).
"""

import dataclasses

from absl import flags

from data import errors
from experiments.training.settings import config as config_lib
from experiments.training.settings import settings
from models import activations

FLAGS = flags.FLAGS
HIDDEN_SIZES_GRID = "hidden_sizes_grid"
MULTIPLIERS = "learning_rate_multipliers"  # each optimizer's default α times these


def _help(field: dataclasses.Field) -> str:
  """The field's help, then what its check accepts."""
  check = field.metadata["check"]
  return " ".join(filter(None, (field.metadata["help"], check and check.describe())))


def define_config_flags(config_class=config_lib.TrainConfig, flag_values=FLAGS) -> None:
  """An absl flag for every field of ``config_class`` that has one, and the activation's."""
  defines = {str: flags.DEFINE_string, int: flags.DEFINE_integer, float: flags.DEFINE_float,
             bool: flags.DEFINE_boolean}
  for field in dataclasses.fields(config_class):
    if not field.metadata["flag"]:
      continue
    kind = settings.value_type(field)
    if kind is tuple:
      default = None if field.default is None else [str(v) for v in field.default] or ["none"]
      flags.DEFINE_list(field.name, default, _help(field), flag_values=flag_values)
    else:
      defines[kind](field.name, field.default, _help(field), flag_values=flag_values)
  for name, spec in activations.PARAMETERS.items():
    flags.DEFINE_float(name, None, f"Activation parameter: {spec.meaning} (default "
                       f"{spec.default:g}).", flag_values=flag_values)


def grid_flag(name: str) -> str:
  """The grid flag of setting ``name``: its plural (``seeds``), or ``hidden_sizes_grid``."""
  return HIDDEN_SIZES_GRID if name == "hidden_sizes" else f"{name}s"


def define_grid_flags(config_class=config_lib.TrainConfig, flag_values=FLAGS) -> None:
  """A grid flag for every sweepable field of ``config_class``, and ``--learning_rate_multipliers``."""
  for field in dataclasses.fields(config_class):
    if field.metadata["sweep"] is None:
      continue
    if field.name == "hidden_sizes":
      flags.DEFINE_string(HIDDEN_SIZES_GRID, None, "Layer widths to compare, separated by ';', "
                          "e.g. '64;512,512;none' (none: no hidden layer).",
                          flag_values=flag_values)
      continue
    flags.DEFINE_list(grid_flag(field.name), [], f"Values of --{field.name} to compare (for the "
                      "models or optimizers that have it).", flag_values=flag_values)
    if field.name == "learning_rate":
      flags.DEFINE_list(MULTIPLIERS, [], "Each optimizer's default α times these (instead of "
                        "--learning_rates).", flag_values=flag_values)


def hidden_sizes(values: list[str]) -> tuple[int, ...]:
  """'512,512' as (512, 512), 'none' as () (no hidden layer); UserError naming the flag else.

  An empty value is refused: an unset shell variable must not silently train
  softmax regression.
  """
  if values == ["none"]:
    return ()
  if not values or "" in values:
    raise errors.UserError("hidden_sizes needs widths such as 512,512, or none for no hidden "
                           f"layer (softmax regression), got '{','.join(values)}'")
  try:
    return tuple(int(h) for h in values)
  except ValueError as e:
    raise errors.UserError(f"hidden_sizes must be integers or none, got {','.join(values)}") from e


def config_from_flags(config_class=config_lib.TrainConfig, flag_values=FLAGS, **overrides):
  """The ``config_class`` of the parsed flags, with ``overrides``; not yet resolved.

  A field without a flag of its own keeps its default, except the data
  folders (``cli.py``'s flags) and the activation's parameters.
  """
  values = {}
  for field in dataclasses.fields(config_class):
    if field.name in flag_values and field.name != "activation_params":
      values[field.name] = flag_values[field.name].value
  if values["hidden_sizes"] is not None:
    values["hidden_sizes"] = hidden_sizes(values["hidden_sizes"])
  values["activation_params"] = tuple((name, flag_values[name].value)
                                      for name in activations.PARAMETERS
                                      if flag_values[name].value is not None)
  return config_class(**{**values, **overrides})


def _boolean(value: str) -> bool:
  if value.lower() not in ("true", "false"):
    raise ValueError(value)
  return value.lower() == "true"


def grid_from_flags(config_class=config_lib.TrainConfig, flag_values=FLAGS) -> dict[str, list]:
  """The grid flags that were given, parsed: setting -> values; UserError naming a bad flag."""
  grid = {}
  parsers = {str: (str, "names"), bool: (_boolean, "true or false"), int: (int, "integers"),
             float: (float, "numbers")}
  for field in dataclasses.fields(config_class):
    if field.metadata["sweep"] is None:
      continue
    if field.name == "hidden_sizes":
      if flag_values[HIDDEN_SIZES_GRID].value is not None:
        grid["hidden_sizes"] = [hidden_sizes(shape.split(",") if shape else [])
                                for shape in flag_values[HIDDEN_SIZES_GRID].value.split(";")]
      continue
    parse, kind = parsers[settings.value_type(field)]
    names = [(field.name, grid_flag(field.name))]
    if field.name == "learning_rate":
      names.append(("learning_rate_multiplier", MULTIPLIERS))
    for setting, name in names:
      if flag_values[name].present:
        values = flag_values[name].value
        try:
          grid[setting] = [parse(v) for v in values]
        except ValueError as e:
          raise errors.UserError(f"--{name} must be {kind}, got {','.join(values)}") from e
  return grid


define_config_flags()
