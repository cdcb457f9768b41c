"""The recurrent cells against NumPy in float64; their hand-written BPTT against autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import activations
from models import cells

T, B, D, H = 5, 3, 4, 6


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def numpy_layer(name: str, params: dict, xs: np.ndarray) -> np.ndarray:
  """The hidden states of each cell's equations, one gate matrix at a time, in float64."""
  params = {k: np.asarray(v, np.float64) for k, v in params.items()}
  blocks = lambda a, k: a[..., k * H:(k + 1) * H]  # noqa: E731  gate k's columns
  W, U, b = params["W"], params["U"], params["b"]
  h, c, out = np.zeros((B, H)), np.zeros((B, H)), []
  for x in np.asarray(xs, np.float64):
    pre = lambda k, x=x, h=h: x @ blocks(W, k) + h @ blocks(U, k) + blocks(b, k)  # noqa: E731
    if name == "rnn":
      h = np.tanh(pre(0))
    elif name == "lstm":
      i, f, g, o = _sigmoid(pre(0)), _sigmoid(pre(1)), np.tanh(pre(2)), _sigmoid(pre(3))
      c = f * c + i * g
      h = o * np.tanh(c)
    else:  # gru: the reset gate multiplies the recurrent part, its bias included
      bh = params["b_h"]
      r = _sigmoid(pre(0) + blocks(bh, 0))
      u = _sigmoid(pre(1) + blocks(bh, 1))
      n = np.tanh(x @ blocks(W, 2) + blocks(b, 2) + r * (h @ blocks(U, 2) + blocks(bh, 2)))
      h = (1 - u) * n + u * h
    out.append(h)
  return np.stack(out)


CELLS = {"rnn": cells.elman(), "lstm": cells.LSTM, "gru": cells.GRU}


def _params(cell: cells.Cell, key, steps: int = T, dtype=jnp.float64):
  keys = jax.random.split(key, 5)
  columns = cell.gates * H
  params = {"W": jax.random.normal(keys[0], (D, columns), dtype),
            "U": 0.5 * jax.random.normal(keys[1], (H, columns), dtype),
            "b": jax.random.normal(keys[2], (columns,), dtype)}
  if cell.recurrent_bias:
    params["b_h"] = jax.random.normal(keys[3], (columns,), dtype)
  return params, jax.random.normal(keys[4], (steps, B, D), dtype)


@pytest.mark.parametrize("name", CELLS)
def test_each_cell_equals_its_equations_in_numpy(name):
  with jax.enable_x64(True):
    params, xs = _params(CELLS[name], jax.random.key(0))
    np.testing.assert_allclose(cells.scan_layer(CELLS[name], params, xs),
                               numpy_layer(name, params, xs), rtol=1e-12, atol=1e-12)


def _elman_relu():
  entry = activations.ACTIVATIONS.get("relu").bind()
  return cells.elman(entry.fn, entry.derivative)


@pytest.mark.parametrize("steps", [1, 2, 7])
@pytest.mark.parametrize("name", [*CELLS, "rnn_relu"])
def test_backpropagation_through_time_equals_autodiff_in_float64(name, steps):
  """The hand-written VJP against jax.grad of the same scan, for every parameter and input.

  The loss weighs every step's state (so every δ_t gets an outside gradient)
  through a nonlinearity; float64 leaves only rounding: 1e-12 relative.
  """
  cell = _elman_relu() if name == "rnn_relu" else CELLS[name]
  with jax.enable_x64(True):
    params, xs = _params(cell, jax.random.key(steps), steps)
    weights = jax.random.normal(jax.random.key(9), (steps, B, H), jnp.float64)

    def loss(layer):
      return lambda p, x: jnp.sum(jnp.sin(layer(cell, p, x)) * weights)

    hand = jax.grad(loss(cells.scan_layer), (0, 1))(params, xs)
    auto = jax.grad(loss(cells.reference_layer), (0, 1))(params, xs)
    for got, want in zip(jax.tree.leaves(hand), jax.tree.leaves(auto)):
      np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * float(jnp.abs(want).max()))


@pytest.mark.parametrize("name", CELLS)
def test_a_vmapped_member_axis_gives_each_members_own_gradient(name):
  """K = 3 members with their own parameters under vmap, as sweeps train them."""
  cell = CELLS[name]
  members = [_params(cell, jax.random.key(k), dtype=jnp.float32) for k in range(3)]
  stacked = jax.tree.map(lambda *a: jnp.stack(a), *[p for p, _ in members])
  xs = members[0][1]

  def loss(p):
    return jnp.sum(cells.scan_layer(cell, p, xs)[-1] ** 2)

  together = jax.vmap(jax.grad(loss))(stacked)
  assert cells.scan_layer(cell, members[0][0], xs).shape == (T, B, H)
  for k, (p, _) in enumerate(members):
    alone = jax.grad(loss)(p)
    for got, want in zip(jax.tree.leaves(together), jax.tree.leaves(alone)):
      np.testing.assert_allclose(got[k], want, rtol=1e-5, atol=1e-6)  # float32, one program


def test_the_gates_logistic_is_the_logistic():
  """σ(x) = (1 + tanh(x/2)) / 2 on the sigmoid blocks, tanh on the others (float32: 1e-6)."""
  z = jnp.linspace(-20.0, 20.0, 4 * 50).reshape(1, -1)
  gates = cells._scaled_tanh_gates(z, (False, True))
  np.testing.assert_allclose(gates[:, :100], jax.nn.sigmoid(z[:, :100]), atol=1e-6)
  np.testing.assert_allclose(gates[:, 100:], jnp.tanh(z[:, 100:]), atol=1e-6)
