"""Backpropagation through time written out, for the Elman network.

The network reads a sequence x_1..x_T (each a column of D inputs) with H
hidden units and K outputs, from h_0 = 0:

    a_t = W x_t + U h_{t-1} + b,    h_t = f(a_t),    y_t = V h_t + c

f is any activation of the table (tanh by default). The loss is on the last
step, L = ℓ(y_T, d_T), or on every step, L = Σ_t ℓ(y_t, d_t), with ℓ squared,
½ ‖y - d‖², or softmax cross-entropy, -Σ_k d_k log softmax(y)_k (d one-hot or
a distribution). Both give ∂ℓ/∂y = ŷ - d (ŷ = y, or softmax(y)).

Backward, from ε_t = ∂L/∂y_t (zero on steps without a loss):

    ∂L/∂h_t (direct) = Vᵀ ε_t
    δ_T = Vᵀ ε_T ⊙ f'(a_T)
    δ_t = (Uᵀ δ_{t+1} + Vᵀ ε_t) ⊙ f'(a_t)          for t = T-1, ..., 1

    ∂L/∂W = Σ_t δ_t x_tᵀ     ∂L/∂U = Σ_t δ_t h_{t-1}ᵀ     ∂L/∂b = Σ_t δ_t
    ∂L/∂V = Σ_t ε_t h_tᵀ     ∂L/∂c = Σ_t ε_t

U's gradient carries δ back one step at a time: each step multiplies it by
Uᵀ and f'(a_t), so over many steps it shrinks (or grows) geometrically, the
vanishing (exploding) gradient. Every function takes a batch of N sequences,
xs (T, N, D), as rows, and averages the loss and gradients over them.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from models import activations


class Params(NamedTuple):
  """W (H, D), U (H, H), b (H,), V (K, H), c (K,)."""

  W: jax.Array
  U: jax.Array
  b: jax.Array
  V: jax.Array
  c: jax.Array


class Forward(NamedTuple):
  """Every step's values, stacked over t = 1..T: a and h (T, N, H), y (T, N, K)."""

  a: jax.Array
  h: jax.Array
  y: jax.Array


LOSSES = ("squared", "cross_entropy")
ON = ("last", "every")


def forward(params: Params, xs: jax.Array, activation: str = "tanh") -> Forward:
  """a_t, h_t, y_t for every step of xs (T, N, D)."""
  f = activations.ACTIVATIONS.get(activation).bind().fn

  def step(h, x):
    a = x @ params.W.T + h @ params.U.T + params.b[None]
    h = f(a)
    return h, (a, h, h @ params.V.T + params.c[None])

  h0 = jnp.zeros((xs.shape[1], params.U.shape[0]), xs.dtype)
  return Forward(*jax.lax.scan(step, h0, xs)[1])


def _weights(ys: jax.Array, on: str) -> jax.Array:
  """1 on the steps that carry a loss, else 0: (T, 1, 1)."""
  steps = jnp.arange(ys.shape[0])
  return (steps == ys.shape[0] - 1 if on == "last" else steps >= 0)[:, None, None].astype(ys.dtype)


def loss(params: Params, xs: jax.Array, targets: jax.Array, kind: str = "squared",
         on: str = "last", activation: str = "tanh") -> jax.Array:
  """L averaged over the N sequences; ``targets`` d_t (T, N, K) (only d_T is read with "last")."""
  ys = forward(params, xs, activation).y
  if kind == "squared":
    per_step = 0.5 * jnp.sum((ys - targets) ** 2, axis=-1, keepdims=True)
  else:
    per_step = -jnp.sum(targets * jax.nn.log_softmax(ys), axis=-1, keepdims=True)
  return jnp.sum(per_step * _weights(ys, on)) / xs.shape[1]


def output_errors(ys: jax.Array, targets: jax.Array, kind: str, on: str) -> jax.Array:
  """ε_t = ∂L/∂y_t = (ŷ_t - d_t) / N on the steps with a loss, else 0: (T, N, K)."""
  predicted = ys if kind == "squared" else jax.nn.softmax(ys)
  return (predicted - targets) * _weights(ys, on) / ys.shape[1]


def deltas(params: Params, values: Forward, errors: jax.Array,
           activation: str = "tanh") -> jax.Array:
  """δ_t = (Uᵀ δ_{t+1} + Vᵀ ε_t) ⊙ f'(a_t), from t = T down to 1 (δ_{T+1} = 0): (T, N, H)."""
  slope = activations.ACTIVATIONS.get(activation).bind().derivative

  def step(delta_later, inputs):
    a, error = inputs
    delta = (delta_later @ params.U + error @ params.V) * slope(a)
    return delta, delta

  zero = jnp.zeros_like(values.a[0])
  return jax.lax.scan(step, zero, (values.a, errors), reverse=True)[1]


def gradients(params: Params, xs: jax.Array, targets: jax.Array, kind: str = "squared",
              on: str = "last", activation: str = "tanh") -> Params:
  """∂L/∂W, ∂L/∂U, ∂L/∂b, ∂L/∂V, ∂L/∂c as sums over steps of the terms above."""
  values = forward(params, xs, activation)
  errors = output_errors(values.y, targets, kind, on)
  delta = deltas(params, values, errors, activation)
  h_before = jnp.concatenate([jnp.zeros_like(values.h[:1]), values.h[:-1]])
  outer = lambda left, right: jnp.einsum("tnh,tnd->hd", left, right)  # noqa: E731  Σ_t Σ_n
  return Params(W=outer(delta, xs), U=outer(delta, h_before), b=delta.sum((0, 1)),
                V=outer(errors, values.h), c=errors.sum((0, 1)))
