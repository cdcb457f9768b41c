"""Kernel support vector machines: the dual QP solved by SMO on the device, one-vs-rest.

With kernel K(a, b) = exp(−γ‖a − b‖²) (RBF) or (γ a·b + r)^d (polynomial) and
labels t_n ∈ {−1, +1}, each problem is LIBSVM's dual
    min_α f(α) = ½ αᵀQα − Σ_n α_n,  Q_nm = t_n t_m K(x_n, x_m),
    subject to 0 ≤ α_n ≤ C and Σ_n t_n α_n = 0,
with decision function F(x) = Σ_n α_n t_n K(x_n, x) − ρ.

SMO (LIBSVM's, second-order working-set selection) keeps the gradient
G = Qα − 1. Among I_up = {α_n < C, t_n = 1} ∪ {α_n > 0, t_n = −1} it takes
i = argmax −t_i G_i; among I_low (the mirror set) with −t_j G_j < −t_i G_i it
takes j = argmin −b²/a, where b = −t_i G_i + t_j G_j and
a = K_ii + K_jj − 2K_ij. The pair moves along α_i += t_i s, α_j −= t_j s (which
keeps Σ t α), with s = b / a clipped to the box; then G += t ⊙ (K_:i − K_:j) s.
It stops when max_{I_up} −tG − min_{I_low} −tG ≤ tol (the KKT gap, 1e-3 as
scikit-learn's). ρ is the mean of t_n G_n over the free α (0 < α < C), else
the middle of their bounds.

The K one-vs-rest problems share one kernel matrix and run as one ``vmap``
inside the loop; the matrix (N², held in float32) is computed in row chunks,
and prediction computes the test kernel in chunks of rows too.
"""

import flax.struct
import jax
import jax.numpy as jnp

from models.learners import distances
from models.learners import linear_svm


@flax.struct.dataclass
class Settings:
  c: float = 10.0
  gamma: float = 0.0  # 0: "scale", 1 / (D · Var(x))
  coef0: float = 0.0  # polynomial r
  kernel: str = flax.struct.field(pytree_node=False, default="rbf")  # or "poly"
  degree: int = flax.struct.field(pytree_node=False, default=3)
  num_classes: int = flax.struct.field(pytree_node=False, default=10)
  tol: float = flax.struct.field(pytree_node=False, default=1e-3)
  max_iter: int = flax.struct.field(pytree_node=False, default=1_000_000)
  memory_bytes: int = flax.struct.field(pytree_node=False, default=256 * 2**20)  # per chunk


@flax.struct.dataclass
class Params:
  settings: Settings
  x: jax.Array  # (N, D) training points
  coef: jax.Array  # (N, K): α_n t_n
  rho: jax.Array  # (K,)
  gamma: jax.Array  # the γ used
  iterations: jax.Array  # SMO steps
  gap: jax.Array  # (K,) the KKT gap reached


def scale_gamma(x) -> jax.Array:
  """γ = 1 / (D · Var(x)), scikit-learn's gamma="scale" (the variance over every entry)."""
  return 1.0 / (x.shape[1] * jnp.var(x))


def kernel_bytes(num_train: int) -> int:
  """The training kernel matrix's size."""
  return distances.BYTES_PER_FLOAT * num_train * num_train


def kernel(settings: Settings, gamma, a, b, b_norms=None) -> jax.Array:
  """K(a_m, b_n): (M, N)."""
  if settings.kernel == "rbf":
    return jnp.exp(-gamma * distances.squared_distances(a, b, b_norms))
  return (gamma * (a @ b.T) + settings.coef0) ** settings.degree


def kernel_matrix(settings: Settings, gamma, x) -> jax.Array:
  """K(x_m, x_n) over the training set, ``memory_bytes`` of intermediates per row chunk."""
  norms = distances.squared_norms(x)
  return distances.in_chunks(lambda rows: kernel(settings, gamma, rows, x, norms), x,
                             distances.rows_per_chunk(settings.memory_bytes, x.shape[0]))


def _smo(settings: Settings, k_matrix, t):
  """One problem's α (N,), ρ, steps and KKT gap, by SMO from α = 0."""
  c, tau = settings.c, 1e-12
  diag = jnp.diagonal(k_matrix)

  def violations(alpha, g):
    up = ((alpha < c) & (t > 0)) | ((alpha > 0) & (t < 0))
    low = ((alpha < c) & (t < 0)) | ((alpha > 0) & (t > 0))
    score = -t * g
    return up, low, score

  def gap(alpha, g):
    up, low, score = violations(alpha, g)
    return jnp.max(jnp.where(up, score, -jnp.inf)) - jnp.min(jnp.where(low, score, jnp.inf))

  def step(carry):
    alpha, g, count = carry
    up, low, score = violations(alpha, g)
    i = jnp.argmax(jnp.where(up, score, -jnp.inf))
    b = score[i] - score
    a = jnp.maximum(diag[i] + diag - 2.0 * k_matrix[i], tau)
    j = jnp.argmin(jnp.where(low & (b > 0), -(b * b) / a, jnp.inf))
    s_max = jnp.minimum(jnp.where(t[i] > 0, c - alpha[i], alpha[i]),
                        jnp.where(t[j] > 0, alpha[j], c - alpha[j]))
    s = jnp.minimum(b[j] / a[j], s_max)
    alpha = alpha.at[i].add(t[i] * s).at[j].add(-t[j] * s)
    alpha = jnp.clip(alpha, 0.0, c)
    g = g + t * (k_matrix[i] - k_matrix[j]) * s
    return alpha, g, count + 1

  def not_done(carry):
    alpha, g, count = carry
    return (gap(alpha, g) > settings.tol) & (count < settings.max_iter)

  zeros = jnp.zeros_like(t)
  alpha, g, count = jax.lax.while_loop(not_done, step, (zeros, -jnp.ones_like(t), 0))
  free = (alpha > 0) & (alpha < c)
  up, low, score = violations(alpha, g)
  middle = -0.5 * (jnp.max(jnp.where(up, score, -jnp.inf))
                   + jnp.min(jnp.where(low, score, jnp.inf)))
  rho = jnp.where(free.any(), jnp.sum(jnp.where(free, t * g, 0.0)) / jnp.maximum(free.sum(), 1),
                  middle)
  return alpha, rho, count, gap(alpha, g)


def fit(settings: Settings, x, y, key=None) -> Params:
  """The kernel matrix once, then the one-vs-rest problems' SMO as one ``vmap``."""
  del key
  gamma = jnp.where(settings.gamma > 0, settings.gamma, scale_gamma(x)).astype(x.dtype)
  k_matrix = kernel_matrix(settings, gamma, x)
  t = linear_svm.signs(settings, y).astype(x.dtype).T  # (K, N)
  alpha, rho, count, gap = jax.vmap(lambda t: _smo(settings, k_matrix, t))(t)
  return Params(settings, x, (alpha * t).T, rho, gamma, jnp.max(count), gap)


def decision(params: Params, queries) -> jax.Array:
  """F(x) = Σ_n α_n t_n K(x_n, x) − ρ for each problem: (M, K), in chunks of queries."""
  norms = distances.squared_norms(params.x)
  s = params.settings

  def chunk(q):
    return kernel(s, params.gamma, q, params.x, norms) @ params.coef - params.rho[None, :]

  return distances.in_chunks(chunk, queries,
                             distances.rows_per_chunk(s.memory_bytes, params.x.shape[0]))


def predict(params: Params, queries) -> jax.Array:
  """Two classes: [F > 0]; more: the class whose F is largest."""
  f = decision(params, queries)
  if params.settings.num_classes == 2:
    return (f[:, 0] > 0).astype(jnp.int32)
  return jnp.argmax(f, axis=1)


def support_vectors(params: Params) -> Params:
  """The same model keeping only the points with some α_n > 0 (host-side: the count is data)."""
  keep = jnp.any(params.coef != 0, axis=1)
  return params.replace(x=params.x[keep], coef=params.coef[keep])
