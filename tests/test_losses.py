"""models/losses.py against the formulas computed independently in NumPy (float64)."""

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
  expected = -np.mean(targets * np.log(p) + (1 - targets) * np.log(1 - p))
  got = losses.binary_cross_entropy(jnp.asarray(logits, jnp.float32), jnp.asarray(targets, jnp.float32))
  np.testing.assert_allclose(got, expected, rtol=RTOL)


def test_binary_cross_entropy_is_stable_for_large_logits():
  got = losses.binary_cross_entropy(jnp.array([[100.0, -100.0]]), jnp.array([[0.0, 1.0]]))
  np.testing.assert_allclose(got, 100.0, rtol=RTOL)


def test_mean_squared_error_is_half_the_mean_over_examples_of_the_summed_squares():
  outputs = jnp.array([[1.0, 2.0], [0.0, -1.0], [3.0, 3.0]])
  targets = jnp.array([[0.0, 2.0], [1.0, 1.0], [3.0, 0.0]])
  # 1/(2*3) * (1 + 0 + 1 + 4 + 0 + 9) = 15/6
  np.testing.assert_allclose(losses.mean_squared_error(outputs, targets), 2.5, rtol=RTOL)
