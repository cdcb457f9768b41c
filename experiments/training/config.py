"""TrainConfig: every setting of one model's training, as a frozen dataclass resolved once.

``config.resolve()`` checks every setting (one ``ConfigError`` line naming the
setting and its valid range or choices) and fills what was left to the tables:
the optimizer form's default α and hyperparameters, the model's default
dropout, the data seed. The resolved config is what ``config.json`` and the
checkpoints store, so passing a default explicitly changes nothing.

The settings fall in three kinds:
  member settings (``MEMBER_SETTINGS``): may differ between models trained
      together in one compiled program (seed, fold, α, optimizer
      hyperparameters, penalties, weight decay, dropout);
  output settings (``OUTPUT_SETTINGS``): change what a run writes, not what it
      trains, so a resumed run may change them;
  the rest: shared by every model of a run (architecture, optimizer, data,
      update plan).
"""

import dataclasses
import math

from data import datasets
from models import activations
from models import networks
from models import optimizers
from models import registry
from models import schedules


class ConfigError(registry.UserError):
  """An invalid setting; the message is one line naming the valid choices or range."""


GD_MODES = registry.Registry("gd_mode", {
    "minibatch": "batch_size examples per update",
    "stochastic": "one example per update",
    "full_batch": "all training examples per update",
})
MAX_SEED = 2**32 - 1  # JAX keys hold 32 bits of a seed: larger seeds would collide.
MAX_COUNT = 2**31 - 1  # step and example counters are int32 in the compiled programs.


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """The settings of one model's training (the entrypoints' flags, as data)."""

  # Data.
  dataset: str = "mnist"
  validation_size: int = 5000  # holdout split carved from train (ignored with folds)
  folds: int = 0  # k-fold cross-validation: 0 for a holdout split, else k >= 2
  fold: int = 0  # the fold this model validates on (0 <= fold < folds)
  data_seed: int | None = None  # seeds the split (and shared batch order); None: seed
  standardize: bool = False
  # Model.
  model: str = "cnn"
  hidden_sizes: tuple[int, ...] | None = (512, 512)  # mlp only
  activation: str | None = "relu"  # mlp only
  activation_params: tuple[tuple[str, float], ...] | None = ()  # (name, value) pairs; mlp only
  batch_norm: bool = False
  dropout: float | None = None  # None: the model's default (0.5 for cnn, 0 for the others)
  # Optimizer; None: the table's default for the form (models/optimizers.py).
  optimizer: str = "adam"
  optimizer_form: str = "optax"
  learning_rate: float | None = None
  momentum: float | None = None
  b1: float | None = None
  b2: float | None = None
  eps: float | None = None
  initial_accumulator: float | None = None
  clip_norm: float | None = None
  schedule: str = "cosine"
  warmup_epochs: float = 1.0  # warmup_cosine only
  step_decay_rate: float = 0.1  # step only
  # Regularization.
  l1: float = 0.0  # λ1 of the penalty λ1 Σ|w|
  l2: float = 0.0  # λ2 of the penalty (λ2/2) Σ w²
  weight_decay: float = 0.0  # λ of decoupled weight decay
  # Updates.
  gd_mode: str = "minibatch"
  batch_size: int = 128  # minibatch only
  num_epochs: int = 10
  chunk_size: int = 1000  # most examples per forward pass (evaluation, full-batch gradients)
  seed: int = 0  # initialization, dropout, and the batch order unless shared
  shared_batches: bool = True  # batch order from data_seed (models trained together share it)
  patience: int = 0  # early stopping after this many epochs without a lower validation loss
  # Outputs.
  checkpoint_every_epoch: bool = False
  plots: bool = True
  tensorboard: bool = True  # TensorBoard event files in the run directory
  progress: bool = True
  archive_dir: str | None = None
  tfds_data_dir: str | None = None

  @property
  def hyperparameters(self) -> dict[str, float]:
    """The optimizer hyperparameters this config sets (all its form takes, once resolved)."""
    return {k: getattr(self, k) for k in optimizers.SYMBOLS if getattr(self, k) is not None}

  def shared_settings(self) -> dict:
    """The settings every model trained together with this one must share."""
    return {k: v for k, v in dataclasses.asdict(self).items()
            if k not in MEMBER_SETTINGS and k not in OUTPUT_SETTINGS}

  def training_settings(self) -> dict:
    """Everything but the output settings: what a checkpoint must have been trained with."""
    return {k: v for k, v in dataclasses.asdict(self).items() if k not in OUTPUT_SETTINGS}

  def resolve(self) -> "TrainConfig":
    """This config checked, with every default filled in; ConfigError on the first bad setting."""
    _check(self)
    spec = optimizers.form(self.optimizer, self.optimizer_form)
    hyperparameters = optimizers.resolve_hyperparameters(
        self.optimizer, self.optimizer_form, self.hyperparameters)
    model = networks.MODELS.get(self.model)
    mlp_only = {s: getattr(self, s) if networks.takes(self.model, s) else None
                for s in ("hidden_sizes", "activation", "activation_params")}
    if mlp_only["hidden_sizes"] is not None:
      mlp_only["hidden_sizes"] = tuple(int(h) for h in mlp_only["hidden_sizes"])
    if mlp_only["activation"] is not None:  # the parameters its activation takes, all of them
      values = activations.ACTIVATIONS.get(self.activation).values(
          **dict(self.activation_params or ()))
      mlp_only["activation_params"] = tuple((k, float(v)) for k, v in values.items())
    return dataclasses.replace(
        self,
        learning_rate=float(spec.default_learning_rate if self.learning_rate is None
                            else self.learning_rate),
        **{k: hyperparameters.get(k) for k in optimizers.SYMBOLS},
        dropout=float(model.default_dropout if self.dropout is None else self.dropout),
        data_seed=self.seed if self.data_seed is None else self.data_seed,
        validation_size=0 if self.folds else self.validation_size,
        **mlp_only,
    )


MEMBER_SETTINGS = ("seed", "fold", "learning_rate", *optimizers.SYMBOLS, "l1", "l2",
                   "weight_decay", "dropout")
OUTPUT_SETTINGS = ("checkpoint_every_epoch", "plots", "tensorboard", "progress", "archive_dir",
                   "tfds_data_dir")


def _check(c: TrainConfig) -> None:
  """ConfigError naming the first setting of ``c`` out of its range or choices."""
  datasets.DATASETS.get(c.dataset)
  networks.MODELS.get(c.model)
  optimizers.OPTIMIZERS.get(c.optimizer)
  optimizers.FORMS.get(c.optimizer_form)
  schedules.SCHEDULES.get(c.schedule)
  GD_MODES.get(c.gd_mode)
  if c.activation is not None and networks.takes(c.model, "activation"):
    _check_activation(c.activation, dict(c.activation_params or ()))
  check_integer("seed", c.seed, 0, MAX_SEED)
  if c.data_seed is not None:
    check_integer("data_seed", c.data_seed, 0, MAX_SEED)
  for name in ("batch_size", "num_epochs", "chunk_size"):
    check_integer(name, getattr(c, name), 1, MAX_COUNT)
  check_integer("validation_size", c.validation_size, 0, MAX_COUNT)
  check_integer("patience", c.patience, 0, MAX_COUNT)
  if c.folds != 0:
    check_integer("folds", c.folds, 2, MAX_COUNT, "0 (a holdout split) or ")
  check_integer("fold", c.fold, 0, max(c.folds - 1, 0))
  if c.hidden_sizes is not None and networks.takes(c.model, "hidden_sizes"):
    for width in c.hidden_sizes:
      check_integer("hidden_sizes", width, 1, MAX_COUNT)
  if c.learning_rate is not None:
    check_number("learning_rate", c.learning_rate, low=0.0, low_open=True)
  if c.clip_norm is not None:
    check_number("clip_norm", c.clip_norm, low=0.0, low_open=True)
  for name in ("l1", "l2", "weight_decay"):
    check_number(name, getattr(c, name), low=0.0)
  if c.dropout is not None:
    check_number("dropout", c.dropout, low=0.0, high=1.0)
  if c.schedule == "warmup_cosine":
    check_number("warmup_epochs", c.warmup_epochs, low=0.0, high=c.num_epochs, low_open=True)
  if c.schedule == "step":
    check_number("step_decay_rate", c.step_decay_rate, low=0.0, high=1.0, low_open=True,
            high_open=False)
  if c.patience and not (c.validation_size or c.folds):
    raise ConfigError("patience needs a validation split: set --validation_size > 0 or --folds")
  if c.batch_norm and not (c.gd_mode == "minibatch" and 2 <= c.batch_size <= c.chunk_size):
    raise ConfigError(
        "batch_norm needs minibatch descent with 2 <= batch_size <= chunk_size "
        f"(got {c.gd_mode}, batch_size {c.batch_size}, chunk_size {c.chunk_size}): "
        "its statistics are over one update's whole batch")


def _check_activation(name: str, params: dict) -> None:
  """The activation's name and the parameters it takes (others belong to other activations)."""
  values = activations.ACTIVATIONS.get(name).values(**params)
  for param, value in params.items():
    spec = activations.PARAMETERS.get(param)
    if spec is None:
      raise ConfigError(f"unknown activation parameter {param!r}; choose one of "
                        f"{', '.join(activations.PARAMETERS)}")
    check_number(param, value, low=spec.low, low_open=spec.low_open)
  if name == "rrelu" and not values["rrelu_lower"] <= values["rrelu_upper"]:
    raise ConfigError(f"rrelu_lower must be <= rrelu_upper, got {values['rrelu_lower']} > "
                      f"{values['rrelu_upper']}")
  if name == "hardtanh" and not values["hardtanh_min"] < values["hardtanh_max"]:
    raise ConfigError(f"hardtanh_min must be < hardtanh_max, got {values['hardtanh_min']} >= "
                      f"{values['hardtanh_max']}")


def check_integer(name: str, value, low: int, high: int, prefix: str = "") -> None:
  if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
    raise ConfigError(f"{name} must be {prefix}an integer in [{low}, {high}], got {value}")


def check_number(name: str, value, low: float, high: float = math.inf, low_open: bool = False,
            high_open: bool = True) -> None:
  """ConfigError unless ``value`` is a finite number in the interval (open where stated)."""
  ok = isinstance(value, (int, float)) and math.isfinite(value)
  ok = ok and (value > low if low_open else value >= low)
  ok = ok and (value < high if high_open else value <= high)
  if not ok:
    interval = (("(" if low_open else "[") + f"{low:g}, {high:g}" + (")" if high_open else "]"))
    raise ConfigError(f"{name} must be a finite number in {interval}, got {value}")


def to_json(config: TrainConfig) -> dict:
  return dataclasses.asdict(config)


def from_json(saved: dict) -> TrainConfig:
  """The TrainConfig ``to_json`` gave (JSON lists back to tuples); unknown keys are ignored."""
  fields = {f.name for f in dataclasses.fields(TrainConfig)}
  tuples = lambda v: tuple(tuples(x) for x in v) if isinstance(v, list) else v  # noqa: E731
  return TrainConfig(**{k: tuples(v) for k, v in saved.items() if k in fields})

