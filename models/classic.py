"""Networks without hidden layers and their learning rules, as pure JAX functions.

Observations x (N, M) get the constant input x_0 = 1 prepended (``with_bias``),
so a node's weights w (M + 1,) include w_0, and its weighted sum is
s = Σ_{i=0..M} w_i x_i. Several output nodes hold their weights as the columns
of W (M + 1, K). Targets d are 0/1 (one column per node).

Rules (c > 0 is the step size):
- McCulloch–Pitts neuron: output 1 if Σ_{i>=1} w_i x_i > T else 0; the same
  as 1 if s > 0 with w_0 = -T on x_0 = 1.
- Rosenblatt's perceptron: output o = 1 if s > 0 else 0; on an observation it
  misclassifies (o ≠ d), w_i <- w_i + c (d - o) x_i; no change otherwise.
- Sequential MSE / LMS (Widrow–Hoff): linear output D = s; after each
  observation, w_i <- w_i - c (D - d) x_i (w_ij <- w_ij - c (D_j - d_j) x_i).
- Steepest descent (SDM) on E = 1/(2N) Σ_n Σ_j (D_nj - d_nj)², the whole
  sample at once: w_ij <- w_ij - c dE/dw_ij = w_ij - (c/N) Σ_n (D_nj - d_nj) x_ni.
- Least squares: dE/dw = 0 gives the normal equations XᵀX W = Xᵀd, solved
  at once through the SVD of X (the pseudo-inverse solution: exact when XᵀX
  is invertible, the minimum-norm one when it is not, as for MNIST's
  always-blank pixels; never forms XᵀX, whose condition number is cond(X)²).

The sequential rules present observations one at a time, cycling 1..N: a
pass is a ``lax.scan`` over the observations, and passes repeat inside a
``lax.while_loop`` until the weights stop changing (perceptron: a pass
without mistakes; LMS and SDM: no weight moved by more than ``tol``) or
``max_passes``. Everything is traceable, so ``jax.vmap`` over c trains
several step sizes at once.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class FitResult(NamedTuple):
  weights: jax.Array  # (M + 1,) or (M + 1, K)
  passes: jax.Array  # passes over the sample that were run
  updates: jax.Array  # weight updates made (perceptron: mistakes; others: steps)
  converged: jax.Array  # True when the stopping rule, not max_passes, ended training


def with_bias(x: jax.Array) -> jax.Array:
  """Prepends the constant input x_0 = 1: (N, M) -> (N, M + 1)."""
  return jnp.concatenate([jnp.ones((x.shape[0], 1), x.dtype), x], axis=1)


def mcculloch_pitts(x: jax.Array, w: jax.Array, threshold: float) -> jax.Array:
  """y = 1 if Σ_i w_i x_i > T else 0, for x (N, M) and w (M,)."""
  return (x @ w > threshold).astype(jnp.int32)


def mcculloch_pitts_bias_form(x: jax.Array, w: jax.Array, threshold: float) -> jax.Array:
  """The same neuron with w_0 = -T on the constant input x_0 = 1: y = 1 if Σ_{i>=0} w_i x_i > 0."""
  w_tilde = jnp.concatenate([jnp.array([-threshold], w.dtype), w])
  return (with_bias(x) @ w_tilde > 0).astype(jnp.int32)


def step_output(s: jax.Array) -> jax.Array:
  """The perceptron's output: 1 if s > 0 else 0."""
  return (s > 0).astype(s.dtype)


def _validate(x, d, c):
  if x.ndim != 2:
    raise ValueError(f"x must be (N, M), got shape {x.shape}")
  if d.shape[0] != x.shape[0]:
    raise ValueError(f"x has {x.shape[0]} observations but d has {d.shape[0]}")
  if isinstance(c, (int, float)) and not c > 0:  # arrays of c (under vmap) are checked by callers
    raise ValueError(f"the step size c must be > 0, got {c}")


def _sequential(w, xb, d, max_passes, one_obs, settled):
  """Passes of ``one_obs`` over the observations until ``settled(change, mistakes)``."""

  def one_pass(w):
    def step(carry, obs):
      w, count = carry
      w_new, counted = one_obs(w, *obs)
      return (w_new, count + counted), None

    (w_new, count), _ = jax.lax.scan(step, (w, jnp.int32(0)), (xb, d))
    return w_new, count

  def cond(carry):
    _, passes, _, done = carry
    return (passes < max_passes) & ~done

  def body(carry):
    w, passes, updates, _ = carry
    w_new, count = one_pass(w)
    return w_new, passes + 1, updates + count, settled(jnp.max(jnp.abs(w_new - w)), count)

  w, passes, updates, done = jax.lax.while_loop(
      cond, body, (w, jnp.int32(0), jnp.int32(0), jnp.bool_(False))
  )
  return FitResult(w, passes, updates, done)


def perceptron(x, d, c, w0=None, max_passes=100) -> FitResult:
  """Rosenblatt's rule; d is (N,) for one node or (N, K) for one node per class.

  With several nodes each column is trained by the single-node rule on its
  own 0/1 target (one-vs-rest); an observation counts as one update when any
  node was wrong on it. Converged = a full pass without a mistake.
  """
  _validate(x, d, c)
  xb = with_bias(x)
  w = jnp.zeros((xb.shape[1],) + d.shape[1:], x.dtype) if w0 is None else w0

  def one_obs(w, xi, di):
    o = step_output(xi @ w)
    wrong = o != di
    return w + c * jnp.outer(xi, di - o).reshape(w.shape), jnp.any(wrong).astype(jnp.int32)

  return _sequential(w, xb, d.astype(x.dtype), max_passes, one_obs, lambda _, mistakes: mistakes == 0)


def lms(x, d, c, w0=None, tol=1e-6, max_passes=100) -> FitResult:
  """Sequential MSE (Widrow–Hoff): w <- w - c (D - d) x after every observation."""
  _validate(x, d, c)
  xb = with_bias(x)
  w = jnp.zeros((xb.shape[1],) + d.shape[1:], x.dtype) if w0 is None else w0

  def one_obs(w, xi, di):
    return w - c * jnp.outer(xi, xi @ w - di).reshape(w.shape), jnp.int32(1)

  return _sequential(w, xb, d.astype(x.dtype), max_passes, one_obs, lambda change, _: change <= tol)


def steepest_descent(x, d, c, w0=None, tol=1e-6, max_passes=1000) -> FitResult:
  """SDM on the whole sample: w <- w - c dE/dw with E = 1/(2N) Σ (D - d)²; one step per pass."""
  _validate(x, d, c)
  xb = with_bias(x)
  d = d.astype(x.dtype)
  w = jnp.zeros((xb.shape[1],) + d.shape[1:], x.dtype) if w0 is None else w0

  def cond(carry):
    _, passes, change = carry
    return (passes < max_passes) & (change > tol)

  def body(carry):
    w, passes, _ = carry
    w_new = w - c * xb.T @ (xb @ w - d) / xb.shape[0]
    return w_new, passes + 1, jnp.max(jnp.abs(w_new - w))

  w, passes, change = jax.lax.while_loop(
      cond, body, (w, jnp.int32(0), jnp.asarray(jnp.inf, x.dtype))
  )
  return FitResult(w, passes, passes, change <= tol)


def least_squares(x, d) -> jax.Array:
  """Solves dE/dw = 0 (the normal equations XᵀX w = Xᵀd) via the SVD X = U Σ Vᵀ.

  w = V Σ⁺ Uᵀ d, with singular values below max(N, M+1) eps σ_max treated as
  zero (LAPACK's and NumPy's default cut-off for the pseudo-inverse).
  """
  _validate(x, d, 1.0)
  xb = with_bias(x)
  u, sigma, vt = jnp.linalg.svd(xb, full_matrices=False)
  cutoff = max(xb.shape) * jnp.finfo(xb.dtype).eps * sigma[0]
  kept = sigma > cutoff
  inv_sigma = jnp.where(kept, 1.0 / jnp.where(kept, sigma, 1.0), 0.0)
  w = vt.T @ (inv_sigma[:, None] * (u.T @ d.astype(x.dtype).reshape(len(xb), -1)))
  return w.reshape((xb.shape[1],) + d.shape[1:])


def predict(w: jax.Array, x: jax.Array, threshold: float) -> jax.Array:
  """Class predictions: argmax_j s_j with several nodes, else 1 if s > threshold."""
  s = with_bias(x) @ w
  if w.ndim == 2:
    return jnp.argmax(s, axis=1).astype(jnp.int32)
  return (s > threshold).astype(jnp.int32)
