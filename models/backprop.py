"""Backpropagation written out as the course derives it (the "PA" algorithm).

Notation: layers k = 0..K with n_k nodes; x_j(k) is the output of node j of
layer k, x(0) is the observation. Every layer but the output has a bias node
x_0(k) = 1. ``weights[k-1]`` holds w_ij(k), from node i of layer k-1
(i = 0 the bias) to node j of layer k, shape (n_{k-1} + 1, n_k). All units
are sigmoids:

    s_j(k) = Σ_i w_ij(k) x_i(k-1),    x_j(k) = σ(s_j(k)) = 1 / (1 + e^{-s_j(k)})

Cost of one observation with target d:  E = 1/2 Σ_j (x_j(K) - d_j)².

Backward pass (σ' = σ(1 - σ)):

    δ_j(K) = (x_j(K) - d_j) x_j(K) (1 - x_j(K))
    δ_j(k) = x_j(k) (1 - x_j(k)) Σ_l w_jl(k+1) δ_l(k+1)      (l over layer k+1, j >= 1)
    dE/dw_ij(k) = δ_j(k) x_i(k-1)
    w_ij(k) <- w_ij(k) - c δ_j(k) x_i(k-1)

Every function takes a batch: x is (N, n_0), d is (N, n_K); for N = 1 it is
the sequential algorithm's single observation. The batched gradient is the
mean over the N observations (the gradient of E averaged over them).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from models.classic import with_bias  # the bias node x_0 = 1, as for single layers


class TrainResult(NamedTuple):
  weights: list
  passes: jax.Array  # passes over the sample that were run
  converged: jax.Array  # True if the last pass changed no weight by more than tol


def init_weights(key: jax.Array, sizes, scale: float = 0.1) -> list:
  """Small random weights, uniform in [-scale, scale], for layer sizes (n_0, ..., n_K)."""
  keys = jax.random.split(key, len(sizes) - 1)
  return [
      jax.random.uniform(k, (n_in + 1, n_out), jnp.float32, -scale, scale)
      for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:])
  ]


def forward(weights: list, x: jax.Array) -> list:
  """Feed-forward: returns the node outputs [x(0), x(1), ..., x(K)], each (N, n_k)."""
  outputs = [x]
  for w in weights:
    outputs.append(jax.nn.sigmoid(with_bias(outputs[-1]) @ w))
  return outputs


def cost(weights: list, x: jax.Array, d: jax.Array) -> jax.Array:
  """E = 1/2 Σ_j (x_j(K) - d_j)², averaged over the N observations."""
  out = forward(weights, x)[-1]
  return 0.5 * jnp.sum((out - d) ** 2) / x.shape[0]


def deltas(weights: list, outputs: list, d: jax.Array) -> list:
  """The backward pass: [δ(1), ..., δ(K)], each (N, n_k)."""
  out = outputs[-1]
  delta = (out - d) * out * (1.0 - out)
  result = [delta]
  for k in range(len(weights) - 1, 0, -1):
    x_k = outputs[k]
    # Σ_l w_jl(k+1) δ_l(k+1) for j >= 1: the bias row 0 feeds no earlier node.
    delta = x_k * (1.0 - x_k) * (delta @ weights[k][1:].T)
    result.append(delta)
  return result[::-1]


def gradients(weights: list, x: jax.Array, d: jax.Array) -> list:
  """dE/dw_ij(k) = mean over observations of δ_j(k) x_i(k-1) (with x_0 = 1)."""
  outputs = forward(weights, x)
  return [
      with_bias(x_prev).T @ delta / x.shape[0]
      for x_prev, delta in zip(outputs[:-1], deltas(weights, outputs, d))
  ]


def update(weights: list, x: jax.Array, d: jax.Array, c: float) -> list:
  """One step of the rule w_ij(k) <- w_ij(k) - c dE/dw_ij(k)."""
  return [w - c * g for w, g in zip(weights, gradients(weights, x, d))]


def _max_change(old: list, new: list) -> jax.Array:
  return jnp.max(jnp.stack([jnp.max(jnp.abs(a - b)) for a, b in zip(old, new)]))


def _train(weights, one_pass, tol, max_passes) -> TrainResult:
  """Repeats ``one_pass`` while some weight changed by more than ``tol`` in the last pass."""

  def cond(carry):
    _, passes, change = carry
    return (passes < max_passes) & (change > tol)

  def body(carry):
    weights, passes, _ = carry
    new = one_pass(weights)
    return new, passes + 1, _max_change(weights, new)

  init = (weights, jnp.int32(0), jnp.asarray(jnp.inf, weights[0].dtype))
  weights, passes, change = jax.lax.while_loop(cond, body, init)
  return TrainResult(weights, passes, change <= tol)


def train_sequential(weights, x, d, c, tol=1e-6, max_passes=1000) -> TrainResult:
  """The course's loop: observations one at a time, cycling 1..N, until the weights settle.

  One pass is a ``lax.scan`` over the N observations, each applying ``update``
  to that observation alone; passes repeat (``lax.while_loop``) until no
  weight changed by more than ``tol`` during a pass, or ``max_passes``.
  """

  def one_pass(weights):
    def step(weights, obs):
      xi, di = obs
      return update(weights, xi[None], di[None], c), None

    return jax.lax.scan(step, weights, (x, d))[0]

  return _train(weights, one_pass, tol, max_passes)


def train_batch(weights, x, d, c, tol=1e-6, max_passes=1000) -> TrainResult:
  """The batched variant: each pass is one step on the gradient averaged over all N."""
  return _train(weights, lambda w: update(w, x, d, c), tol, max_passes)
