"""Many models in one compiled program: K members trained together under ``jax.vmap``.

Members share the architecture, the optimizer (name, form, schedule), the
chunk size and the data on the device. Each has its own seed (initialization,
dropout and, with ``shared_batches=False``, its own shuffling, all derived as
in ``train.train_and_evaluate``) and its own α and hyperparameters, which live
in its optimizer state (``optax.inject_hyperparams``), so the stacked
TrainState is one pytree with a leading axis of size K and one ``jit`` of the
vmapped ``steps.train_steps`` advances all of them. The same code with K = 1,
called once per member, is the sequential strategy.
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from experiments import steps
from models import metrics
from models import networks
from models import optimizers
from models import regularizers


class Member(NamedTuple):
  """One model of a group: its seed, peak step size and optimizer hyperparameters."""

  seed: int
  learning_rate: float
  hyperparameters: dict[str, float]


def init_states(
    model: nn.Module,
    input_shape: tuple[int, ...],
    members: list[Member],
    make_tx: Callable[[Member], optax.GradientTransformation],
    tx: optax.GradientTransformation | None = None,
    penalty: regularizers.Penalty = regularizers.Penalty(),
) -> steps.TrainState:
  """The members' TrainStates stacked along a leading axis of size K.

  Member k's optimizer state comes from ``make_tx(member_k)``; the stacked
  state carries ``tx`` (default: the first member's), whose update reads α
  and the hyperparameters from each member's state. Pass the same ``tx`` to
  every call whose states should run through one compiled program.
  """
  states = []
  for member in members:
    init_key, dropout_key, _ = steps.seed_keys(member.seed)
    variables = networks.init_variables(model, init_key, input_shape)
    states.append(
        steps.create_train_state(model, variables, make_tx(member), dropout_key, penalty))
  leaves = [(s.step, s.params, s.opt_state, s.batch_stats, s.dropout_key) for s in states]
  step, params, opt_state, batch_stats, dropout_key = jax.tree.map(
      lambda *xs: jnp.stack(xs), *leaves)
  return states[0].replace(step=step, params=params, opt_state=opt_state,
                           batch_stats=batch_stats, dropout_key=dropout_key,
                           tx=tx or states[0].tx)


def optimizer_factory(
    optimizer: str,
    form_name: str,
    schedule: optax.Schedule | None,
    clip_norm: float | None,
    weight_decay: float | None = None,
) -> Callable[[Member], optax.GradientTransformation]:
  """make_tx for ``init_states``: the member's α and hyperparameters in a shared structure."""

  def make_tx(member: Member) -> optax.GradientTransformation:
    return optimizers.create_optimizer(optimizer, form_name, member.learning_rate,
                                       member.hyperparameters, schedule, clip_norm, weight_decay)

  return make_tx


def epoch_batches(
    shuffle_keys: jax.Array, epoch: int, num_examples: int, batch_size: int
) -> jax.Array:
  """Each member's batches of ``epoch``: (K, num_batches, batch_size) from K keys."""
  keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(shuffle_keys, epoch)
  return jax.vmap(steps.epoch_batches, in_axes=(0, None, None))(keys, num_examples, batch_size)


def train_steps(
    state: steps.TrainState,
    images: jax.Array,
    labels: jax.Array,
    batch_indices: jax.Array,
    chunk_size: int | None = None,
    shared_batches: bool = True,
) -> tuple[steps.TrainState, metrics.Counts]:
  """``steps.train_steps`` for all K members: batch_indices is (S, B), or (K, S, B)."""
  one = functools.partial(steps.train_steps, chunk_size=chunk_size)
  in_axes = (0, None, None, None if shared_batches else 0)
  return jax.vmap(one, in_axes=in_axes)(state, images, labels, batch_indices)


def evaluate(
    variables: dict, apply_fn, images: jax.Array, labels: jax.Array, batch_size: int
) -> metrics.Counts:
  """``steps.evaluate`` for all K members' stacked variables; counts have shape (K,)."""
  one = functools.partial(steps.evaluate, apply_fn=apply_fn, batch_size=batch_size)
  return jax.vmap(lambda v: one(v, images=images, labels=labels))(variables)
