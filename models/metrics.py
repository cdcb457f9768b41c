"""Exact classification metrics: sum per-example counts, divide once.

Per-batch means of unequal batches do not average to the dataset mean, so
training accumulates sums (``loss_sum``, ``correct``, ``count``) over all
batches and divides at the end. The confusion matrix gives the rest:
per-class precision, recall and F1 and their macro averages.
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


def confusion_matrix(labels: jax.Array, predictions: jax.Array, num_classes: int) -> jax.Array:
  """C[i, j] = #{n : y_n = i and ŷ_n = j}: rows are true classes, columns predicted ones."""
  return jnp.zeros((num_classes, num_classes), jnp.int32).at[labels, predictions].add(1)


def classification_report(confusion: jax.Array) -> dict[str, jax.Array]:
  """Accuracy, per-class and macro precision, recall and F1 from a confusion matrix C.

  precision_k = C_kk / Σ_i C_ik (of the examples predicted k, the fraction that
  are k), recall_k = C_kk / Σ_j C_kj (of the examples of class k, the fraction
  found), F1_k = 2 P_k R_k / (P_k + R_k); a ratio with a zero denominator is 0
  (scikit-learn's ``zero_division=0``). Macro averages are unweighted means
  over the K classes; accuracy = Σ_k C_kk / Σ C; support_k = Σ_j C_kj.
  """
  confusion = confusion.astype(jnp.float32)
  hits = jnp.diag(confusion)
  predicted = confusion.sum(axis=0)
  support = confusion.sum(axis=1)

  def ratio(a, b):
    return jnp.where(b > 0, a / jnp.where(b > 0, b, 1.0), 0.0)

  precision = ratio(hits, predicted)
  recall = ratio(hits, support)
  f1 = ratio(2 * precision * recall, precision + recall)
  return {
      "accuracy": hits.sum() / confusion.sum(),
      "precision": precision,
      "recall": recall,
      "f1": f1,
      "support": support,
      "macro_precision": precision.mean(),
      "macro_recall": recall.mean(),
      "macro_f1": f1.mean(),
  }
