"""The end-of-run report: test-split metrics per class, the log table, the figures."""

import os

import jax
import jax.numpy as jnp
import numpy as np

from data import datasets
from experiments import plots
from models import metrics
from models import saliency

FIGURES = ("training_curves", "confusion_matrix", "weight_histograms", "first_layer",
           "saliency", "misclassified")


def test_metrics(logits: jax.Array, labels: jax.Array, class_names) -> dict:
  """Accuracy, macro and per-class precision / recall / F1 and the confusion matrix, as JSON."""
  confusion = metrics.confusion_matrix(labels, jnp.argmax(logits, -1), len(class_names))
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


def per_class_table(result: dict) -> str:
  """The per-class metrics of ``test_metrics`` as an aligned text table with a macro row."""
  width = max(len("macro"), *(len(row["class"]) for row in result["per_class"]))
  lines = [f"{'class':<{width}}  precision  recall      f1  support"]
  for row in result["per_class"]:
    lines.append(f"{row['class']:<{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  "
                 f"{row['f1']:6.4f}  {row['support']:7d}")
  total = sum(row["support"] for row in result["per_class"])
  lines.append(f"{'macro':<{width}}  {result['macro_precision']:9.4f}  "
               f"{result['macro_recall']:6.4f}  {result['macro_f1']:6.4f}  {total:7d}")
  return "\n".join(lines)


def write_figures(workdir: str, history: list[dict], variables: dict, apply_fn,
                  test: datasets.Split, logits: np.ndarray, class_names, result: dict,
                  num_saliency: int = 8, num_misclassified: int = 32) -> list[str]:
  """Writes the FIGURES as PNG files into ``workdir``; returns their paths."""
  paths = {name: os.path.join(workdir, f"{name}.png") for name in FIGURES}
  predictions = np.argmax(logits, -1)
  probabilities = np.asarray(jax.nn.softmax(logits, -1)).max(-1)
  params = jax.tree.map(np.asarray, variables["params"])

  plots.training_curves(history, paths["training_curves"])
  plots.confusion_matrix(np.asarray(result["confusion_matrix"]), class_names,
                         paths["confusion_matrix"])
  plots.weight_histograms(params, paths["weight_histograms"])
  first = params["Conv_0" if "Conv_0" in params else "Dense_0"]["kernel"]
  plots.first_layer(first, test.images.shape[1:], paths["first_layer"])

  images = test.images[:num_saliency]
  maps = saliency.saliency_maps(apply_fn, variables, jnp.asarray(images),
                                jnp.asarray(predictions[:num_saliency]))
  plots.saliency(images, np.asarray(maps), test.labels[:num_saliency],
                 predictions[:num_saliency], class_names, paths["saliency"])

  wrong = np.flatnonzero(predictions != test.labels)[:num_misclassified]
  plots.misclassified(test.images[wrong], test.labels[wrong], predictions[wrong],
                      probabilities[wrong], class_names, paths["misclassified"])
  return list(paths.values())

