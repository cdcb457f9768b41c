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
from flax import struct
from flax.training import train_state

from models import metrics
from models import regularizers


class TrainState(train_state.TrainState):
  """Flax's TrainState (step, params, opt_state) plus batch statistics, dropout key, penalty.

  ``batch_stats`` holds batch normalization's running means and variances
  (empty without batch norm): state updated by each training step, not by
  the optimizer. The dropout key of step t is fold_in(dropout_key, t): every
  step gets a fresh, reproducible key without carrying a key chain.
  ``penalty`` is the weight penalty added to the training loss.
  """

  batch_stats: Any
  dropout_key: jax.Array
  penalty: regularizers.Penalty = struct.field(pytree_node=False, default=regularizers.Penalty())

  @property
  def variables(self) -> dict:
    """What ``apply_fn`` takes: {"params"[, "batch_stats"]}."""
    if self.batch_stats:
      return {"params": self.params, "batch_stats": self.batch_stats}
    return {"params": self.params}


def seed_keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The (initialization, dropout, shuffling) keys a run derives from its seed."""
  init_key, dropout_key, shuffle_key = jax.random.split(jax.random.key(seed), 3)
  return init_key, dropout_key, shuffle_key


def create_train_state(
    model: nn.Module,
    variables: dict,
    tx: optax.GradientTransformation,
    dropout_key: jax.Array,
    penalty: regularizers.Penalty = regularizers.Penalty(),
) -> TrainState:
  """The state at step 0 from ``networks.init_variables``' {"params"[, "batch_stats"]}."""
  return TrainState.create(
      apply_fn=model.apply, params=variables["params"], tx=tx,
      batch_stats=variables.get("batch_stats", {}), dropout_key=dropout_key, penalty=penalty)


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
    if state.batch_stats:
      variables["batch_stats"] = state.batch_stats
      logits, updated = state.apply_fn(
          variables, x, train=True, rngs={"dropout": key}, mutable=["batch_stats"])
    else:
      logits, updated = state.apply_fn(variables, x, train=True, rngs={"dropout": key}), {}
    counts = metrics.counts(logits, y, mask)
    return counts.loss_sum / batch_size, (counts, updated.get("batch_stats", {}))

  grad_fn = jax.grad(loss_fn, has_aux=True)
  if chunk_size is None or batch_size <= chunk_size:
    grads, (counts, batch_stats) = grad_fn(state.params, images, labels, None, step_key)
  elif state.batch_stats:
    raise ValueError("batch norm needs the whole batch in one pass: raise chunk_size")
  else:
    grads, counts = _chunked_gradient(grad_fn, state.params, images, labels, chunk_size, step_key)
    batch_stats = state.batch_stats
  if state.penalty.l1 or state.penalty.l2:
    grads = jax.tree.map(jnp.add, grads, jax.grad(state.penalty)(state.params))
  return state.apply_gradients(grads=grads, batch_stats=batch_stats), counts


def _in_chunks(array: jax.Array, chunk_size: int) -> jax.Array:
  """(N, ...) zero-padded to a multiple of ``chunk_size`` and cut into (chunks, chunk_size, ...)."""
  num_chunks = -(-array.shape[0] // chunk_size)
  pad = num_chunks * chunk_size - array.shape[0]
  padded = jnp.pad(array, [(0, pad)] + [(0, 0)] * (array.ndim - 1))
  return padded.reshape(num_chunks, chunk_size, *array.shape[1:])


def _chunked_gradient(grad_fn, params, images, labels, chunk_size, step_key):
  """Σ over chunks of ``grad_fn``'s gradient and counts; the last chunk padded and masked."""
  mask = jnp.ones(labels.shape[0], jnp.float32)  # zero where padded, once in chunks
  chunks = jax.tree.map(lambda a: _in_chunks(a, chunk_size), (images, labels, mask))
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


def predict(variables: dict, apply_fn, images: jax.Array, batch_size: int) -> jax.Array:
  """Logits (N, K) of every example in eval mode (no dropout, running batch statistics).

  The images go through in batches of ``batch_size`` (``lax.map``), the last
  one zero-padded; the padded rows are cut off.
  """
  batched = _in_chunks(images, batch_size)
  logits = jax.lax.map(lambda x: apply_fn(variables, x, train=False), batched)
  return logits.reshape(-1, logits.shape[-1])[:images.shape[0]]


def evaluate(
    variables: dict, apply_fn, images: jax.Array, labels: jax.Array, batch_size: int
) -> metrics.Counts:
  """Exact loss and accuracy counts over every example of a split (``predict``'s logits)."""
  return metrics.counts(predict(variables, apply_fn, images, batch_size), labels)
