"""Exact metrics: counts, masking, and evaluation that neither drops nor repeats examples."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import steps
from models import metrics


def test_accuracy():
  logits = jnp.array([[0.0, 1.0], [2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
  assert float(metrics.accuracy(logits, jnp.array([1, 0, 0, 0]))) == pytest.approx(0.75)


def test_counts_ignore_masked_examples():
  logits = jnp.array([[0.0, 5.0], [5.0, 0.0], [5.0, 0.0]])
  labels = jnp.array([1, 0, 1])
  counts = metrics.counts(logits, labels, jnp.array([True, True, False]))
  assert float(counts.count) == 2
  assert float(counts.correct) == 2
  result = counts.compute()
  assert result["accuracy"] == 1.0
  expected_loss = float(np.log1p(np.exp(-5.0)))  # both kept examples: -log softmax = log(1 + e^-5)
  assert result["loss"] == pytest.approx(expected_loss, rel=1e-5)


@pytest.mark.parametrize("batch_size", [1, 7, 10, 64])
def test_evaluate_counts_every_example_once(batch_size):
  """Padding to a multiple of the batch size must not change the exact dataset metrics."""
  model = nn.Dense(3)
  x = jax.random.normal(jax.random.key(0), (10, 4))
  labels = jax.random.randint(jax.random.key(1), (10,), 0, 3)
  params = model.init(jax.random.key(2), x)["params"]

  def apply_fn(variables, inputs, train):
    del train
    return model.apply(variables, inputs)

  counts = steps.evaluate(params, apply_fn, x, labels, batch_size)
  logits = model.apply({"params": params}, x)
  assert float(counts.count) == 10
  expected = metrics.counts(logits, labels).compute()
  result = counts.compute()
  assert result["accuracy"] == pytest.approx(expected["accuracy"])
  assert result["loss"] == pytest.approx(expected["loss"], rel=1e-5)
