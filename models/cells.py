"""Recurrent cells and a layer scanned over time, with backpropagation through time by hand.

A layer reads a sequence x_1..x_T (each (B, D)) and keeps a hidden state h_t
(B, H), h_0 = 0. Every cell splits its work the same way: the input part
z^x_t = x_t W + b (B, G H) is one matmul over all T steps before the loop; the
recurrent part z^h_t = h_{t-1} U (B, G H) is the only matmul inside it; the
cell's elementwise update combines them. G is the cell's number of gate
blocks. The cells (σ the logistic function, ⊙ the elementwise product):

Elman (G = 1), with any activation f of the activation table (tanh by default):
    a_t = z^x_t + z^h_t,    h_t = f(a_t)
LSTM (Hochreiter & Schmidhuber 1997; G = 4 blocks i, f, g, o):
    [i, f, g, o] = [σ, σ, tanh, σ](z^x_t + z^h_t)
    c_t = f ⊙ c_{t-1} + i ⊙ g,    h_t = o ⊙ tanh(c_t)
GRU (Cho et al. 2014, in PyTorch's and cuDNN's form; G = 3 blocks r, u, n;
z^h_t = h_{t-1} U + b_h, the reset gate applied after the recurrent matmul):
    r = σ(z^x_r + z^h_r),  u = σ(z^x_u + z^h_u),  n = tanh(z^x_n + r ⊙ z^h_n)
    h_t = (1 - u) ⊙ n + u ⊙ h_{t-1}

Backpropagation through time (``scan_layer``'s VJP) runs the recurrence
backwards. With g_t = ∂L/∂h_t from above (the layer's outputs) and
dh_t = g_t + (the gradient reaching h_t from step t+1), each cell's
``backward`` gives the gradients of its pre-activations from what its
``forward`` kept (nothing is recomputed):

Elman:  δ_t = dh_t ⊙ f'(a_t)                      (dz^x_t = dz^h_t = δ_t)
LSTM:   dc_t = dc_{t+1} ⊙ f_{t+1} + dh_t ⊙ o ⊙ (1 - tanh²c_t)
        δ = [dc ⊙ g ⊙ i(1-i), dc ⊙ c_{t-1} ⊙ f(1-f), dc ⊙ i ⊙ (1-g²), dh ⊙ tanh c_t ⊙ o(1-o)]
GRU:    δ_n = dh ⊙ (1-u) ⊙ (1-n²),  δ_u = dh ⊙ (h_{t-1} - n) ⊙ u(1-u),
        δ_r = δ_n ⊙ z^h_n ⊙ r(1-r);  dz^x = [δ_r, δ_u, δ_n], dz^h = [δ_r, δ_u, δ_n ⊙ r],
        and h_{t-1} also gets dh ⊙ u directly.

The gradient carried to step t-1 is dz^h_t Uᵀ (plus GRU's direct term);
after the loop, ∂L/∂W = Σ_t x_tᵀ dz^x_t, ∂L/∂b = Σ_t dz^x_t,
∂L/∂U = Σ_t h_{t-1}ᵀ dz^h_t, ∂L/∂x_t = dz^x_t Wᵀ, each one matmul over all
steps. These are the Elman network's δ_t = (Uᵀ δ_{t+1} + ∂L/∂h_t) ⊙ f'(a_t)
(``models/bptt.py`` writes them out for one sequence) generalized to gates.

The gates' logistic functions are computed as σ(x) = (1 + tanh(x/2)) / 2, one
tanh over all G H columns (XLA:CPU vectorizes one transcendental over a whole
array far better than several over its slices).
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp


class Cell(NamedTuple):
  """A recurrent cell: its gate blocks G, one step forward and one step back.

  ``forward(zx, zh, carry) -> (carry, h, saved)``: one step from the input and
  recurrent pre-activations (B, G H) and the carry (h, or (h, c) for the LSTM).
  ``backward(saved, dh, dcarry) -> (dzx, dzh, dcarry, dh_direct)``: the
  pre-activations' gradients from ``dh`` = ∂L/∂h_t; ``dzh`` None when equal to
  ``dzx``; ``dcarry`` the LSTM's dc (else None); ``dh_direct`` the part of
  ∂L/∂h_{t-1} that does not go through U (GRU), else None.
  """

  name: str
  gates: int
  forward: Callable
  backward: Callable
  recurrent_bias: bool = False  # z^h = h U + b_h (the GRU's b_h sits inside r ⊙ z^h_n)

  def initial_carry(self, batch: int, width: int, dtype):
    h = jnp.zeros((batch, width), dtype)
    return (h, h) if self.name == "lstm" else h

  def hidden(self, carry) -> jax.Array:
    return carry[0] if self.name == "lstm" else carry


def _scaled_tanh_gates(z: jax.Array, tanh_blocks: tuple[bool, ...]) -> jax.Array:
  """σ on the sigmoid blocks, tanh on the others, as one tanh: σ(x) = (1 + tanh(x/2)) / 2."""
  width = z.shape[-1] // len(tanh_blocks)
  scale = jnp.concatenate([jnp.full((1, width), 1.0 if t else 0.5, z.dtype) for t in tanh_blocks],
                          axis=-1)
  return jnp.tanh(z * scale) * scale + (1.0 - scale)


@functools.lru_cache(maxsize=None)
def elman(activation: Callable = jnp.tanh, derivative: Callable | None = None) -> Cell:
  """The Elman cell h_t = f(z^x_t + z^h_t); f' from ``derivative`` (default: tanh's, 1 - h²)."""

  def forward(zx, zh, h):
    a = zx + zh
    h = activation(a)
    return h, h, (h if derivative is None else a)

  def backward(saved, dh, dcarry):
    del dcarry
    slope = 1.0 - saved * saved if derivative is None else derivative(saved)
    return dh * slope, None, None, None

  return Cell("rnn", 1, forward, backward)


def _lstm_forward(zx, zh, carry):
  _, c = carry
  gates = _scaled_tanh_gates(zx + zh, (False, False, True, False))
  i, f, g, o = jnp.split(gates, 4, axis=-1)
  c_new = f * c + i * g
  tanh_c = jnp.tanh(c_new)
  h = o * tanh_c
  return (h, c_new), h, (gates, c, tanh_c)


def _lstm_backward(saved, dh, dc_next):
  gates, c_prev, tanh_c = saved
  i, f, g, o = jnp.split(gates, 4, axis=-1)
  dc = dc_next + dh * o * (1.0 - tanh_c * tanh_c)
  # δ over all 4H columns at once (one fusion, not four and a concatenation):
  # [dc, dc, dc, dh] ⊙ [g, c_{t-1}, i, tanh c_t] ⊙ the gates' slopes.
  width = dh.shape[-1]
  block = jnp.arange(4 * width)[None] // width
  slope = jnp.where(block == 2, 1.0 - gates * gates, gates * (1.0 - gates))
  partner = jnp.concatenate([g, c_prev, i, tanh_c], axis=-1)
  upstream = jnp.concatenate([dc, dc, dc, dh], axis=-1)
  return upstream * partner * slope, None, dc * f, None


def _gru_forward(zx, zh, h):
  xr, xu, xn = jnp.split(zx, 3, axis=-1)
  hr, hu, hn = jnp.split(zh, 3, axis=-1)
  r, u = jnp.split(_scaled_tanh_gates(jnp.concatenate([xr + hr, xu + hu], -1), (False, False)),
                   2, axis=-1)
  n = jnp.tanh(xn + r * hn)
  h_new = (1.0 - u) * n + u * h
  return h_new, h_new, (r, u, n, hn, h)


def _gru_backward(saved, dh, dcarry):
  del dcarry
  r, u, n, hn, h_prev = saved
  dn = dh * (1.0 - u) * (1.0 - n * n)
  du = dh * (h_prev - n) * u * (1.0 - u)
  dr = dn * hn * r * (1.0 - r)
  return (jnp.concatenate([dr, du, dn], -1), jnp.concatenate([dr, du, dn * r], -1), None,
          dh * u)


LSTM = Cell("lstm", 4, _lstm_forward, _lstm_backward)
GRU = Cell("gru", 3, _gru_forward, _gru_backward, recurrent_bias=True)


def _input_part(params: dict, xs: jax.Array) -> jax.Array:
  """z^x_t = x_t W + b for every step at once: (T, B, D) -> (T, B, G H)."""
  steps, batch, _ = xs.shape
  return (xs.reshape(steps * batch, -1) @ params["W"] + params["b"][None]).reshape(steps, batch,
                                                                                 -1)


def _recurrent_part(cell: Cell, params: dict, h: jax.Array) -> jax.Array:
  zh = h @ params["U"]
  return zh + params["b_h"][None] if cell.recurrent_bias else zh


def _run(cell: Cell, params: dict, xs: jax.Array, keep: bool):
  """The forward scan: hidden states (T, B, H), and each step's ``saved`` when ``keep``."""
  width = params["U"].shape[0]

  def step(carry, zx):
    carry, h, saved = cell.forward(zx, _recurrent_part(cell, params, cell.hidden(carry)), carry)
    return carry, ((h, saved) if keep else h)

  carry = cell.initial_carry(xs.shape[1], width, jnp.result_type(xs, params["W"], params["U"]))
  return jax.lax.scan(step, carry, _input_part(params, xs))[1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def scan_layer(cell: Cell, params: dict, xs: jax.Array) -> jax.Array:
  """The hidden states h_1..h_T (T, B, H) of a layer reading xs (T, B, D) from h_0 = 0.

  ``params``: W (D, G H), U (H, G H), b (G H,) and, for the GRU, b_h (G H,).
  Its gradient is backpropagation through time written out (module docstring).
  """
  return _run(cell, params, xs, keep=False)


def _scan_layer_forward(cell, params, xs):
  hs, saved = _run(cell, params, xs, keep=True)
  return hs, (params, xs, hs, saved)


def _scan_layer_backward(cell, residuals, dhs):
  params, xs, hs, saved = residuals
  u_transposed = params["U"].T

  def step(carry, inputs):
    dh_later, dcarry = carry
    dh_out, saved_t = inputs
    dzx, dzh, dcarry, dh_direct = cell.backward(saved_t, dh_out + dh_later, dcarry)
    dzh = dzx if dzh is None else dzh
    dh_earlier = dzh @ u_transposed
    if dh_direct is not None:
      dh_earlier = dh_earlier + dh_direct
    return (dh_earlier, dcarry), ((dzx, dzh) if cell.recurrent_bias else dzx)

  dh0 = jnp.zeros_like(hs[0])
  init = (dh0, dh0 if cell.name == "lstm" else None)
  grads = jax.lax.scan(step, init, (dhs, saved), reverse=True)[1]
  dzx, dzh = grads if cell.recurrent_bias else (grads, grads)
  steps, batch, _ = xs.shape
  flat = lambda a: a.reshape(steps * batch, -1)  # noqa: E731
  h_before = jnp.concatenate([jnp.zeros_like(hs[:1]), hs[:-1]])  # h_0 .. h_{T-1}
  d_params = {"W": flat(xs).T @ flat(dzx), "U": flat(h_before).T @ flat(dzh),
              "b": flat(dzx).sum(0)}
  if cell.recurrent_bias:
    d_params["b_h"] = flat(dzh).sum(0)
  return d_params, (flat(dzx) @ params["W"].T).reshape(xs.shape)


scan_layer.defvjp(_scan_layer_forward, _scan_layer_backward)


def reference_layer(cell: Cell, params: dict, xs: jax.Array,
                    probes: jax.Array | None = None) -> jax.Array:
  """``scan_layer`` as a plain ``lax.scan`` differentiated by autodiff (the check of its VJP).

  ``probes`` (T, B, H), zeros, are added to each h_t inside the recurrence, so
  ∂L/∂probes_t is the total ∂L/∂h_t, through every later step (the
  vanishing-gradient figure).
  """
  width = params["U"].shape[0]
  if probes is None:
    probes = jnp.zeros((xs.shape[0], xs.shape[1], width), xs.dtype)

  def step(carry, inputs):
    zx, probe = inputs
    carry, h, _ = cell.forward(zx, _recurrent_part(cell, params, cell.hidden(carry)), carry)
    h = h + probe
    carry = (h, carry[1]) if cell.name == "lstm" else h
    return carry, h

  carry = cell.initial_carry(xs.shape[1], width, jnp.result_type(xs, params["W"], params["U"]))
  return jax.lax.scan(step, carry, (_input_part(params, xs), probes))[1]
