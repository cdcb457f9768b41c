"""Exact metrics: counts, masking, evaluation that neither drops nor repeats examples,
and the confusion-matrix metrics against scikit-learn."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from data import datasets
from experiments.training.loop import programs
from experiments.training.objectives import classification
from models import metrics
from tests import helpers


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


@pytest.mark.parametrize("chunk_size", [1, 7, 10, 64])
def test_predict_gives_every_example_once_in_order(chunk_size):
  """Chunks padded to a multiple of the chunk size must not change or reorder the logits."""
  model = nn.Dense(3)
  inputs = helpers.uint8_inputs(30, (4,), num_classes=3)
  indices = jnp.array([29, 3, 3, 17, 0, 8, 21, 11, 5, 2], jnp.int32)  # any order, repeats
  params = model.init(jax.random.key(2), jnp.zeros((1, 4)))["params"]

  def apply_fn(variables, x, train):
    del train
    return model.apply(variables, x)

  logits = programs.outputs(classification.CLASSIFICATION, apply_fn, chunk_size,
                            {"params": params}, inputs, 0.0, 1.0, indices)
  expected = model.apply({"params": params}, datasets.to_model_input(inputs.images[indices]))
  np.testing.assert_allclose(logits, expected, rtol=1e-6)
  counts = metrics.counts(logits, inputs.labels[indices])
  assert float(counts.count) == 10


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_matrix_and_report_match_scikit_learn(seed):
  """Random labels and predictions over K = 7 classes; class 6 is never predicted.

  Counts are integers, so the confusion matrix must match exactly; the ratios
  are float32 divisions of counts <= 500, compared at rtol 1e-6.
  """
  rng = np.random.default_rng(seed)
  num_classes, n = 7, 500
  labels = rng.integers(0, num_classes, n)
  # Mostly right, with a never-predicted class so some precisions divide by zero.
  predictions = np.where(rng.random(n) < 0.6, labels, rng.integers(0, num_classes, n))
  predictions = np.where(predictions == 6, 5, predictions)

  confusion = metrics.confusion_matrix(jnp.asarray(labels), jnp.asarray(predictions), num_classes)
  classes = list(range(num_classes))
  np.testing.assert_array_equal(
      confusion, sk_metrics.confusion_matrix(labels, predictions, labels=classes))

  report = metrics.classification_report(confusion)
  precision, recall, f1, support = sk_metrics.precision_recall_fscore_support(
      labels, predictions, labels=classes, zero_division=0)
  np.testing.assert_allclose(report["precision"], precision, rtol=1e-6)
  np.testing.assert_allclose(report["recall"], recall, rtol=1e-6)
  np.testing.assert_allclose(report["f1"], f1, rtol=1e-6)
  np.testing.assert_array_equal(report["support"], support)
  assert report["precision"][6] == 0.0
  for name in ("precision", "recall", "f1"):
    macro = getattr(sk_metrics, f"{name}_score" if name != "f1" else "f1_score")(
        labels, predictions, labels=classes, average="macro", zero_division=0)
    np.testing.assert_allclose(report[f"macro_{name}"], macro, rtol=1e-6)
  np.testing.assert_allclose(
      report["accuracy"], sk_metrics.accuracy_score(labels, predictions), rtol=1e-6)


def test_metrics_are_jittable_pure_functions():
  labels = jnp.array([0, 1, 2, 2])
  predictions = jnp.array([0, 2, 2, 2])
  report = jax.jit(lambda y, p: metrics.classification_report(
      metrics.confusion_matrix(y, p, 3)))(labels, predictions)
  np.testing.assert_allclose(report["precision"], [1.0, 0.0, 2 / 3], rtol=1e-6)
  np.testing.assert_allclose(report["recall"], [1.0, 0.0, 1.0], rtol=1e-6)
  np.testing.assert_allclose(report["macro_f1"], (1.0 + 0.0 + 0.8) / 3, rtol=1e-6)
