"""models/losses.py against the formulas computed independently in NumPy (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import losses

RTOL = 1e-5  # float32 losses vs float64 references: a few ulps of accumulated rounding


@pytest.fixture
def batch():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(6, 4)) * 3
  labels = rng.integers(0, 4, size=6)
  return logits, labels


def test_softmax_cross_entropy_matches_hand_computation(batch):
  logits, labels = batch
  log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  expected = -np.mean(log_softmax[np.arange(6), labels])
  got = losses.softmax_cross_entropy(jnp.asarray(logits, jnp.float32), jnp.asarray(labels))
  np.testing.assert_allclose(got, expected, rtol=RTOL)


def test_softmax_cross_entropy_of_a_known_case():
  # Two equal logits: log 2 per example.
  got = losses.softmax_cross_entropy(jnp.zeros((3, 2)), jnp.array([0, 1, 0]))
  np.testing.assert_allclose(got, np.log(2.0), rtol=RTOL)


def test_binary_cross_entropy_matches_hand_computation(batch):
  logits, labels = batch
  targets = np.eye(4)[labels]
  p = 1 / (1 + np.exp(-logits))
  expected = -np.sum(targets * np.log(p) + (1 - targets) * np.log(1 - p)) / 6
  got = losses.binary_cross_entropy(jnp.asarray(logits, jnp.float32), jnp.asarray(targets, jnp.float32))
  np.testing.assert_allclose(got, expected, rtol=RTOL)


def test_binary_cross_entropy_is_stable_for_large_logits():
  got = losses.binary_cross_entropy(jnp.array([[100.0, -100.0]]), jnp.array([[0.0, 1.0]]))
  np.testing.assert_allclose(got, 200.0, rtol=RTOL)  # two outputs, each -log σ(-100) = 100


def test_mean_squared_error_is_half_the_mean_over_examples_of_the_summed_squares():
  outputs = jnp.array([[1.0, 2.0], [0.0, -1.0], [3.0, 3.0]])
  targets = jnp.array([[0.0, 2.0], [1.0, 1.0], [3.0, 0.0]])
  # 1/(2*3) * (1 + 0 + 1 + 4 + 0 + 9) = 15/6
  np.testing.assert_allclose(losses.mean_squared_error(outputs, targets), 2.5, rtol=RTOL)


def _targets(name, rng, n, k):
  if name == "softmax_cross_entropy":
    return np.eye(k)[rng.integers(0, k, size=n)]  # a distribution per example
  if name == "binary_cross_entropy":
    return rng.uniform(size=(n, k))
  return rng.normal(size=(n, k))


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_gradient_wrt_preactivations_is_output_minus_target_over_n(name):
  rng = np.random.default_rng(1)
  loss = losses.LOSSES[name]
  z = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
  y = jnp.asarray(_targets(name, rng, 5, 3), jnp.float32)
  grad = jax.grad(loss.fn)(z, y)
  np.testing.assert_allclose(grad, (loss.output(z) - y) / 5, rtol=RTOL, atol=1e-7)


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_single_layer_weight_gradient_is_the_course_formula(name):
  """dL/dw_ij = (1/N) Σ_n (ŷ_nj - y_nj) x_ni for z = x W + b."""
  rng = np.random.default_rng(2)
  loss = losses.LOSSES[name]
  x = jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
  b = jnp.asarray(rng.normal(size=(1, 3)), jnp.float32)
  y = jnp.asarray(_targets(name, rng, 6, 3), jnp.float32)
  grad_w, grad_b = jax.grad(lambda w, b: loss.fn(x @ w + b, y), argnums=(0, 1))(w, b)
  error = loss.output(x @ w + b) - y
  np.testing.assert_allclose(grad_w, x.T @ error / 6, rtol=RTOL, atol=1e-6)
  np.testing.assert_allclose(grad_b, error.mean(axis=0, keepdims=True), rtol=RTOL, atol=1e-6)
