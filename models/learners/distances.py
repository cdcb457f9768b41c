"""Squared Euclidean distances as one matmul: ‖a − b‖² = ‖a‖² − 2 a·b + ‖b‖².

The shared part of k-NN, the RBF kernel and k-means. Rounding can make the
expansion slightly negative for (near-)equal points, so it is clipped at 0.
"""

import jax
import jax.numpy as jnp


def squared_norms(x: jax.Array) -> jax.Array:
  """‖x_n‖² for each row of x (N, D)."""
  return jnp.sum(x * x, axis=1)


def squared_distances(a: jax.Array, b: jax.Array, b_norms: jax.Array | None = None) -> jax.Array:
  """(M, N) matrix of ‖a_m − b_n‖² for a (M, D), b (N, D); ``b_norms`` = ‖b_n‖² if known."""
  b_norms = squared_norms(b) if b_norms is None else b_norms
  return jnp.maximum(squared_norms(a)[:, None] - 2.0 * a @ b.T + b_norms[None, :], 0.0)


BYTES_PER_FLOAT = 4


def rows_per_chunk(memory_bytes: int, columns: int) -> int:
  """Query rows whose (rows, columns) float32 intermediate fits ``memory_bytes`` (at least 1)."""
  return max(1, memory_bytes // (BYTES_PER_FLOAT * columns))


def in_chunks(fn, queries: jax.Array, chunk: int) -> jax.Array:
  """``fn`` applied to ``queries`` (M, D) ``chunk`` rows at a time (``lax.map``); rows concatenated.

  Holds one chunk's intermediate (e.g. its (chunk, N) distances) at a time,
  whatever M. The last chunk is padded with copies of row 0 and cut off.
  """
  m = queries.shape[0]
  chunk = max(1, min(chunk, m))
  padded = -(-m // chunk) * chunk
  rows = jnp.concatenate([queries, jnp.broadcast_to(queries[:1], (padded - m,) + queries.shape[1:])])
  out = jax.lax.map(fn, rows.reshape((padded // chunk, chunk) + queries.shape[1:]))
  return jax.tree.map(lambda o: o.reshape((padded,) + o.shape[2:])[:m], out)
