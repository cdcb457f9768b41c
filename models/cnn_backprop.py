"""Backpropagation through CNN layers, written out by hand.

Shapes: images x (N, H, W, C), kernels w (kh, kw, C, F), stride 1, no padding
('valid'; pad the input first for 'same'). Each ``*_backward`` takes the
gradient g = dE/dy of the layer's output and returns dE/d(inputs).

Convolution (cross-correlation, as in every deep-learning library):
    y[n, i, j, f] = Σ_{a, b, c} x[n, i + a, j + b, c] w[a, b, c, f] + b_f
    dE/dx[n, i + a, j + b, c] += Σ_f g[n, i, j, f] w[a, b, c, f]
    dE/dw[a, b, c, f]  = Σ_{n, i, j} x[n, i + a, j + b, c] g[n, i, j, f]
    dE/db_f            = Σ_{n, i, j} g[n, i, j, f]
The loops run over the kh x kw kernel offsets only; each offset is one matrix
product over all examples and positions at once.

ReLU: y = max(x, 0), dE/dx = g [x > 0].
2x2 max pooling: y[n, i, j, c] = max of the 2x2 window at (2i, 2j); the
gradient is routed to the position of the maximum, zero elsewhere.
"""

import jax
import jax.numpy as jnp


def conv2d_forward(x: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
  kh, kw = w.shape[:2]
  out_h, out_w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
  y = jnp.zeros((x.shape[0], out_h, out_w, w.shape[3]), x.dtype)
  for a in range(kh):
    for bb in range(kw):
      y = y + x[:, a:a + out_h, bb:bb + out_w, :] @ w[a, bb]
  return y + b.reshape(1, 1, 1, -1)


def conv2d_backward(x: jax.Array, w: jax.Array, g: jax.Array):
  """Returns (dE/dx, dE/dw, dE/db) for y = conv2d_forward(x, w, b) and g = dE/dy."""
  kh, kw = w.shape[:2]
  out_h, out_w = g.shape[1:3]
  dx = jnp.zeros_like(x)
  dw = jnp.zeros_like(w)
  for a in range(kh):
    for bb in range(kw):
      dx = dx.at[:, a:a + out_h, bb:bb + out_w, :].add(g @ w[a, bb].T)
      dw = dw.at[a, bb].set(jnp.einsum("nijc,nijf->cf", x[:, a:a + out_h, bb:bb + out_w, :], g))
  return dx, dw, g.sum(axis=(0, 1, 2))


def relu_forward(x: jax.Array) -> jax.Array:
  return jnp.maximum(x, 0.0)


def relu_backward(x: jax.Array, g: jax.Array) -> jax.Array:
  return jnp.where(x > 0, g, 0.0)


def _windows(x: jax.Array) -> jax.Array:
  """(N, H, W, C) -> (N, H/2, W/2, C, 4): the four entries of each 2x2 window."""
  n, h, w, c = x.shape
  x = x.reshape(n, h // 2, 2, w // 2, 2, c)
  return x.transpose(0, 1, 3, 5, 2, 4).reshape(n, h // 2, w // 2, c, 4)


def max_pool_forward(x: jax.Array) -> jax.Array:
  """2x2 max pooling with stride 2 (H and W even)."""
  return _windows(x).max(axis=-1)


def max_pool_backward(x: jax.Array, g: jax.Array) -> jax.Array:
  """Routes each g[n, i, j, c] to the arg-max of its window (the first one on ties)."""
  n, h, w, c = x.shape
  routed = jax.nn.one_hot(jnp.argmax(_windows(x), axis=-1), 4, dtype=g.dtype) * g[..., None]
  routed = routed.reshape(n, h // 2, w // 2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3)
  return routed.reshape(n, h, w, c)
