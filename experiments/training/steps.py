"""The compiled pieces of training for one member: a step, a block of steps, predictions.

``train_steps`` runs a block of batches as one ``lax.scan``; each batch is a
row of example indices, gathered from the uint8 dataset on the device and
scaled to the model's input inside the step, so no host transfer happens per
step. ``predict`` computes logits for an index array in chunks. For a run of
K > 1 members, ``programs.py`` vmaps these over the member axis.

Gradient-descent modes differ only in B, the examples per update:
minibatch (B = --batch_size), stochastic (B = 1) and full_batch (B = N, one
update per epoch, its gradient summed over chunks of ``chunk_size``).
"""

import jax
import jax.numpy as jnp

from data import datasets
from experiments.training.dataset import Inputs
from experiments.training.state import TrainState
from models import metrics


def train_step(
    state: TrainState, images: jax.Array, labels: jax.Array, chunk_size: int | None = None
) -> tuple[TrainState, metrics.Counts]:
  """One update on the mean softmax cross-entropy of a batch of B examples, plus R(θ).

  The gradient is (1/B) Σ_n ∇ℓ_n + ∇R(θ), R the state's weight penalty. When
  B > ``chunk_size`` (full-batch descent), the first term is summed over
  chunks of ``chunk_size`` examples in a ``lax.scan``, the last chunk
  zero-padded and masked, so memory stays bounded and the result is the same
  sum (not with batch norm, whose statistics would be per chunk). Returns the
  new state and the batch's cross-entropy counts (measured with the
  parameters before the update).
  """
  step_key = jax.random.fold_in(state.dropout_key, state.step)
  batch_size = labels.shape[0]

  def loss_fn(params, x, y, mask, key):
    variables = {"params": params}
    kwargs = {"train": True, "dropout": state.dropout, "rngs": {"dropout": key}}
    if state.batch_stats:
      variables["batch_stats"] = state.batch_stats
      logits, updated = state.apply_fn(variables, x, mutable=["batch_stats"], **kwargs)
    else:
      logits, updated = state.apply_fn(variables, x, **kwargs), {}
    counts = metrics.counts(logits, y, mask)
    return counts.loss_sum / batch_size, (counts, updated.get("batch_stats", {}))

  grad_fn = jax.grad(loss_fn, has_aux=True)
  if chunk_size is None or batch_size <= chunk_size:
    grads, (counts, batch_stats) = grad_fn(state.params, images, labels, None, step_key)
  else:  # the config refuses batch norm here
    grads, counts = _chunked_gradient(grad_fn, state.params, images, labels, chunk_size, step_key)
    batch_stats = state.batch_stats
  if state.penalty.active:
    grads = jax.tree.map(jnp.add, grads, jax.grad(state.penalty)(state.params))
  return state.apply_gradients(grads=grads, batch_stats=batch_stats), counts


def in_chunks(array: jax.Array, chunk_size: int) -> jax.Array:
  """(N, ...) zero-padded to a multiple of ``chunk_size`` and cut into (chunks, chunk_size, ...)."""
  num_chunks = -(-array.shape[0] // chunk_size)
  pad = num_chunks * chunk_size - array.shape[0]
  padded = jnp.pad(array, [(0, pad)] + [(0, 0)] * (array.ndim - 1))
  return padded.reshape(num_chunks, chunk_size, *array.shape[1:])


def _chunked_gradient(grad_fn, params, images, labels, chunk_size, step_key):
  """Σ over chunks of ``grad_fn``'s gradient and counts; the last chunk padded and masked."""
  mask = jnp.ones(labels.shape[0], jnp.float32)  # zero where padded, once in chunks
  chunks = jax.tree.map(lambda a: in_chunks(a, chunk_size), (images, labels, mask))
  num_chunks = chunks[1].shape[0]

  def body(total, chunk):
    i, (x, y, m) = chunk
    grads, (counts, _) = grad_fn(params, x, y, m, jax.random.fold_in(step_key, i))
    return jax.tree.map(jnp.add, total, (grads, counts)), None

  shapes = jax.eval_shape(grad_fn, params, *(a[0] for a in chunks), step_key)
  zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), (shapes[0], shapes[1][0]))
  (grads, counts), _ = jax.lax.scan(body, zero, (jnp.arange(num_chunks), chunks))
  return grads, counts


def train_steps(
    state: TrainState,
    inputs: Inputs,
    pixel_mean: jax.Array,
    pixel_std: jax.Array,
    batch_indices: jax.Array,
    chunk_size: int | None = None,
) -> tuple[TrainState, metrics.Counts]:
  """``train_step`` on each row of ``batch_indices`` (S, B) in turn, as one ``lax.scan``.

  Row s holds the dataset indices of batch s; its uint8 images are gathered
  and scaled to (x/255 - mean) / std inside the step. Returns the final state
  and the counts summed over the S batches.
  """

  def body(state, idx):
    images = datasets.to_model_input(inputs.images[idx], pixel_mean, pixel_std)
    return train_step(state, images, inputs.labels[idx], chunk_size)

  state, step_counts = jax.lax.scan(body, state, batch_indices)
  return state, jax.tree.map(jnp.sum, step_counts)


def predict(
    variables: dict,
    apply_fn,
    inputs: Inputs,
    pixel_mean: jax.Array,
    pixel_std: jax.Array,
    indices: jax.Array,
    chunk_size: int,
) -> jax.Array:
  """Logits (n, K) of the examples ``indices`` (n,) in eval mode (no dropout, running statistics).

  The examples go through in chunks of ``chunk_size`` (``lax.map``), the last
  one padded with example 0; the padded rows are cut off.
  """

  def logits(idx):
    images = datasets.to_model_input(inputs.images[idx], pixel_mean, pixel_std)
    return apply_fn(variables, images, train=False)

  chunks = jax.lax.map(logits, in_chunks(indices, chunk_size))
  return chunks.reshape(-1, chunks.shape[-1])[:indices.shape[0]]
