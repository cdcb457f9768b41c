"""The classification objective: softmax cross-entropy, accuracy, per-class test metrics.

Train: the mean softmax cross-entropy of a batch, -(1/B) Σ_n log softmax(z_n)[y_n],
plus the weight penalty. Every split reports its loss and accuracy, summed per
example and divided once (``models.metrics.counts``). A model has diverged
when a loss is NaN or infinite, or when its mean training cross-entropy
exceeds 3 ln K (K classes): three times the loss of predicting every class
with probability 1/K, i.e. the correct class gets e^-3 ln K = K^-3 of the
probability on average, far worse than guessing. The test report is the
kept model's accuracy, per-class precision, recall and F1 and the confusion
matrix; the figures are ``report.py``'s.
"""

import math

from absl import logging

from experiments.training.outputs import report
from experiments.training.processes import sharding
from experiments.training.loop import steps
from experiments.training.objectives.objective import Objective
from experiments.training.objectives.objective import non_finite
from models import metrics


class Classification(Objective):
  name = "classification"
  metrics = ("loss", "accuracy")

  def train_step(self, state, images, labels, chunk_size):
    batch_size = labels.shape[0]

    def loss(params, x, y, mask, key):
      logits, batch_stats = steps.apply_train(state, params, x, key)
      counts = metrics.counts(logits, y, mask)
      return counts.loss_sum / batch_size, (counts, batch_stats)

    return steps.gradient_step(loss, state, images, labels, chunk_size)

  def outputs(self, apply_fn, variables, images, key):
    del key
    return apply_fn(variables, images, train=False)

  def sums(self, outputs, labels, mask=None):
    return metrics.counts(outputs, labels, mask)

  def metrics_of(self, sums) -> dict[str, float]:
    count = float(sums.count)
    return {"loss": float(sums.loss_sum) / count, "accuracy": float(sums.correct) / count}

  def divergence(self, row: dict, num_classes: int) -> str | None:
    reason = non_finite(row)
    if reason:
      return reason
    limit = 3 * math.log(num_classes)
    if row["train_loss"] > limit:
      return f"train loss {row['train_loss']:.4g} > 3 ln {num_classes} = {limit:.3g}"
    return None

  def test_report(self, outputs, labels, class_names) -> dict:
    return report.test_metrics(outputs, labels, class_names)

  def finish(self, run, loop, data, workdir, plots) -> tuple[dict, list]:
    """The per-class table in the log and ``report.py``'s figures of the one model."""
    test_metrics = loop.test_metrics[0]
    logging.info("test metrics of the model of epoch %d:\n%s", loop.records[0].best_epoch,
                 report.per_class_table(test_metrics))
    if not (plots and workdir):
      return {}, []
    figures = report.write_figures(
        workdir, loop.records[0].history, sharding.to_host(loop.kept), run.model,
        data.test_images, data.test_labels, loop.test_outputs, loop.pixel_scaling[0],
        data.class_names, test_metrics)
    return {}, figures


CLASSIFICATION = Classification()
