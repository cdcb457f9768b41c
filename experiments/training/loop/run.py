"""A run: K >= 1 models (members) trained together, resolved once from their configs.

Members share the architecture, the optimizer and its schedule, the data and
the update plan; they differ only in their member settings (seed, fold, α,
optimizer hyperparameters, penalties, weight decay, dropout), which live in
each member's state as arrays. A single run is K = 1; k-fold
cross-validation is K = k members that differ in their fold; a sweep is many
runs. Everything a run needs (the model, the update plan, which terms the
compiled step computes, each member's optimizer) is decided here, once.
"""

import dataclasses
from typing import NamedTuple

import flax.linen as nn
import jax
import optax

from data import errors
from data.errors import UserError
from experiments.training.objectives import registry as objectives
from experiments.training.settings import config as config_lib
from experiments.training.settings import model_settings
from experiments.training.settings.config import TrainConfig
from models import networks
from models import optimizers
from models import schedules


class UpdatePlan(NamedTuple):
  """How the updates of a run are laid out, and the learning-rate schedule s(t) (peak 1)."""

  batch_size: int  # B, examples per update
  updates_per_epoch: int  # n_train // B: the remainder is left out of each epoch
  total_steps: int  # T = num_epochs x updates_per_epoch
  block_size: int  # updates per compiled call (one progress-bar move)
  schedule: optax.Schedule


def block_size(num_batches: int, blocks_per_epoch: int = 10) -> int:
  """Largest divisor of ``num_batches`` giving at least ``blocks_per_epoch`` blocks.

  Every block then has the same shape, so one compiled program runs them all.
  """
  limit = max(1, num_batches // blocks_per_epoch)
  return max(d for d in range(1, limit + 1) if num_batches % d == 0)


def num_train_examples(config: TrainConfig, num_examples: int) -> int:
  """How many of the ``num_examples`` training examples one member trains on.

  UserError if the validation split or the folds do not fit.
  """
  if config.folds:
    if config.folds > num_examples:
      raise UserError(
          f"folds must be at most the {num_examples} training examples, got {config.folds}")
    return num_examples - num_examples // config.folds
  if config.validation_size >= num_examples:
    raise UserError(f"validation_size must be less than the {num_examples} training "
                      f"examples, got {config.validation_size}")
  left = num_examples - config.validation_size
  if config.train_size and config.train_size > left:
    raise UserError(f"train_size must be at most the {left} training examples left after "
                    f"the validation split, got {config.train_size}")
  return config.train_size or left


def plan_updates(config: TrainConfig, num_train: int) -> UpdatePlan:
  """The updates of ``config`` over ``num_train`` examples; UserError if none fit."""
  batch_size = config_lib.GD_MODES.get(config.gd_mode)(config, num_train)
  updates = num_train // batch_size
  if updates == 0:
    raise UserError(
        f"batch_size {batch_size} exceeds the {num_train} examples each model trains on")
  total = config.num_epochs * updates
  if total > errors.MAX_COUNT:
    raise UserError(f"num_epochs x updates per epoch must be at most {errors.MAX_COUNT}, "
                      f"got {config.num_epochs} x {updates}")
  schedule = schedules.learning_rate_schedule(
      config.schedule, 1.0, total,
      warmup_steps=max(1, round(config.warmup_epochs * updates)),
      decay_rate=config.step_decay_rate)
  return UpdatePlan(batch_size, updates, total, block_size(updates), schedule)


class Terms(NamedTuple):
  """Which optional terms the compiled step computes: those that some member uses."""

  dropout: bool
  l1: bool
  l2: bool
  weight_decay: bool


@dataclasses.dataclass(frozen=True)
class Run:
  """K resolved member configs with what they share, resolved once."""

  members: tuple[TrainConfig, ...]
  model: nn.Module
  plan: UpdatePlan
  terms: Terms
  input_shape: tuple[int, ...]
  num_classes: int
  objective: object  # objective.Objective: what the model is trained for

  @property
  def config(self) -> TrainConfig:
    """The first member's config: its shared settings are every member's."""
    return self.members[0]

  @property
  def size(self) -> int:
    return len(self.members)

  def optimizer(self, member: TrainConfig) -> optax.GradientTransformation:
    """``member``'s optimizer; every member's has the same structure, so one program runs all."""
    return optimizers.create_optimizer(
        member.optimizer, member.optimizer_form, member.learning_rate, member.hyperparameters,
        self.plan.schedule, member.clip_norm,
        member.weight_decay if self.terms.weight_decay else None)

  @property
  def compiler_options(self) -> dict[str, str]:
    """XLA options of the run's compiled programs.

    A recurrent layer's matmul at each time step, (B, H) x (H, G H), runs
    1.2-1.3x faster on XLA:CPU with Eigen than with YNNPACK (which keeps
    cnn_small's dense layers 15% faster): a recurrent model's programs take
    Eigen for every matmul and convolution.
    """
    if jax.default_backend() == "cpu" and networks.is_recurrent(self.config.model):
      return {"xla_cpu_experimental_ynn_fusion_type": ""}
    return {}

  def discriminator_optimizer(self, member: TrainConfig) -> optax.GradientTransformation:
    """A GAN ``member``'s discriminator optimizer: its own rule and α, the generator's
    hyperparameters where the rules are the same, else the table's."""
    same = member.discriminator_optimizer == member.optimizer
    hyperparameters = optimizers.resolve_hyperparameters(
        member.discriminator_optimizer, member.optimizer_form,
        member.hyperparameters if same else {})
    return optimizers.create_optimizer(
        member.discriminator_optimizer, member.optimizer_form, member.discriminator_learning_rate,
        hyperparameters, self.plan.schedule, member.clip_norm, None)

  def describe_optimizer(self, member: TrainConfig) -> str:
    return optimizers.describe(member.optimizer, member.optimizer_form, member.hyperparameters)


def make_run(members, input_shape: tuple[int, ...], num_classes: int,
             num_examples: int) -> Run:
  """The Run of ``members`` (resolved TrainConfigs) on a split of ``num_examples`` examples.

  UserError if they differ in a shared setting or if the split or the
  updates do not fit the data.
  """
  members = tuple(members)
  if not all(m.resolved for m in members):
    raise ValueError("make_run takes resolved configs: call TrainConfig.resolve() first")
  if not members:
    raise UserError("a run needs at least one model")
  shared = members[0].shared_settings()
  for member in members[1:]:
    differ = [k for k, v in member.shared_settings().items() if v != shared[k]]
    if differ:
      raise UserError(f"models trained together must share {differ[0]}: "
                        f"{shared[differ[0]]!r} and {getattr(member, differ[0])!r}")
  config = members[0]
  plan = plan_updates(config, num_train_examples(config, num_examples))
  terms = Terms(*(any(getattr(m, k) > 0 for m in members) for k in Terms._fields))
  model = model_settings.make_model(config, num_classes, input_shape)
  return Run(members, model, plan, terms, tuple(input_shape), num_classes,
             objectives.of(config, model))
