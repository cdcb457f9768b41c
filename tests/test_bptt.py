"""Backpropagation through time by hand (models/bptt.py) against jax.grad in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import bptt

N, D, H, K = 3, 2, 4, 3


def _problem(steps: int, kind: str, seed: int = 0):
  keys = jax.random.split(jax.random.key(seed), 7)
  normal = lambda k, shape: jax.random.normal(k, shape, jnp.float64)  # noqa: E731
  params = bptt.Params(W=normal(keys[0], (H, D)), U=0.6 * normal(keys[1], (H, H)),
                       b=normal(keys[2], (H,)), V=normal(keys[3], (K, H)), c=normal(keys[4], (K,)))
  xs = normal(keys[5], (steps, N, D))
  if kind == "squared":
    targets = normal(keys[6], (steps, N, K))
  else:  # one-hot classes
    targets = jax.nn.one_hot(jax.random.randint(keys[6], (steps, N), 0, K), K, dtype=jnp.float64)
  return params, xs, targets


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
@pytest.mark.parametrize("on", bptt.ON)
@pytest.mark.parametrize("kind", bptt.LOSSES)
@pytest.mark.parametrize("steps", [1, 3, 10])
def test_hand_gradients_equal_autodiff_to_1e_12(steps, kind, on, activation):
  with jax.enable_x64(True):
    params, xs, targets = _problem(steps, kind, seed=steps)
    hand = bptt.gradients(params, xs, targets, kind, on, activation)
    auto = jax.grad(bptt.loss)(params, xs, targets, kind, on, activation)
    for got, want in zip(hand, auto):
      np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_the_last_delta_is_the_output_error_through_v_and_the_slope():
  """δ_T = Vᵀ ε_T ⊙ f'(a_T): the recurrence's first step, by hand."""
  with jax.enable_x64(True):
    params, xs, targets = _problem(4, "squared")
    values = bptt.forward(params, xs)
    errors = bptt.output_errors(values.y, targets, "squared", "last")
    delta = bptt.deltas(params, values, errors)
    np.testing.assert_allclose(delta[-1], (values.y[-1] - targets[-1]) / N @ params.V
                               * (1 - np.tanh(values.a[-1]) ** 2), rtol=1e-12)
    assert not np.any(errors[:-1])  # the loss is on the last step only
