"""The compiled pieces of training: state, one step, many steps, exact evaluation.

The whole dataset lives on the device. An epoch is a random permutation of
example indices cut into batches (``epoch_batches``); ``train_steps`` runs a
block of those batches as one ``lax.scan`` under ``jax.jit``, gathering each
batch from the on-device arrays, so no NumPy slicing or host transfer happens
per step. The training loop calls it a few times per epoch only to move a
progress bar.

Gradient-descent modes differ only in B, the examples per update:
minibatch (B = --batch_size), stochastic (B = 1, one example per update) and
full_batch (B = N, one update per epoch, its gradient summed over chunks).
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from models import metrics


class TrainState(train_state.TrainState):
  """Flax's TrainState (step, params, opt_state) plus the dropout key.

  The dropout key of step t is fold_in(dropout_key, t): every step gets a
  fresh, reproducible key without carrying a key chain.
  """

  dropout_key: jax.Array


def seed_keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The (initialization, dropout, shuffling) keys a run derives from its seed."""
  init_key, dropout_key, shuffle_key = jax.random.split(jax.random.key(seed), 3)
  return init_key, dropout_key, shuffle_key


def create_train_state(
    model: nn.Module, params: Any, tx: optax.GradientTransformation, dropout_key: jax.Array
) -> TrainState:
  return TrainState.create(apply_fn=model.apply, params=params, tx=tx, dropout_key=dropout_key)


GD_MODES = ("minibatch", "stochastic", "full_batch")


def update_batch_size(gd_mode: str, batch_size: int, num_examples: int) -> int:
  """Examples per update: B for minibatch, 1 for stochastic, all N for full_batch."""
  if gd_mode == "minibatch":
    return batch_size
  if gd_mode == "stochastic":
    return 1
  if gd_mode == "full_batch":
    return num_examples
  raise ValueError(f"unknown gd_mode {gd_mode!r}; choose one of {', '.join(GD_MODES)}")


def train_step(
    state: TrainState, images: jax.Array, labels: jax.Array, chunk_size: int | None = None
) -> tuple[TrainState, metrics.Counts]:
  """One update on the mean softmax cross-entropy of a batch of B examples.

  The gradient is (1/B) Σ_n ∇ℓ_n. When B > ``chunk_size`` (full-batch
  descent), it is summed over chunks of ``chunk_size`` examples in a
  ``lax.scan``, the last chunk zero-padded and masked, so memory stays bounded
  and the result is the same sum. Returns the new state and the batch's counts
  (measured with the parameters before the update).
  """
  step_key = jax.random.fold_in(state.dropout_key, state.step)
  batch_size = labels.shape[0]

  def loss_fn(params, x, y, mask, key):
    logits = state.apply_fn({"params": params}, x, train=True, rngs={"dropout": key})
    counts = metrics.counts(logits, y, mask)
    return counts.loss_sum / batch_size, counts

  grad_fn = jax.grad(loss_fn, has_aux=True)
  if chunk_size is None or batch_size <= chunk_size:
    grads, counts = grad_fn(state.params, images, labels, None, step_key)
    return state.apply_gradients(grads=grads), counts

  num_chunks = -(-batch_size // chunk_size)
  pad = num_chunks * chunk_size - batch_size
  mask = jnp.ones(batch_size, jnp.float32)  # zero where padded, after the pad below
  chunks = jax.tree.map(
      lambda a: jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)).reshape(
          num_chunks, chunk_size, *a.shape[1:]),
      (images, labels, mask),
  )

  def body(total, chunk):
    i, (x, y, m) = chunk
    grads, counts = grad_fn(state.params, x, y, m, jax.random.fold_in(step_key, i))
    return jax.tree.map(jnp.add, total, (grads, counts)), None

  shapes = jax.eval_shape(grad_fn, state.params, *(a[0] for a in chunks), step_key)
  zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  (grads, counts), _ = jax.lax.scan(body, zero, (jnp.arange(num_chunks), chunks))
  return state.apply_gradients(grads=grads), counts


def train_steps(
    state: TrainState,
    images: jax.Array,
    labels: jax.Array,
    batch_indices: jax.Array,
    chunk_size: int | None = None,
) -> tuple[TrainState, metrics.Counts]:
  """``train_step`` on each row of ``batch_indices`` (S, B) in turn, as one ``lax.scan``.

  Returns the final state and the counts summed over the S batches.
  """

  def body(state, idx):
    return train_step(state, images[idx], labels[idx], chunk_size)

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
