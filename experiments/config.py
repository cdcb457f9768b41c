"""The training configuration: a frozen dataclass, validated before any work starts."""

import dataclasses

from data import datasets
from models import activations
from models import networks
from models import optimizers


class ConfigError(ValueError):
  """An invalid setting; the message is one line naming the valid choices or range."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything that defines a training run (the entrypoint's flags, as data)."""

  dataset: str = "mnist"
  model: str = "cnn"
  optimizer: str = "adam"
  learning_rate: float | None = None  # None: the optimizer table's default.
  schedule: str = "cosine"  # of the learning rate over all steps: constant | cosine
  batch_size: int = 128
  num_epochs: int = 10
  seed: int = 0
  validation_size: int = 5000
  standardize: bool = False
  hidden_sizes: tuple[int, ...] = (512, 512)  # mlp only
  activation: str = "relu"  # mlp only
  dropout_rate: float = 0.5  # cnn only
  eval_batch_size: int = 1000
  archive_dir: str | None = None
  tfds_data_dir: str | None = None
  progress: bool = True

  @property
  def resolved_learning_rate(self) -> float:
    if self.learning_rate is None:
      return optimizers.default_learning_rate(self.optimizer)
    return self.learning_rate

  def model_kwargs(self) -> dict:
    """The settings the chosen model takes."""
    if self.model == "mlp":
      return {"hidden_sizes": self.hidden_sizes, "activation": self.activation}
    if self.model == "cnn":
      return {"dropout_rate": self.dropout_rate}
    return {}

  def validate(self) -> "TrainConfig":
    """Returns self, or raises ConfigError on the first invalid setting."""
    _choice("dataset", self.dataset, datasets.DATASETS)
    _choice("model", self.model, networks.MODELS)
    _choice("optimizer", self.optimizer, optimizers.OPTIMIZERS)
    _choice("activation", self.activation, activations.ACTIVATIONS)
    _choice("schedule", self.schedule, optimizers.SCHEDULES)
    if self.learning_rate is not None and not self.learning_rate > 0:
      raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
    for name in ("batch_size", "num_epochs", "eval_batch_size"):
      if getattr(self, name) < 1:
        raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
    if self.validation_size < 0:
      raise ConfigError(f"validation_size must be >= 0, got {self.validation_size}")
    if not self.hidden_sizes or min(self.hidden_sizes) < 1:
      raise ConfigError(f"hidden_sizes must be positive integers, got {self.hidden_sizes}")
    if not 0 <= self.dropout_rate < 1:
      raise ConfigError(f"dropout_rate must be in [0, 1), got {self.dropout_rate}")
    return self


def _choice(name, value, choices):
  if value not in choices:
    raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
