"""The classification objective: softmax cross-entropy, accuracy, per-class test metrics.

Train: the mean softmax cross-entropy of a batch, -(1/B) Σ_n log softmax(z_n)[y_n],
plus the weight penalty. Every split reports its loss and accuracy, summed per
example and divided once (``models.metrics.counts``). A model has diverged
when a loss is NaN or infinite, or when its mean training cross-entropy
exceeds 3 ln K (K classes): three times the loss of predicting every class
with probability 1/K, i.e. the correct class gets e^-3 ln K = K^-3 of the
probability on average, far worse than guessing. The test report is the
kept model's accuracy, per-class precision, recall and F1 and the confusion
matrix.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

from experiments.training.objectives.objective import OneLoss
from experiments.training.objectives.objective import non_finite
from models import metrics


class Classification(OneLoss):
  metrics = ("loss", "accuracy")

  def sums(self, outputs, labels, mask=None) -> dict:
    counts = metrics.counts(outputs, labels, mask)
    return {"loss": counts.loss_sum, "accuracy": counts.correct, "count": counts.count}

  def divergence(self, row: dict, num_classes: int) -> str | None:
    reason = non_finite(row)
    if reason:
      return reason
    limit = 3 * math.log(num_classes)
    if row["train_loss"] > limit:
      return f"train loss {row['train_loss']:.4g} > 3 ln {num_classes} = {limit:.3g}"
    return None

  def test_report(self, outputs, labels, class_names) -> dict:
    return test_metrics(outputs, labels, class_names)


def test_metrics(logits, labels, class_names) -> dict:
  """Accuracy, macro and per-class precision / recall / F1 and the confusion matrix, as JSON."""
  confusion = metrics.confusion_matrix(jnp.asarray(labels), jnp.argmax(logits, -1),
                                       len(class_names))
  report = jax.tree.map(np.asarray, metrics.classification_report(confusion))
  return {
      "accuracy": float(report["accuracy"]),
      **{f"macro_{k}": float(report[f"macro_{k}"]) for k in ("precision", "recall", "f1")},
      "per_class": [
          {"class": name, "precision": float(report["precision"][k]),
           "recall": float(report["recall"][k]), "f1": float(report["f1"][k]),
           "support": int(report["support"][k])}
          for k, name in enumerate(class_names)
      ],
      "confusion_matrix": np.asarray(confusion).tolist(),
  }


CLASSIFICATION = Classification()
