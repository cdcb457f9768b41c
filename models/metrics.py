"""Exact classification metrics: sum per-example counts, divide once.

Per-batch means of unequal batches do not average to the dataset mean, so
evaluation accumulates sums (``loss_sum``, ``correct``, ``count``) over all
batches, masked where a batch was padded, and divides at the end.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class Counts(NamedTuple):
  """Sums over examples: Σ loss_n, Σ [argmax z_n = y_n], and the count N."""

  loss_sum: jax.Array
  correct: jax.Array
  count: jax.Array

  def __add__(self, other: "Counts") -> "Counts":  # type: ignore[override]
    return Counts(*(a + b for a, b in zip(self, other)))

  def compute(self) -> dict[str, float]:
    """Returns ``{"loss": Σ loss_n / N, "accuracy": Σ correct_n / N}``."""
    count = float(self.count)
    return {"loss": float(self.loss_sum) / count, "accuracy": float(self.correct) / count}


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Fraction of examples whose arg-max logit equals the label: (1/N) Σ [argmax z_n = y_n]."""
  return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def counts(logits: jax.Array, labels: jax.Array, mask: jax.Array | None = None) -> Counts:
  """Softmax cross-entropy and correct-prediction sums over the examples where ``mask``."""
  if mask is None:
    mask = jnp.ones(labels.shape, jnp.float32)
  mask = mask.astype(jnp.float32)
  losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
  return Counts(jnp.sum(losses * mask), jnp.sum(correct * mask), jnp.sum(mask))
