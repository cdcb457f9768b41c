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
  at once through the SVD of X in float64 (the pseudo-inverse solution: exact
  when XᵀX is invertible, the minimum-norm one when it is not, as for MNIST's
  always-blank pixels; never forms XᵀX, whose condition number is cond(X)²).

The sequential rules present observations one at a time, cycling 1..N: a
pass is a ``lax.scan`` over the observations, and passes repeat inside a
``lax.while_loop`` until the weights stop changing (perceptron: a pass
without mistakes; LMS and SDM: no weight moved by more than ``tol``) or
``max_passes``. The sequential rules are traceable, so ``jax.vmap`` over c
trains several step sizes at once; least squares is one host computation.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


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
  """The minimum-norm solution of dE/dw = 0 (the normal equations XᵀX w = Xᵀd), in float64.

  With the SVD X = U Σ Vᵀ of X = [1, x], w = V Σ⁺ Uᵀ d, where Σ⁺ inverts the
  singular values σ_i > max(N, M+1) ε σ_max and zeroes the others
  (``numpy.linalg.lstsq``'s rule, ε = float64's 2.2e-16). Solved on the host
  in float64: the float32 inputs are exact there, so the cut-off (2e-8 for
  MNIST) falls in the gap between the exact zeros of always-blank pixels
  (σ ~ 1e-13) and the data's smallest real direction (σ = 7e-3 for [1, X] on
  MNIST: rank 713). float32's own ε would put it at 11 and drop 273 real
  directions, leaving E 0.8% above its minimum. Returned as x's dtype.
  """
  _validate(x, d, 1.0)
  xb = np.asarray(with_bias(x), np.float64)
  targets = np.asarray(d, np.float64).reshape(len(xb), -1)
  u, sigma, vt = np.linalg.svd(xb, full_matrices=False)
  kept = sigma > max(xb.shape) * np.finfo(np.float64).eps * sigma[0]
  w = vt[kept].T @ ((u[:, kept].T @ targets) / sigma[kept, None])
  return jnp.asarray(w.reshape((xb.shape[1],) + d.shape[1:]), x.dtype)


def predict(w: jax.Array, x: jax.Array, threshold: float) -> jax.Array:
  """Class predictions: argmax_j s_j with several nodes, else 1 if s > threshold."""
  s = with_bias(x) @ w
  if w.ndim == 2:
    return jnp.argmax(s, axis=1).astype(jnp.int32)
  return (s > threshold).astype(jnp.int32)
