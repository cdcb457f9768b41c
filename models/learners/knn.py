"""k-nearest neighbours, brute force on the device.

The training set is the model. A query a is compared with every training
point b by ‖a − b‖² = ‖a‖² − 2 a·b + ‖b‖² (one matmul per chunk of queries:
``distances.py``), and its k nearest are taken (``lax.top_k``). Points at exactly equal
distances are ordered by their rounded distances, which differ in the last
bits between this expansion and scikit-learn's, so each may keep a different
one of a tie at the k-th place; on data without such ties the two agree.
Each neighbour votes with weight w = 1 (uniform) or w = 1 / ‖a − b‖
(distance; when some neighbours are at distance 0, only those vote, with
weight 1, as scikit-learn does).

- Classification: ŷ = argmax_c Σ_{j ≤ k} w_j [y_j = c]; a tie goes to the
  smallest label (scikit-learn's mode).
- Regression: ŷ = Σ_j w_j y_j / Σ_j w_j.

k sets top_k's shape, so it is static; a grid of k (``predict_grid``) finds
the max(k) nearest once and ``vmap``s the vote of each k over its first k.
"""

import flax.struct
import jax
import jax.numpy as jnp

from models.learners import distances


@flax.struct.dataclass
class Settings:
  k: int = flax.struct.field(pytree_node=False, default=3)
  weights: str = flax.struct.field(pytree_node=False, default="uniform")  # or "distance"
  num_classes: int = flax.struct.field(pytree_node=False, default=0)  # 0: regression
  memory_bytes: int = flax.struct.field(pytree_node=False, default=256 * 2**20)


@flax.struct.dataclass
class Params:
  settings: Settings
  x: jax.Array  # (N, D) training points
  y: jax.Array  # (N,) labels, or targets for regression
  norms: jax.Array  # (N,) ‖x_n‖²


def fit(settings: Settings, x, y, key=None) -> Params:
  """Stores the training set and its squared norms (k-NN learns nothing else)."""
  del key
  return Params(settings, x, y, distances.squared_norms(x))


def neighbours_of(params: Params, queries, count: int) -> tuple[jax.Array, jax.Array]:
  """(indices, distances) of each query's ``count`` nearest points, nearest first."""
  s = params.settings

  def chunk(q):
    _, index = jax.lax.top_k(-distances.squared_distances(q, params.x, params.norms), count)
    # The found neighbours' distances from their differences: exact (0 for a copy).
    return index, jnp.sqrt(jnp.sum((q[:, None, :] - params.x[index]) ** 2, axis=2))

  return distances.in_chunks(chunk, queries,
                             distances.rows_per_chunk(s.memory_bytes, params.x.shape[0]))


def vote_weights(params: Params, dist: jax.Array, k) -> jax.Array:
  """w_j for the found neighbours: 1 or 1/d (only the d = 0 ones where any), 0 beyond k."""
  within_k = jnp.arange(dist.shape[1]) < k
  if params.settings.weights == "uniform":
    return jnp.broadcast_to(within_k[None, :], dist.shape).astype(dist.dtype)
  exact = (dist == 0) & within_k[None, :]
  inverse = jnp.where(within_k[None, :], 1.0 / jnp.where(dist == 0, 1.0, dist), 0.0)
  return jnp.where(jnp.any(exact, axis=1, keepdims=True), exact.astype(dist.dtype), inverse)


def _vote(params: Params, index, dist, k) -> jax.Array:
  w = vote_weights(params, dist, k)
  neighbour_y = params.y[index]
  if params.settings.num_classes == 0:
    return jnp.sum(w * neighbour_y, axis=1) / jnp.sum(w, axis=1)
  votes = jnp.einsum("qj,qjc->qc", w, jax.nn.one_hot(neighbour_y, params.settings.num_classes,
                                                      dtype=w.dtype))
  return jnp.argmax(votes, axis=1)


def predict(params: Params, queries) -> jax.Array:
  """The majority label (classification) or the weighted mean target (regression)."""
  k = params.settings.k
  return _vote(params, *neighbours_of(params, queries, k), k)


def predict_grid(params: Params, queries, ks: tuple[int, ...]) -> jax.Array:
  """``predict`` for each k in ``ks`` (len(ks), M), from one search for the max(ks) nearest."""
  index, dist = neighbours_of(params, queries, max(ks))
  return jax.vmap(lambda k: _vote(params, index, dist, k))(jnp.asarray(ks))
