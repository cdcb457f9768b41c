"""Which settings a model takes: those of its architecture and of its training objective.

``OBJECTIVES`` is the one table of what a model is trained for: each objective's
models and the entrypoint that trains it; a setting that only some objectives
have says which in its field (``config.py``, ``objectives``); the objectives'
math is ``experiments/training/objectives/``.

A model lacking a setting refuses it in one line that names the models having it
(``check``); ``resolve`` fills each setting the model has with its own default from
the model registry (``models/networks.py``) and sets the others to None, so a
resolved config states exactly what its model was trained with.
"""

import dataclasses
from typing import NamedTuple

import flax.linen as nn

from data import errors
from data.errors import UserError
from models import activations
from models import networks
from models import recurrent


def check(c) -> None:
  """UserError for a setting of the config ``c`` that its model does not take."""
  _check_architecture(c)
  _check_objective(c)


def resolve(c) -> dict:
  """The model-dependent settings of a checked config ``c``, defaults filled in."""
  return {**_objective_settings(c), **_architecture(c)}


def _lacks(setting: str, value) -> bool:
  """Whether ``value`` leaves ``setting`` unset, as a model that lacks it must."""
  return value is None or value is False or (setting == "activation_params" and not value)


def _models(having) -> str:
  """The models for which ``having(model)`` holds, listed for a message."""
  return ", ".join(m for m in networks.MODELS if having(m))


class ObjectiveEntry(NamedTuple):
  """What the project knows of an objective outside its math (its settings are the fields
  whose ``objectives`` metadata names it: ``config.py``)."""

  entrypoint: str  # the command that trains its models
  models: tuple[str, ...]  # the models trained for it (classification: every other model)


OBJECTIVES = errors.Registry("objective", {
    "classification": ObjectiveEntry("experiments.mnist", ()),
    "reconstruction": ObjectiveEntry("experiments.autoencoder", ("ae", "conv_ae")),
    "elbo": ObjectiveEntry("experiments.autoencoder", ("vae",)),
    "adversarial": ObjectiveEntry("experiments.gan", ("dcgan",)),
})


def objective_of(model: str) -> str:
  """The objective model ``model`` is trained for; UserError for an unknown model."""
  networks.MODELS.get(model)
  return next((name for name, entry in OBJECTIVES.items() if model in entry.models),
              "classification")


def _check_objective(c) -> None:
  """UserError for a setting given that the model's objective does not have."""
  objective = objective_of(c.model)
  for field in dataclasses.fields(c):
    owners = field.metadata["objectives"]
    if owners and objective not in owners and getattr(c, field.name) != field.default:
      having = _models(lambda m, owners=owners: objective_of(m) in owners)
      raise UserError(f"--{field.name} does not apply to {c.model} (trained for {objective}): "
                      f"it is a setting of {having}")


def _objective_settings(c) -> dict:
  """The objective's own settings, their defaults filled in; None where the objective has none."""
  objective = objective_of(c.model)
  adversarial = objective == "adversarial"
  return {
      "reconstruction_loss": (c.reconstruction_loss or "bce") if objective == "reconstruction"
                             else None,
      "discriminator_optimizer": (c.discriminator_optimizer or c.optimizer) if adversarial
                                 else None,
  }


def _check_architecture(c) -> None:
  """UserError for an architecture setting the model lacks, or one it cannot take."""
  for setting in networks.ARCHITECTURE_SETTINGS:
    if not networks.takes(c.model, setting) and not _lacks(setting, getattr(c, setting)):
      owners = _models(lambda m, setting=setting: networks.takes(m, setting))
      what = (f"--{', --'.join(k for k, _ in c.activation_params)} (activation parameters)"
              if setting == "activation_params" else f"--{setting}")
      raise UserError(f"{what} does not apply to {c.model}: it is a setting of {owners}")
  if networks.is_recurrent(c.model):
    if c.hidden_sizes == ():
      raise UserError(f"{c.model} needs at least one layer: --hidden_sizes such as 128 or 128,128")
    if c.activation in recurrent.NOT_RECURRENT:
      raise UserError(f"{c.model} cannot take the activation {c.activation} (a learned or random "
                      "slope); choose another of the activation table")
  if networks.takes(c.model, "activation"):
    _check_activation(c.activation or networks.default(c.model, "activation"),
                      dict(c.activation_params or ()))


def _architecture(c) -> dict:
  """The architecture settings of a checked ``c``: its own, else its model's; None for those
  the model lacks. The activation's parameters are all listed, defaults included."""
  resolved = {}
  for setting in networks.ARCHITECTURE_SETTINGS:
    value = getattr(c, setting)
    if not networks.takes(c.model, setting):
      resolved[setting] = None
    elif setting != "activation_params":
      resolved[setting] = networks.default(c.model, setting) if value is None else value
  if resolved["hidden_sizes"] is not None:
    resolved["hidden_sizes"] = tuple(int(h) for h in resolved["hidden_sizes"])
  if resolved["activation"] is not None:  # the parameters its activation takes, all of them
    values = activations.ACTIVATIONS.get(resolved["activation"]).values(
        **dict(c.activation_params or ()))
    resolved["activation_params"] = tuple((k, float(v)) for k, v in values.items())
  return resolved


def _check_activation(name: str, params: dict) -> None:
  """The activation's name and the parameters it takes (others belong to other activations)."""
  values = activations.ACTIVATIONS.get(name).values(**params)
  for param, value in params.items():
    spec = activations.PARAMETERS.get(param)
    if spec is None:
      raise UserError(f"unknown activation parameter {param!r}; choose one of "
                      f"{', '.join(activations.PARAMETERS)}")
    errors.check_number(param, value, low=spec.low, low_open=spec.low_open)
  if name == "rrelu" and not values["rrelu_lower"] <= values["rrelu_upper"]:
    raise UserError(f"rrelu_lower must be <= rrelu_upper, got {values['rrelu_lower']} > "
                    f"{values['rrelu_upper']}")
  if name == "hardtanh" and not values["hardtanh_min"] < values["hardtanh_max"]:
    raise UserError(f"hardtanh_min must be < hardtanh_max, got {values['hardtanh_min']} >= "
                    f"{values['hardtanh_max']}")


def make_model(config, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
  """The network of a resolved ``config``, with the architecture settings its model takes (a
  generator, the images' shape)."""
  settings = {s: getattr(config, s) for s in networks.ARCHITECTURE_SETTINGS
              if networks.takes(config.model, s)}
  if networks.takes(config.model, "image_shape"):
    settings["image_shape"] = tuple(input_shape)
  return networks.create_model(config.model, num_classes, **settings)
