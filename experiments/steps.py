"""The compiled pieces of training: state, one step, many steps, exact evaluation.

The whole dataset lives on the device. An epoch is a random permutation of
example indices cut into batches (``epoch_batches``); ``train_steps`` runs a
block of those batches as one ``lax.scan`` under ``jax.jit``, gathering each
batch from the on-device arrays, so no NumPy slicing or host transfer happens
per step. The training loop calls it a few times per epoch only to move a
progress bar.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from models import losses
from models import metrics


class TrainState(train_state.TrainState):
  """Flax's TrainState (step, params, opt_state) plus the dropout key.

  The dropout key of step t is fold_in(dropout_key, t): every step gets a
  fresh, reproducible key without carrying a key chain.
  """

  dropout_key: jax.Array


def create_train_state(
    model: nn.Module, params: Any, tx: optax.GradientTransformation, dropout_key: jax.Array
) -> TrainState:
  return TrainState.create(apply_fn=model.apply, params=params, tx=tx, dropout_key=dropout_key)


def train_step(
    state: TrainState, images: jax.Array, labels: jax.Array
) -> tuple[TrainState, metrics.Counts]:
  """One gradient step on softmax cross-entropy; returns the new state and batch counts."""
  dropout_key = jax.random.fold_in(state.dropout_key, state.step)

  def loss_fn(params):
    logits = state.apply_fn(
        {"params": params}, images, train=True, rngs={"dropout": dropout_key}
    )
    return losses.softmax_cross_entropy(logits, labels), logits

  (_, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  return state.apply_gradients(grads=grads), metrics.counts(logits, labels)


def train_steps(
    state: TrainState, images: jax.Array, labels: jax.Array, batch_indices: jax.Array
) -> tuple[TrainState, metrics.Counts]:
  """``train_step`` on each row of ``batch_indices`` (S, B) in turn, as one ``lax.scan``.

  Returns the final state and the counts summed over the S batches.
  """

  def body(state, idx):
    return train_step(state, images[idx], labels[idx])

  state, step_counts = jax.lax.scan(body, state, batch_indices)
  return state, jax.tree.map(jnp.sum, step_counts)


def epoch_batches(key: jax.Array, num_examples: int, batch_size: int) -> jax.Array:
  """A random permutation of example indices as (num_examples // batch_size, batch_size).

  The remainder (fewer than batch_size examples) is left out of this epoch;
  a new permutation each epoch leaves out different ones.
  """
  num_batches = num_examples // batch_size
  order = jax.random.permutation(key, num_examples)
  return order[: num_batches * batch_size].reshape(num_batches, batch_size)


def evaluate(
    params: Any, apply_fn, images: jax.Array, labels: jax.Array, batch_size: int
) -> metrics.Counts:
  """Exact loss and accuracy counts over every example (eval mode, no dropout).

  The split is zero-padded to a multiple of ``batch_size`` and the padding is
  masked out of the sums, so no example is dropped and none counts twice.
  """
  n = labels.shape[0]
  num_batches = -(-n // batch_size)
  pad = num_batches * batch_size - n
  images = jnp.pad(images, [(0, pad)] + [(0, 0)] * (images.ndim - 1))
  labels = jnp.pad(labels, (0, pad))
  mask = jnp.arange(num_batches * batch_size) < n

  def body(total, batch):
    x, y, m = batch
    logits = apply_fn({"params": params}, x, train=False)
    return total + metrics.counts(logits, y, m), None

  batched = jax.tree.map(
      lambda a: a.reshape(num_batches, batch_size, *a.shape[1:]), (images, labels, mask)
  )
  zero = metrics.Counts(*(jnp.zeros((), jnp.float32) for _ in range(3)))
  total, _ = jax.lax.scan(body, zero, batched)
  return total
