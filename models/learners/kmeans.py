"""k-means: k-means++ seeding, Lloyd's iterations, restarts in one ``vmap``.

Inertia, the quantity minimized: I = Σ_n min_c ‖x_n − μ_c‖².

- k-means++ (scikit-learn's greedy variant): the first centre is a point
  drawn uniformly; each next one is the best, by the inertia it leaves, of
  2 + ⌊ln k⌋ candidates drawn with probability ∝ D(x)², the squared distance
  to the nearest centre so far.
- Lloyd: assign each point to its nearest centre, move each centre to the
  mean of its points (an empty cluster keeps its centre); stop when no
  assignment changes or the centres move by Σ_c ‖μ_c' − μ_c‖² ≤ tol · mean_i Var(x_i)
  (scikit-learn's rule), or after max_iter; the points are then assigned to
  the final centres.
- n_init restarts from independent seedings, vmapped; the lowest inertia wins.
"""

import math

import flax.struct
import jax
import jax.numpy as jnp

from models.learners import distances


@flax.struct.dataclass
class Settings:
  num_clusters: int = flax.struct.field(pytree_node=False, default=10)
  n_init: int = flax.struct.field(pytree_node=False, default=10)
  max_iter: int = flax.struct.field(pytree_node=False, default=300)
  tol: float = 1e-4
  num_classes: int = flax.struct.field(pytree_node=False, default=10)  # of the labels that name


@flax.struct.dataclass
class Params:
  settings: Settings
  centres: jax.Array  # (k, D)
  inertia: jax.Array
  iterations: jax.Array
  cluster_labels: jax.Array  # (k,) the majority training label of each cluster (−1: none given)
  restart_inertias: jax.Array  # (n_init,)


def assign(centres, x) -> tuple[jax.Array, jax.Array]:
  """(nearest centre index (N,), squared distance to it (N,))."""
  d2 = distances.squared_distances(x, centres)
  return jnp.argmin(d2, axis=1).astype(jnp.int32), jnp.min(d2, axis=1)


def kmeans_plus_plus(x, k: int, key) -> jax.Array:
  """k initial centres (k, D) by greedy k-means++ (above)."""
  trials = 2 + int(math.log(k))
  first_key, key = jax.random.split(key)
  first = x[jax.random.randint(first_key, (), 0, x.shape[0])]
  closest = distances.squared_distances(x, first[None])[:, 0]

  def add(i, carry):
    centres, closest = carry
    candidates = jax.random.choice(jax.random.fold_in(key, i), x.shape[0], (trials,),
                                   p=closest / closest.sum())
    d2 = distances.squared_distances(x, x[candidates])  # (N, trials)
    potentials = jnp.minimum(closest[:, None], d2)
    best = jnp.argmin(potentials.sum(0))
    return centres.at[i].set(x[candidates[best]]), potentials[:, best]

  centres = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(first)
  centres, _ = jax.lax.fori_loop(1, k, add, (centres, closest))
  return centres


def lloyd(settings: Settings, x, centres) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """(centres, labels, inertia, iterations) of Lloyd's iterations from ``centres``."""
  tol = settings.tol * jnp.mean(jnp.var(x, axis=0))
  k = centres.shape[0]

  def means(labels, centres):
    onehot = jax.nn.one_hot(labels, k, dtype=x.dtype)
    counts = onehot.sum(0)
    sums = onehot.T @ x
    return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centres)

  def step(carry):
    centres, labels, _, count = carry
    new_labels, _ = assign(centres, x)
    new_centres = means(new_labels, centres)
    shift = jnp.sum((new_centres - centres) ** 2)
    done = jnp.all(new_labels == labels) | (shift <= tol)
    return new_centres, new_labels, done, count + 1

  def not_done(carry):
    _, _, done, count = carry
    return ~done & (count < settings.max_iter)

  start = (centres, jnp.full(x.shape[0], -1, jnp.int32), jnp.bool_(False), jnp.int32(0))
  centres, _, _, count = jax.lax.while_loop(not_done, step, start)
  labels, d2 = assign(centres, x)
  return centres, labels, jnp.sum(d2), count


def majority_labels(labels, y, k: int, num_classes: int) -> jax.Array:
  """The most frequent y among each cluster's points (−1 for an empty cluster)."""
  counts = jax.nn.one_hot(labels, k).T @ jax.nn.one_hot(y, num_classes)
  return jnp.where(counts.sum(1) > 0, jnp.argmax(counts, axis=1), -1)


def fit(settings: Settings, x, y, key) -> Params:
  """n_init seedings and Lloyd runs vmapped; the lowest inertia's centres.

  ``y`` only names the clusters (their majority label), for accuracy; it
  plays no part in the clustering.
  """
  keys = jax.random.split(key, settings.n_init)
  run = jax.vmap(lambda key: lloyd(settings, x, kmeans_plus_plus(x, settings.num_clusters, key)))
  centres, labels, inertia, count = run(keys)
  best = jnp.argmin(inertia)
  return Params(settings, centres[best], inertia[best], count[best],
                majority_labels(labels[best], y, settings.num_clusters, settings.num_classes), inertia)


def predict_cluster(params: Params, x) -> jax.Array:
  """The nearest centre's index."""
  return assign(params.centres, x)[0]


def predict(params: Params, x) -> jax.Array:
  """The majority training label of the nearest centre's cluster."""
  return params.cluster_labels[predict_cluster(params, x)]
