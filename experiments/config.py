"""The training configuration: a frozen dataclass, validated before any work starts."""

import dataclasses
import json

from data import datasets
from experiments import steps
from models import activations
from models import networks
from models import optimizers
from models import regularizers
from models import schedules


class ConfigError(ValueError):
  """An invalid setting; the message is one line naming the valid choices or range."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything that defines a training run (the entrypoint's flags, as data)."""

  dataset: str = "mnist"
  model: str = "cnn"
  optimizer: str = "adam"
  optimizer_form: str = "optax"  # optax | textbook
  learning_rate: float | None = None  # None: the optimizer table's default for the form.
  # Optimizer hyperparameters; None: the form's default (models/optimizers.py).
  momentum: float | None = None
  b1: float | None = None
  b2: float | None = None
  eps: float | None = None
  initial_accumulator: float | None = None
  clip_norm: float | None = None  # clip gradients to this global norm
  schedule: str = "cosine"  # of the learning rate: constant | step | cosine | warmup_cosine
  warmup_epochs: float = 1.0  # warmup_cosine only
  step_decay_rate: float = 0.1  # step only: α times this at 1/2 and 3/4 of training
  gd_mode: str = "minibatch"  # minibatch | stochastic (B = 1) | full_batch (B = N)
  batch_size: int = 128  # minibatch only
  num_epochs: int = 10
  seed: int = 0
  validation_size: int = 5000
  standardize: bool = False
  hidden_sizes: tuple[int, ...] = (512, 512)  # mlp only
  activation: str = "relu"  # mlp only
  # Regularization and normalization (models/regularizers.py, models/networks.py).
  dropout: float | None = None  # None: the model's own (0.5 for cnn, 0 for the others)
  batch_norm: bool = False
  l1: float = 0.0  # λ1 of the penalty λ1 Σ|w| added to the loss
  l2: float = 0.0  # λ2 of the penalty (λ2/2) Σ w² added to the loss
  weight_decay: float = 0.0  # λ of decoupled weight decay, -α λ θ per step
  patience: int = 0  # stop after this many epochs without a better validation loss; 0: never
  chunk_size: int = 1000  # most examples per forward pass: evaluation, full-batch gradients
  # Outputs: settings that do not change the trained model.
  checkpoint_every_epoch: bool = False  # else only at the end (and when stopping early)
  plots: bool = True
  archive_dir: str | None = None
  tfds_data_dir: str | None = None
  progress: bool = True

  @property
  def resolved_learning_rate(self) -> float:
    if self.learning_rate is None:
      return optimizers.form(self.optimizer, self.optimizer_form).default_learning_rate
    return self.learning_rate

  def optimizer_hyperparameters(self) -> dict[str, float]:
    """The form's hyperparameters: its defaults overridden by the ones set here."""
    given = {name: getattr(self, name) for name in optimizers.SYMBOLS}
    return optimizers.resolve_hyperparameters(self.optimizer, self.optimizer_form, given)

  def model_kwargs(self) -> dict:
    """The settings the chosen model takes."""
    kwargs = {"batch_norm": self.batch_norm}
    if self.dropout is not None:
      kwargs["dropout"] = self.dropout
    if self.model == "mlp":
      kwargs.update(hidden_sizes=self.hidden_sizes, activation=self.activation)
    return kwargs

  @property
  def penalty(self) -> regularizers.Penalty:
    return regularizers.Penalty(self.l1, self.l2)

  def differs_in_training(self, other: "TrainConfig") -> list[str]:
    """The fields, other than the output settings, whose values differ from ``other``'s."""
    return [f.name for f in dataclasses.fields(self)
            if f.name not in OUTPUT_SETTINGS and getattr(self, f.name) != getattr(other, f.name)]

  def validate(self) -> "TrainConfig":
    """Returns self, or raises ConfigError on the first invalid setting."""
    _choice("dataset", self.dataset, datasets.DATASETS)
    _choice("model", self.model, networks.MODELS)
    _choice("optimizer", self.optimizer, optimizers.OPTIMIZERS)
    _choice("optimizer_form", self.optimizer_form, optimizers.FORMS)
    _choice("activation", self.activation, activations.ACTIVATIONS)
    _choice("schedule", self.schedule, schedules.SCHEDULES)
    _choice("gd_mode", self.gd_mode, steps.GD_MODES)
    if self.learning_rate is not None and not self.learning_rate > 0:
      raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
    try:
      self.optimizer_hyperparameters()
    except ValueError as e:
      raise ConfigError(str(e)) from e
    if self.clip_norm is not None and not self.clip_norm > 0:
      raise ConfigError(f"clip_norm must be > 0, got {self.clip_norm}")
    if self.schedule == "warmup_cosine" and not 0 < self.warmup_epochs < self.num_epochs:
      raise ConfigError(
          f"warmup_epochs must be in (0, num_epochs = {self.num_epochs}), got {self.warmup_epochs}")
    if self.schedule == "step" and not 0 < self.step_decay_rate <= 1:
      raise ConfigError(f"step_decay_rate must be in (0, 1], got {self.step_decay_rate}")
    for name in ("batch_size", "num_epochs", "chunk_size"):
      if getattr(self, name) < 1:
        raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
    if self.validation_size < 0:
      raise ConfigError(f"validation_size must be >= 0, got {self.validation_size}")
    if min(self.hidden_sizes, default=1) < 1:
      raise ConfigError(f"hidden_sizes must be positive integers, got {self.hidden_sizes}")
    if self.dropout is not None and not 0 <= self.dropout < 1:
      raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
    for name in ("l1", "l2", "weight_decay", "patience"):
      if not getattr(self, name) >= 0:
        raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
    if self.patience and not self.validation_size:
      raise ConfigError("patience needs a validation split: set --validation_size > 0")
    if self.batch_norm and not (
        self.gd_mode == "minibatch" and 2 <= self.batch_size <= self.chunk_size):
      raise ConfigError(
          "batch_norm needs minibatch descent with 2 <= batch_size <= chunk_size "
          f"(got {self.gd_mode}, batch_size {self.batch_size}, chunk_size {self.chunk_size}): "
          "its statistics are over one update's whole batch")
    return self


def load_config(path: str) -> TrainConfig:
  """The TrainConfig a workdir's config.json holds (JSON lists back to tuples)."""
  with open(path) as f:
    saved = json.load(f)
  fields = {f.name for f in dataclasses.fields(TrainConfig)}
  saved = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in fields}
  return TrainConfig(**saved)


# Fields that change what a run writes, not what it trains (a resumed run may change them).
OUTPUT_SETTINGS = ("checkpoint_every_epoch", "plots", "archive_dir", "tfds_data_dir", "progress")


def _choice(name, value, choices):
  if value not in choices:
    raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
