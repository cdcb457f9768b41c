"""TrainConfig: every setting of one model's training, each defined once with what it means.

Each field is a ``settings.setting`` carrying its help, range or choices,
kind (member, output or shared) and sweep role; the absl flags, the sweep's
grid flags, the member lists, the README's flag table and the range checks
are derived from them (``experiments/training/settings/settings.py``), so adding a
member setting is one field here plus the line that uses it. ``resolve()``
checks every setting and fills in what was left to the tables (the optimizer
form's α and hyperparameters, the model's dropout, the data seed); the
entrypoint resolves once and passes the result down, and the resolved config
is what ``config.json`` and the checkpoints store.
"""

import dataclasses

from data import datasets
from data import errors
from data.errors import UserError
from experiments.training.settings import model_settings
from experiments.training.settings import settings
from experiments.training.settings.settings import GROUP
from experiments.training.settings.settings import MEMBER
from experiments.training.settings.settings import OUTPUT
from experiments.training.settings.settings import Folder
from experiments.training.settings.settings import Integer
from experiments.training.settings.settings import Number
from experiments.training.settings.settings import OneOf
from experiments.training.settings.settings import Widths
from experiments.training.settings.settings import setting
from models import activations
from models import losses
from models import networks
from models import optimizers
from models import recurrent
from models import schedules

# Gradient-descent modes: B, the examples per update, of (config, N training examples).
GD_MODES = errors.Registry("gd_mode", {
    "minibatch": lambda config, num_train: config.batch_size,
    "stochastic": lambda config, num_train: 1,
    "full_batch": lambda config, num_train: num_train,
})


_SYMBOL_HELP = {
    "momentum": "γ of momentum; default 0.9.",
    "b1": "β1: Adam's first-moment decay, textbook Adadelta's D decay.",
    "b2": "β2: second-moment decay of rmsprop, adam, adadelta (Optax's ρ).",
    "eps": "ε of adagrad, adadelta, rmsprop, adam; docs/optimizers.md says where.",
    "initial_accumulator": "Adagrad's G_0; default 0.1 optax, 0 textbook.",
}


def _hyperparameter(name: str):
  # Its range depends on the optimizer: optimizers.resolve_hyperparameters checks it.
  return setting(None, _SYMBOL_HELP[name], kind=MEMBER, sweep=MEMBER)


ONE_NETWORK = ("classification", "reconstruction", "elbo")  # one network, one loss


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """The settings of one model's training (the entrypoints' flags, as data)."""

  # Data.
  dataset: str = setting("mnist", "Dataset (cifar10 where its archive is available).",
                         check=OneOf(datasets.DATASETS))
  validation_size: int = setting(
      5000, "Training images held out for validation (0: none; ignored with --folds).",
      check=Integer(0))
  train_size: int | None = setting(
      None, "Training images used: the first N after the validation split in the seeded order "
      "(default: all of them); a subset for quick runs.", check=Integer(1))
  folds: int = setting(
      0, "k-fold cross-validation: k >= 2 models, each validating on its own fold of the "
      "training split (0: one model and a holdout split).", check=Integer(0),
      objectives=ONE_NETWORK)
  fold: int = setting(0, "The fold this model validates on (0 <= fold < folds).", kind=MEMBER,
                      check=Integer(0), flag=False)
  data_seed: int | None = setting(
      None, "Seeds the validation split or folds and the shared batch order (default: --seed).",
      check=Integer(0, errors.MAX_SEED))
  standardize: bool = setting(
      False, "Standardize pixels with the training mean and std, (x - mean) / std, else x / 255.",
      objectives=("classification",))  # the others fix their pixel range
  # Model.
  model: str = setting(
      "cnn", "Network: mlp (784-512-512-10 ReLU), cnn (conv5x5x32-pool-conv5x5x64-pool-1024-"
      "dropout-10), cnn_small (Flax example CNN), cifar_convnet (the course's CIFAR-10 ConvNet: "
      "conv3x3x12-ReLU-pool2x2-FC), rnn (Elman), lstm, gru (recurrent, 128 units, reading the "
      "image row by row).", check=OneOf(networks.MODELS), sweep=GROUP)
  # Architecture; None: the model's own (models/networks.py); a model refuses one it lacks.
  hidden_sizes: tuple[int, ...] | None = setting(
      None, "Hidden layer widths: mlp's (default 512,512; none: no hidden layer, softmax "
      "regression), or the stacked layers of rnn, lstm, gru (default 128).", check=Widths(),
      sweep=GROUP)
  activation: str | None = setting(
      None, "Hidden activation of mlp (default relu) and rnn (default tanh), any of the "
      "activation table's (prelu learns its α, rrelu draws its slopes in training; mlp only).",
      check=OneOf(activations.ACTIVATIONS), sweep=GROUP)
  activation_params: tuple[tuple[str, float], ...] | None = setting(
      (), "The activation's (parameter, value) pairs; one flag per parameter.", flag=False)
  batch_norm: bool | None = setting(
      False, "Batch normalization between each hidden layer's linear map and its activation "
      "(that layer's bias dropped; feed-forward models).",
      sweep=GROUP)
  bidirectional: bool | None = setting(
      False, "Recurrent models: each layer reads the sequence both ways, its states "
      "concatenated.", sweep=GROUP)
  sequence: str | None = setting(
      None, "How recurrent models read an image: rows (default: 28 steps of 28 pixels), "
      "pixels (784 steps of one pixel; slow), permuted_pixels (the same in one fixed random "
      "order; slow).", check=OneOf(recurrent.SEQUENCES), sweep=GROUP)
  code_size: int | None = setting(
      None, "The code's width in ae and conv_ae (default 64).", check=Integer(1), sweep=GROUP)
  latent_size: int | None = setting(
      None, "The latent z's size in vae (default 20) and dcgan (default 100).",
      check=Integer(1), sweep=GROUP)
  # Objectives other than classification (experiments/training/objectives/registry.py).
  reconstruction_loss: str | None = setting(
      None, "The autoencoders' loss on pixels x/255 in [0, 1]: bce (default; binary cross-"
      "entropy summed over pixels, of the sigmoid reconstruction) or mse (per pixel).",
      check=OneOf(losses.RECONSTRUCTION_LOSSES), sweep=GROUP, objectives=("reconstruction",))
  discriminator_optimizer: str | None = setting(
      None, "The GAN discriminator's optimizer (default: --optimizer, the generator's).",
      check=OneOf(optimizers.OPTIMIZERS), objectives=("adversarial",))
  discriminator_learning_rate: float | None = setting(
      None, "The GAN discriminator's step size α (default: --learning_rate).", kind=MEMBER,
      check=Number(0.0, low_open=True), sweep=MEMBER, objectives=("adversarial",))
  scorer_workdir: str | None = setting(
      None, "The classifier that scores a GAN's or a VAE's samples: a workdir of "
      "experiments.mnist (default /tmp/perceptrax/mnist, the main job's; else cnn_small is "
      "trained once into ~/.cache/perceptrax/scorer).", kind=OUTPUT, check=Folder(),
      objectives=("elbo", "adversarial"))
  # Optimizer; None: the table's default for the form (models/optimizers.py).
  optimizer: str = setting("adam", "Optimizer (the optimizer table's rules).",
                           check=OneOf(optimizers.OPTIMIZERS), sweep=GROUP)
  optimizer_form: str = setting(
      "optax", "optax (Optax's alias) or textbook (the course's exact rule): the optimizer "
      "table.",
      check=OneOf(optimizers.FORMS))
  learning_rate: float | None = setting(
      None, "(Peak) step size α; default: the optimizer table's for the form.", kind=MEMBER,
      check=Number(0.0, low_open=True), sweep=MEMBER)
  momentum: float | None = _hyperparameter("momentum")
  b1: float | None = _hyperparameter("b1")
  b2: float | None = _hyperparameter("b2")
  eps: float | None = _hyperparameter("eps")
  initial_accumulator: float | None = _hyperparameter("initial_accumulator")
  clip_norm: float | None = setting(
      None, "Rescale the gradient to at most this global norm, g min(1, c / ‖g‖) (default: no "
      "clipping).", check=Number(0.0, low_open=True))
  schedule: str = setting(
      "cosine", "α_t over the T updates: constant; step (× --step_decay_rate at T/2 and 3T/4); "
      "cosine, α (1 + cos(π t / T)) / 2; warmup_cosine (linear from 0 over --warmup_epochs, "
      "then cosine).",
                          check=OneOf(schedules.SCHEDULES))
  warmup_epochs: float = setting(1.0, "Warmup length of warmup_cosine, in epochs.",
                                 check=Number(0.0, low_open=True))
  step_decay_rate: float = setting(0.1, "Factor of the step schedule at 1/2 and 3/4 of training.",
                                   check=Number(0.0, 1.0, low_open=True, high_open=False))
  # Regularization.
  l1: float = setting(0.0, "λ1 of the L1 penalty λ1 Σ|w| on the weights.", kind=MEMBER,
                      check=Number(0.0), sweep=MEMBER, objectives=ONE_NETWORK)
  l2: float = setting(0.0, "λ2 of the L2 penalty (λ2/2) Σ w² on the weights.", kind=MEMBER,
                      check=Number(0.0), sweep=MEMBER, objectives=ONE_NETWORK)
  weight_decay: float = setting(
      0.0, "λ of decoupled weight decay (AdamW style): Δθ -= α λ θ on the weights.",
      kind=MEMBER, check=Number(0.0), sweep=MEMBER, objectives=ONE_NETWORK)
  dropout: float | None = setting(
      None, "Dropout rate p before the output layer (and after every MLP hidden layer); "
      "default: the model's (0.5 for cnn, 0 for the others).", kind=MEMBER,
      check=Number(0.0, 1.0), sweep=MEMBER,
      objectives=("classification",))  # the other networks have no dropout
  # Updates.
  gd_mode: str = setting(
      "minibatch", "Examples per update: minibatch (--batch_size), stochastic (1), full_batch "
      "(all N: one update per epoch).", check=OneOf(GD_MODES), objectives=ONE_NETWORK)
  batch_size: int = setting(128, "Examples per update in minibatch mode.", check=Integer(1))
  num_epochs: int = setting(10, "Passes over the training split.", check=Integer(1))
  chunk_size: int = setting(
      1000, "Most examples per forward pass when evaluating and in full-batch gradients.",
      check=Integer(1))
  seed: int = setting(
      0, "Seeds initialization, dropout and the batch order (and the split unless --data_seed).",
      kind=MEMBER, check=Integer(0, errors.MAX_SEED), sweep=MEMBER)
  shared_batches: bool = setting(
      True, "Batch order from --data_seed, shared by models trained together (else each "
      "model's own --seed).")
  patience: int = setting(
      0, "Early stopping: stop after this many epochs without a lower validation loss and keep "
      "the best epoch's model (0: train all epochs).", check=Integer(0), objectives=ONE_NETWORK)
  # Outputs.
  checkpoint_every_epoch: bool = setting(
      True, "Save a checkpoint after every epoch, so an interrupted run loses at most one "
      "(off: only at the end, and when stopping early).", kind=OUTPUT)
  plots: bool = setting(True, "Write PNG figures beside the JSON results.", kind=OUTPUT)
  tensorboard: bool = setting(
      True, "Write TensorBoard event files in WORKDIR/tensorboard/.", kind=OUTPUT)
  progress: bool = setting(True, "Show progress bars.", kind=OUTPUT)
  archive_dir: str | None = setting(
      None, "Folder with one subfolder per dataset holding its official archives.", kind=OUTPUT,
      check=Folder(), flag=False)  # cli.py's data flag, shared with the other entrypoints
  tfds_data_dir: str | None = setting(
      None, "Where tfds keeps prepared datasets.", kind=OUTPUT, flag=False)  # cli.py's, likewise

  @property
  def hyperparameters(self) -> dict[str, float]:
    """The optimizer hyperparameters this config sets (all its form takes, once resolved)."""
    return {k: getattr(self, k) for k in optimizers.SYMBOLS if getattr(self, k) is not None}

  def shared_settings(self) -> dict:
    """The settings every model trained together with this one must share."""
    shared = settings.names(type(self), of_kind=settings.SHARED)
    return {k: v for k, v in dataclasses.asdict(self).items() if k in shared}

  def training_settings(self) -> dict:
    """Everything but the output settings: what a checkpoint must have been trained with."""
    outputs = settings.names(type(self), of_kind=OUTPUT)
    return {k: v for k, v in dataclasses.asdict(self).items() if k not in outputs}

  @property
  def resolved(self) -> bool:
    """Whether ``resolve`` made this config (the table defaults are filled in)."""
    return None not in (self.learning_rate, self.dropout, self.data_seed)

  def resolve(self) -> "TrainConfig":
    """This config checked, with every default filled in; UserError on the first bad setting."""
    _check(self)
    spec = optimizers.form(self.optimizer, self.optimizer_form)
    hyperparameters = optimizers.resolve_hyperparameters(
        self.optimizer, self.optimizer_form, self.hyperparameters)
    model = networks.MODELS.get(self.model)
    learning_rate = float(spec.default_learning_rate if self.learning_rate is None
                          else self.learning_rate)
    by_model = model_settings.resolve(self)
    discriminator = by_model["discriminator_optimizer"]
    if discriminator is not None and self.discriminator_learning_rate is None:
      discriminator_learning_rate = (learning_rate if discriminator == self.optimizer else float(
          optimizers.form(discriminator, self.optimizer_form).default_learning_rate))
    else:
      discriminator_learning_rate = self.discriminator_learning_rate
    return dataclasses.replace(
        self,
        learning_rate=learning_rate,
        **by_model,
        discriminator_learning_rate=discriminator_learning_rate,
        **{k: hyperparameters.get(k) for k in optimizers.SYMBOLS},
        dropout=float(model.default_dropout if self.dropout is None else self.dropout),
        data_seed=self.seed if self.data_seed is None else self.data_seed,
        validation_size=0 if self.folds else self.validation_size,
    )


MEMBER_SETTINGS = settings.names(TrainConfig, of_kind=MEMBER)
OUTPUT_SETTINGS = settings.names(TrainConfig, of_kind=OUTPUT)


def _check(c: TrainConfig) -> None:
  """UserError naming the first setting of ``c`` out of its range or choices, or at odds
  with another."""
  settings.check_each(c)
  if c.folds == 1:
    raise UserError("folds must be 0 (a holdout split) or an integer in "
                    f"[2, {errors.MAX_COUNT}], got 1")
  errors.check_integer("fold", c.fold, 0, max(c.folds - 1, 0))
  model_settings.check(c)
  if c.train_size and c.folds:
    raise UserError("--train_size takes a subset after a holdout split: it does not apply "
                    "with --folds")
  if c.patience and not (c.validation_size or c.folds):
    raise UserError("patience needs a validation split: set --validation_size > 0 or --folds")
  if c.batch_norm and not (c.gd_mode == "minibatch" and 2 <= c.batch_size <= c.chunk_size):
    raise UserError(
        "batch_norm needs minibatch descent with 2 <= batch_size <= chunk_size "
        f"(got {c.gd_mode}, batch_size {c.batch_size}, chunk_size {c.chunk_size}): "
        "its statistics are over one update's whole batch")


def to_json(config: TrainConfig) -> dict:
  return dataclasses.asdict(config)


def from_json(saved: dict) -> TrainConfig:
  """The TrainConfig ``to_json`` gave (JSON lists back to tuples); unknown keys are ignored."""
  known = {f.name for f in dataclasses.fields(TrainConfig)}
  tuples = lambda v: tuple(tuples(x) for x in v) if isinstance(v, list) else v  # noqa: E731
  return TrainConfig(**{k: tuples(v) for k, v in saved.items() if k in known})
