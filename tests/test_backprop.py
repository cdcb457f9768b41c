"""Hand-written backpropagation against jax.grad (float32) and finite differences (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import backprop
from models import cnn_backprop

# float32: the hand and autodiff gradients are the same products summed in a
# different order; agreement to ~1e-5 relative of the largest entry.
RTOL32 = 1e-5

SIZES = [(2, 2, 1), (3, 5, 2), (4, 8, 6, 3), (5, 3, 4, 2, 6)]


def _problem(sizes, n=7, seed=0, scale=1.0):
  kw, kx, kd = jax.random.split(jax.random.key(seed), 3)
  weights = backprop.init_weights(kw, sizes, scale=scale)
  x = jax.random.normal(kx, (n, sizes[0]))
  d = jax.random.uniform(kd, (n, sizes[-1]))
  return weights, x, d


def _assert_close(got, want, rtol):
  for g, w in zip(got, want):
    assert g.shape == w.shape
    np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * float(jnp.abs(w).max()))


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("n", [1, 7])
def test_hand_gradients_equal_autodiff(sizes, n):
  weights, x, d = _problem(sizes, n=n)
  _assert_close(backprop.gradients(weights, x, d), jax.grad(backprop.cost)(weights, x, d), RTOL32)


@pytest.mark.parametrize("sizes", SIZES)
def test_hand_gradients_equal_central_differences_in_float64(sizes):
  with jax.enable_x64(True):
    weights, x, d = _problem(sizes, n=3, seed=1)
    weights = [w.astype(jnp.float64) for w in weights]
    x, d = x.astype(jnp.float64), d.astype(jnp.float64)
    hand = backprop.gradients(weights, x, d)
    cost = jax.jit(backprop.cost)
    eps = 1e-6
    for k, w in enumerate(weights):
      numeric = np.zeros(w.shape)
      for idx in np.ndindex(w.shape):
        plus = [v.at[idx].add(eps) if i == k else v for i, v in enumerate(weights)]
        minus = [v.at[idx].add(-eps) if i == k else v for i, v in enumerate(weights)]
        numeric[idx] = (cost(plus, x, d) - cost(minus, x, d)) / (2 * eps)
      # Central differences: O(eps²) ~ 1e-12 truncation, ~1e-10 rounding / eps.
      np.testing.assert_allclose(hand[k], numeric, rtol=1e-6, atol=1e-9)


def test_sequential_training_fits_and_stops_when_weights_settle():
  x = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
  d = jnp.array([[0.1], [0.9], [0.9], [0.9]])  # OR, inside the sigmoid's range
  weights = backprop.init_weights(jax.random.key(0), (2, 3, 1))
  result = jax.jit(backprop.train_sequential, static_argnums=(4, 5))(
      weights, x, d, 2.0, 1e-4, 20000
  )
  assert bool(result.converged) and int(result.passes) < 20000  # measured: 4035 passes
  out = backprop.forward(result.weights, x)[-1]
  np.testing.assert_allclose(out, d, atol=0.01)


def test_sequential_pass_equals_one_update_per_observation():
  weights, x, d = _problem((3, 4, 2), n=5)
  expected = weights
  for i in range(5):
    expected = backprop.update(expected, x[i:i + 1], d[i:i + 1], 0.5)
  result = backprop.train_sequential(weights, x, d, 0.5, tol=-1.0, max_passes=1)
  assert int(result.passes) == 1
  _assert_close(result.weights, expected, 1e-6)


def test_batched_training_descends_the_mean_cost():
  weights, x, d = _problem((3, 4, 2), n=16)
  result = backprop.train_batch(weights, x, d, 1.0, tol=0.0, max_passes=200)
  assert int(result.passes) == 200
  # measured: 0.148 -> 0.079
  assert float(backprop.cost(result.weights, x, d)) < 0.6 * float(backprop.cost(weights, x, d))


def test_linear_layers_collapse_into_one():
  """Without nonlinearities, x W1 + b1 then W2 + b2 is x (W1 W2) + (b1 W2 + b2)."""
  k = jax.random.split(jax.random.key(3), 5)
  x = jax.random.normal(k[0], (6, 4))
  w1, b1 = jax.random.normal(k[1], (4, 5)), jax.random.normal(k[2], (1, 5))
  w2, b2 = jax.random.normal(k[3], (5, 3)), jax.random.normal(k[4], (1, 3))
  two_layers = (x @ w1 + b1) @ w2 + b2
  one_layer = x @ (w1 @ w2) + (b1 @ w2 + b2)
  np.testing.assert_allclose(two_layers, one_layer, rtol=1e-5, atol=1e-5)


# --- CNN layers -------------------------------------------------------------


def _vjp_check(forward, backward, *shapes, seed=0):
  keys = jax.random.split(jax.random.key(seed), len(shapes) + 1)
  args = [jax.random.normal(k, s) for k, s in zip(keys, shapes)]
  y, vjp = jax.vjp(forward, *args)
  g = jax.random.normal(keys[-1], y.shape)
  _assert_close(backward(*args, g), vjp(g), 2e-5)


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_conv_forward_equals_lax_and_backward_equals_autodiff(kernel):
  x = jax.random.normal(jax.random.key(0), (2, 9, 8, 3))
  w = jax.random.normal(jax.random.key(1), (kernel, kernel, 3, 4))
  b = jax.random.normal(jax.random.key(2), (4,))
  reference = jax.lax.conv_general_dilated(
      x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
  ) + b.reshape(1, 1, 1, -1)
  np.testing.assert_allclose(cnn_backprop.conv2d_forward(x, w, b), reference, rtol=2e-5, atol=2e-5)
  _vjp_check(
      cnn_backprop.conv2d_forward,
      lambda x, w, b, g: cnn_backprop.conv2d_backward(x, w, g),
      (2, 9, 8, 3), (kernel, kernel, 3, 4), (4,),
  )


def test_relu_backward_equals_autodiff():
  _vjp_check(cnn_backprop.relu_forward, lambda x, g: (cnn_backprop.relu_backward(x, g),), (2, 6, 6, 3))


def test_max_pool_forward_equals_reduce_window_and_routes_gradient_to_the_max():
  x = jax.random.normal(jax.random.key(4), (2, 6, 8, 3))  # continuous: no ties
  reference = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
  np.testing.assert_array_equal(cnn_backprop.max_pool_forward(x), reference)
  _vjp_check(
      cnn_backprop.max_pool_forward, lambda x, g: (cnn_backprop.max_pool_backward(x, g),),
      (2, 6, 8, 3), seed=4,
  )
  g = jnp.ones((2, 3, 4, 3))
  routed = cnn_backprop.max_pool_backward(x, g)
  assert float(routed.sum()) == g.size  # one position per window
  np.testing.assert_array_equal(routed != 0, x == jnp.repeat(jnp.repeat(reference, 2, 1), 2, 2))
