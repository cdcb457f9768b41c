"""A learner's figures: the confusion matrix, what it learned as images, regression's fit."""

import os

import numpy as np

from data import datasets
from experiments.learning import catalogue
from experiments.learning.tabular import Tabular
from experiments.training.outputs import plots
from models import metrics


def draw(name: str, dataset: str, params, data: Tabular, predictions, workdir: str) -> list[str]:
  """The figures that help for this learner and data; returns their file names."""
  figures = []
  if data.num_classes:
    confusion = metrics.confusion_matrix(data.y_test, np.asarray(predictions), data.num_classes)
    plots.confusion_matrix(np.asarray(confusion), datasets.DATASETS.get(dataset).class_names,
                           os.path.join(workdir, "confusion_matrix.png"))
    figures.append("confusion_matrix.png")
  else:
    figures.append(_predicted_against_true(data.y_test, predictions, workdir))
  learner = catalogue.LEARNERS.get(name)
  if learner.images is not None and data.image_shape is not None:
    images, title = learner.images(params)
    images = np.asarray(images, np.float64)
    low = images.min(axis=1, keepdims=True)
    span = np.maximum(images.max(axis=1, keepdims=True) - low, 1e-12)
    pixels = np.round(255 * (images - low) / span).astype(np.uint8)  # each image to [0, 255]
    plots.image_grid(pixels.reshape(len(pixels), *data.image_shape, 1),
                     os.path.join(workdir, "learned.png"), f"{name}: {title}", columns=10)
    figures.append("learned.png")
  if name in _OWN_FIGURES:
    figures += _OWN_FIGURES[name](params, data, workdir)
  return figures


def _top_splits(params, data: Tabular, workdir: str, levels: int = 3) -> list[str]:
  """The pixels the tree's first ``levels`` levels test, on the image grid, each marked with
  its node's depth (0 the root), over the feature importances."""
  import matplotlib.pyplot as plt
  image_shape = data.image_shape
  if image_shape is None:
    return []
  split, feature = np.asarray(params.split), np.asarray(params.feature)
  fig, ax = plt.subplots(figsize=(4.8, 4.8))
  ax.imshow(np.asarray(params.importance).reshape(image_shape[:2]), cmap="Greens")
  for node in range(min(2**levels - 1, len(split))):
    if split[node]:
      row, col = divmod(int(feature[node]), image_shape[1])
      depth = int(np.log2(node + 1))
      ax.text(col, row, str(depth), ha="center", va="center", fontsize=11 - 2 * depth,
              color="white", bbox=dict(boxstyle="circle,pad=0.2", color=f"C{depth}"))
  ax.set(title=f"pixels tested at depths 0-{levels - 1},\nover the feature importances",
         xticks=[], yticks=[])
  plots.save(fig, os.path.join(workdir, "tree_splits.png"))
  return ["tree_splits.png"]


def _validation_curve(params, data: Tabular, workdir: str) -> list[str]:
  """Boosting's validation score before and after each round, and where it stopped."""
  import matplotlib.pyplot as plt
  scores = np.asarray(params.validation_scores, np.float64)
  if not np.isfinite(scores).any():  # nothing held out
    return []
  rounds = np.arange(len(scores))
  shown = scores * 100 if data.num_classes else -scores
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  ax.plot(rounds, shown, marker=".", markersize=3)
  rounds_trained = int(params.rounds)
  ax.axvline(rounds_trained, color="gray", linewidth=1, linestyle="--",
             label=f"stopped early after round {rounds_trained}"
             if rounds_trained < params.settings.num_rounds else f"all {rounds_trained} rounds")
  ax.xaxis.get_major_locator().set_params(integer=True)
  ax.set(xlabel="round", ylabel="validation accuracy %" if data.num_classes else
         "validation mean squared error", title="boosting: the held-out rows after each round")
  ax.legend(fontsize=8)
  plots.save(fig, os.path.join(workdir, "validation.png"))
  return ["validation.png"]


_OWN_FIGURES = {"tree": _top_splits, "boosting": _validation_curve}  # one learner's figures


def _predicted_against_true(y, predictions, workdir: str) -> str:
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(4.5, 4.5))
  ax.scatter(y, predictions, s=12, alpha=0.7)
  low, high = float(np.min(y)), float(np.max(y))
  ax.plot([low, high], [low, high], color="gray", linewidth=1, label="ŷ = y")
  ax.set(xlabel="true target", ylabel="prediction", title="test set")
  ax.legend(fontsize=8)
  plots.save(fig, os.path.join(workdir, "predictions.png"))
  return "predictions.png"
