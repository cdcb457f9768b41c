"""The one gradient step: a member's state updated on the gradient of a batch's loss.

Every objective with one loss trains through ``gradient_step`` (``objective.OneLoss``);
``apply_train`` runs the network in training mode with the step's dropout rate and
keys. Gradient-descent modes differ only in B, the examples per update: minibatch
(B = --batch_size), stochastic (B = 1) and full_batch (B = N, one update per epoch,
its gradient summed over chunks of ``chunk_size``).
"""

import jax
import jax.numpy as jnp


def apply_train(state, params, images: jax.Array, key: jax.Array, **kwargs):
  """``state.apply_fn`` in training mode with the step's dropout rate and keys: its output and
  the updated batch statistics ({} without batch norm)."""
  variables = {"params": params}
  kwargs = {"train": True, "dropout": state.dropout, "rngs": {"dropout": key}, **kwargs}
  if state.batch_stats:
    variables["batch_stats"] = state.batch_stats
    out, updated = state.apply_fn(variables, images, mutable=["batch_stats"], **kwargs)
    return out, updated.get("batch_stats", {})
  return state.apply_fn(variables, images, **kwargs), {}


def gradient_step(loss, state, images: jax.Array, labels: jax.Array,
                  chunk_size: int | None):
  """One update on the gradient of a batch's ``loss`` plus R(θ): (1/B) Σ_n ∇ℓ_n + ∇R(θ).

  ``loss(params, x, y, mask, key) -> (loss, (sums, batch_stats))`` on a batch
  of B examples (mask: None, or 1 where an example counts), with the step's
  key fold_in(dropout_key, step). When B > ``chunk_size`` (full-batch
  descent), the gradient and the sums are summed over chunks of
  ``chunk_size`` examples in a ``lax.scan``, the last chunk zero-padded and
  masked, so memory stays bounded and the result is the same sum (not with
  batch norm, whose statistics would be per chunk). R is the state's weight
  penalty. Returns the new state and the batch's sums, measured with the
  parameters before the update.
  """
  step_key = jax.random.fold_in(state.dropout_key, state.step)
  grad_fn = jax.grad(loss, has_aux=True)
  if chunk_size is None or labels.shape[0] <= chunk_size:
    grads, (sums, batch_stats) = grad_fn(state.params, images, labels, None, step_key)
  else:  # the config refuses batch norm here
    grads, sums = _chunked_gradient(grad_fn, state.params, images, labels, chunk_size, step_key)
    batch_stats = state.batch_stats
  if state.penalty.active:
    grads = jax.tree.map(jnp.add, grads, jax.grad(state.penalty)(state.params))
  return state.apply_gradients(grads=grads, batch_stats=batch_stats), sums


def in_chunks(array: jax.Array, chunk_size: int) -> jax.Array:
  """(N, ...) zero-padded to a multiple of ``chunk_size`` and cut into (chunks, chunk_size, ...)."""
  num_chunks = -(-array.shape[0] // chunk_size)
  pad = num_chunks * chunk_size - array.shape[0]
  padded = jnp.pad(array, [(0, pad)] + [(0, 0)] * (array.ndim - 1))
  return padded.reshape(num_chunks, chunk_size, *array.shape[1:])


def _chunked_gradient(grad_fn, params, images, labels, chunk_size, step_key):
  """Σ over chunks of ``grad_fn``'s gradient and sums; the last chunk padded and masked."""
  mask = jnp.ones(labels.shape[0], jnp.float32)  # zero where padded, once in chunks
  chunks = jax.tree.map(lambda a: in_chunks(a, chunk_size), (images, labels, mask))
  num_chunks = chunks[1].shape[0]

  def body(total, chunk):
    i, (x, y, m) = chunk
    grads, (sums, _) = grad_fn(params, x, y, m, jax.random.fold_in(step_key, i))
    return jax.tree.map(jnp.add, total, (grads, sums)), None

  shapes = jax.eval_shape(grad_fn, params, *(a[0] for a in chunks), step_key)
  zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), (shapes[0], shapes[1][0]))
  (grads, sums), _ = jax.lax.scan(body, zero, (jnp.arange(num_chunks), chunks))
  return grads, sums
