"""PNG figures of a training run, drawn with matplotlib's Agg backend.

Images are shown as stored, rescaled per image to [0, 1] (grayscale for one
channel, RGB for three).
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from absl import logging

from data import files


def save(fig, path: str, **options) -> None:
  """Writes ``fig`` as the PNG ``path`` (atomically: no cut file on a full disk) and closes it."""
  fig.tight_layout()
  try:
    files.write_atomically(path, lambda f: fig.savefig(f, format="png", **{"dpi": 120, **options}))
  finally:
    plt.close(fig)
  logging.info("drew %s", os.path.basename(path))  # figures take seconds: no silent wait


def whole_epochs(ax) -> None:
  """Ticks at whole epochs only (a 1-epoch run would otherwise show 0.96, 0.98, ...)."""
  ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))


def training_curves(history: list[dict], path: str) -> None:
  """Loss and accuracy per epoch for each split in ``history`` (train, validation, test)."""
  epochs = [row["epoch"] for row in history]
  splits = [s for s in ("train", "validation", "test") if f"{s}_loss" in history[0]]
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  for split in splits:
    axes[0].plot(epochs, [row[f"{split}_loss"] for row in history], marker="o", label=split)
    axes[1].plot(epochs, [100 * row[f"{split}_accuracy"] for row in history], marker="o",
                 label=split)
  axes[0].set(title="loss", xlabel="epoch", ylabel="softmax cross-entropy", yscale="log")
  axes[1].set(title="accuracy", xlabel="epoch", ylabel="accuracy (%)")
  for ax in axes:
    whole_epochs(ax)
  for ax in axes:
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  save(fig, path)


def objective_curves(history: list[dict], metrics, path: str) -> str:
  """Each of an objective's metrics per epoch, one panel each, for every split in ``history``."""
  epochs = [row["epoch"] for row in history]
  splits = [s for s in ("train", "validation", "test") if f"{s}_loss" in history[0]]
  fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
  for ax, metric in zip(axes[0], metrics):
    for split in splits:
      ax.plot(epochs, [row[f"{split}_{metric}"] for row in history], marker="o", label=split)
    ax.set(title=metric.replace("_", " "), xlabel="epoch")
    whole_epochs(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  save(fig, path)
  return path


def image_grid(images: np.ndarray, path: str, title: str, columns: int = 8) -> str:
  """uint8 images (N, H, W, C) in a grid of ``columns``, gray on black as stored."""
  images = np.asarray(images)
  rows = -(-len(images) // columns)
  height, width = images.shape[1:3]
  canvas = np.zeros((rows * (height + 2), columns * (width + 2), images.shape[-1]), np.uint8)
  for i, image in enumerate(images):
    r, c = divmod(i, columns)
    canvas[r * (height + 2) + 1:r * (height + 2) + 1 + height,
           c * (width + 2) + 1:c * (width + 2) + 1 + width] = image
  fig, ax = plt.subplots(figsize=(0.45 * columns + 0.5, 0.45 * rows + 0.7))
  ax.imshow(canvas[..., 0] if canvas.shape[-1] == 1 else canvas, cmap="gray", vmin=0, vmax=255)
  ax.set_xticks([])
  ax.set_yticks([])
  ax.set_title(title, fontsize=9)
  save(fig, path)
  return path


def latent_codes(codes: np.ndarray, labels: np.ndarray, class_names, path: str) -> str:
  """The 2-D codes (N, 2) of the test images, coloured by class."""
  fig, ax = plt.subplots(figsize=(6.5, 5.5))
  points = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=2, alpha=0.6)
  handles = [plt.Line2D([], [], marker="o", linestyle="", color=points.cmap(points.norm(k)),
                        label=name) for k, name in enumerate(class_names)]
  ax.legend(handles=handles, fontsize=7, markerscale=1.2, loc="best")
  ax.set(title="test images' codes: the mean of q(z|x)", xlabel="z1", ylabel="z2")
  save(fig, path)
  return path


def sample_scores(history: list[dict], path: str) -> str:
  """The classifier score and the Fréchet distance of each epoch's samples."""
  epochs = [row["epoch"] for row in history]
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
  axes[0].plot(epochs, [row["sample_classifier_score"] for row in history], marker="o")
  axes[0].set(title="classifier score of 1000 samples", xlabel="epoch")
  axes[1].plot(epochs, [row["sample_frechet_distance"] for row in history], marker="o")
  axes[1].set(title="Fréchet distance to real test images", xlabel="epoch", yscale="log")
  for ax in axes:
    whole_epochs(ax)
    ax.grid(alpha=0.3)
  save(fig, path)
  return path


def confusion_matrix(confusion: np.ndarray, class_names, path: str) -> None:
  """The confusion matrix C[true, predicted] as counts, shaded by row (recall) fractions."""
  confusion = np.asarray(confusion)
  k = len(class_names)
  fractions = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
  fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 0.6 + 0.6 * k))
  ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
  for i in range(k):
    for j in range(k):
      ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
              color="white" if fractions[i, j] > 0.5 else "black")
  ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
  ax.set_yticks(range(k), class_names, fontsize=8)
  ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (test)")
  save(fig, path)


def weight_histograms(params, path: str) -> None:
  """A histogram of each layer's parameters (kernel, and bias when it has one)."""
  layers = {name: leaves for name, leaves in params.items() if isinstance(leaves, dict)}
  columns = min(len(layers), 4)
  rows = -(-len(layers) // columns)
  fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.8 * rows), squeeze=False)
  for ax in axes.ravel()[len(layers):]:
    ax.axis("off")
  for ax, (name, leaves) in zip(axes.ravel(), layers.items()):
    for kind, values in sorted(leaves.items()):
      values = np.asarray(values).ravel()
      ax.hist(values, bins=int(np.clip(values.size // 4, 10, 60)), alpha=0.6, density=True,
              label=f"{kind} ({values.size}; std {values.std():.3g})")
    ax.set(title=name, xlabel="value")
    ax.legend(fontsize=6)
  save(fig, path)


def _show(ax, image: np.ndarray) -> None:
  image = np.asarray(image, np.float64)
  image = (image - image.min()) / max(image.max() - image.min(), 1e-12)
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
  ax.set_xticks([])
  ax.set_yticks([])


def _grid(n: int, columns: int):
  rows = -(-n // columns)
  fig, axes = plt.subplots(rows, columns, figsize=(1.4 * columns, 1.5 * rows), squeeze=False)
  for ax in axes.ravel()[n:]:
    ax.axis("off")
  return fig, axes.ravel()


def first_layer(kernel: np.ndarray, input_shape: tuple[int, ...], path: str, limit: int = 64):
  """The first layer's weights as images: a conv kernel's filters, or an MLP unit's weights.

  A conv kernel (kh, kw, C, F) gives F filters of kh x kw x C; a dense kernel
  (H W C, F) gives each unit's incoming weights reshaped to the input image.
  """
  kernel = np.asarray(kernel)
  if kernel.ndim == 4:
    images = [kernel[..., f] for f in range(kernel.shape[-1])]
    title = f"first-layer filters ({kernel.shape[0]}x{kernel.shape[1]})"
  else:
    images = [kernel[:, f].reshape(input_shape) for f in range(kernel.shape[-1])]
    title = "first-layer weights of each hidden unit"
  images = images[:limit]
  fig, axes = _grid(len(images), 8)
  for ax, image in zip(axes, images):
    _show(ax, image)
  fig.suptitle(title + (f", first {limit}" if len(images) == limit else ""), fontsize=9)
  save(fig, path)


def hidden_state_gradients(curves: dict[str, np.ndarray], path: str) -> None:
  """‖∂L/∂h_t‖ against the step t for each labelled curve, on a log scale."""
  fig, ax = plt.subplots(figsize=(7, 4))
  for label, values in curves.items():
    steps = np.arange(1, len(values) + 1)
    ax.plot(steps, np.maximum(values, 1e-30), label=label,
            linestyle="-" if label.startswith("trained") else "--")
  ax.set(yscale="log", xlabel="step t (the loss is on the last step)",
         ylabel="mean ‖∂L/∂h_t‖", title="gradient reaching each hidden state (test batch)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  save(fig, path)


def saliency(images, maps, labels, predictions, class_names, path: str) -> None:
  """Each image above its saliency map |∂z_ŷ/∂x|, with true and predicted labels."""
  n = len(images)
  fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.6), squeeze=False)
  for i in range(n):
    _show(axes[0, i], images[i])
    axes[0, i].set_title(f"true {class_names[labels[i]]}\npred {class_names[predictions[i]]}",
                         fontsize=7, color="black" if labels[i] == predictions[i] else "red")
    axes[1, i].imshow(np.asarray(maps[i]), cmap="hot")
    axes[1, i].set_xticks([])
    axes[1, i].set_yticks([])
  axes[1, 0].set_ylabel("|∂z_pred/∂x|", fontsize=8)
  save(fig, path)


def misclassified(images, labels, predictions, probabilities, class_names, path: str) -> None:
  """A grid of misclassified images: true label, predicted label and its probability."""
  n = max(len(images), 1)
  fig, axes = _grid(n, 8)
  for ax, image, y, p, prob in zip(axes, images, labels, predictions, probabilities):
    _show(ax, image)
    ax.set_title(f"{class_names[y]} -> {class_names[p]}\n({prob:.2f})", fontsize=6)
  if not len(images):
    axes[0].set_title("no misclassified images", fontsize=8)
  fig.suptitle("misclassified test images: true -> predicted (probability)", fontsize=9)
  save(fig, path)


def cross_validation(records, metrics, path: str) -> str:
  """Each fold's validation ``metrics`` (loss and accuracy for a classifier) per epoch, and
  the kept models' mean ± std."""
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  kept = {metric: [] for metric in metrics}
  for k, record in enumerate(records):
    epochs = [row["epoch"] for row in record.history]
    for ax, metric in zip(axes, metrics):
      scale = 100 if metric == "accuracy" else 1
      ax.plot(epochs, [scale * row[f"validation_{metric}"] for row in record.history],
              marker="o", alpha=0.8, label=f"fold {k}")
      if record.kept_row:
        kept[metric].append(scale * record.kept_row[f"validation_{metric}"])
  for ax, metric in zip(axes, metrics):
    values = kept[metric]
    if values:
      mean, std = np.mean(values), np.std(values)
      ax.axhspan(mean - std, mean + std, color="gray", alpha=0.2,
                 label=f"kept models: {mean:.4g} ± {std:.2g}")
    whole_epochs(ax)
    ax.set(title=f"validation {metric.replace('_', ' ')} per fold", xlabel="epoch",
           ylabel="accuracy (%)" if metric == "accuracy" else metric.replace("_", " "))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  save(fig, path)
  return path
