"""Datasets as arrays: decoded-array cache, float32 images, seeded validation split.

``get_datasets`` returns train / validation / test splits of a tfds image
classification dataset as NumPy arrays: images float32 in [0, 1] with shape
(N, H, W, C) (optionally standardized with the training pixels' mean and
standard deviation), labels int32.

Decoding tfds's records takes seconds (plus the TensorFlow import), so the
decoded uint8 arrays are cached once in ``<tfds_data_dir>/perceptrax_arrays/``
as an uncompressed ``.npz``; later starts read that file in tens of
milliseconds and never import TensorFlow. Delete the file to rebuild it.
"""

import os
import tempfile
from typing import NamedTuple

import numpy as np

from data import archives

DATASETS = tuple(archives.ARCHIVES)
NUM_CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10}
CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    "cifar10": (
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ),
}


class Split(NamedTuple):
  images: np.ndarray  # float32 (N, H, W, C)
  labels: np.ndarray  # int32 (N,)


class Datasets(NamedTuple):
  train: Split
  validation: Split  # N = 0 when no validation split is carved.
  test: Split
  num_classes: int
  pixel_mean: float = 0.0  # images are (x/255 - pixel_mean) / pixel_std
  pixel_std: float = 1.0


def cache_path(name: str, tfds_data_dir: str | None) -> str:
  return os.path.join(
      archives.resolve_tfds_data_dir(tfds_data_dir), "perceptrax_arrays", f"{name}.npz"
  )


def _save_atomically(path: str, arrays: dict) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".npz.tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **arrays)
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise


def load_arrays(
    name: str, archive_dir: str | None = None, tfds_data_dir: str | None = None
) -> dict:
  """Returns ``{train,test}_{images,labels}`` (uint8 images, int32 labels).

  Reads the decoded-array cache when present; otherwise prepares the dataset
  through tfds (offline from ``archive_dir`` when given) and fills the cache.
  """
  if name not in archives.ARCHIVES:
    raise archives.DataError(
        f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}"
    )
  path = cache_path(name, tfds_data_dir)
  if not os.path.exists(path):
    arrays, version = archives.prepare_and_read(
        name,
        archives.resolve_archive_dir(archive_dir),
        archives.resolve_tfds_data_dir(tfds_data_dir),
    )
    _save_atomically(path, dict(arrays, tfds_version=np.array(version)))
  with np.load(path) as cached:
    return {k: cached[k] for k in cached.files if k != "tfds_version"}


def split_validation(
    images: np.ndarray, labels: np.ndarray, validation_size: int, seed: int
) -> tuple[Split, Split]:
  """Carves a seeded random validation split of ``validation_size`` from train."""
  if not 0 <= validation_size < len(labels):
    raise ValueError(
        f"validation_size must be in [0, {len(labels)}), got {validation_size}"
    )
  order = np.random.default_rng(seed).permutation(len(labels))
  train_idx = np.sort(order[validation_size:])
  val_idx = np.sort(order[:validation_size])
  return (
      Split(images[train_idx], labels[train_idx]),
      Split(images[val_idx], labels[val_idx]),
  )


def get_datasets(
    name: str,
    *,
    archive_dir: str | None = None,
    tfds_data_dir: str | None = None,
    validation_size: int = 5000,
    seed: int = 0,
    standardize: bool = False,
) -> Datasets:
  """Loads ``name`` as float32 train / validation / test splits.

  Pixels are scaled to x / 255 in [0, 1]. With ``standardize`` they become
  (x - mean) / std, with the scalar mean and std of the training split's
  pixels (validation and test use the training statistics).
  """
  arrays = load_arrays(name, archive_dir, tfds_data_dir)
  train, validation = split_validation(
      arrays["train_images"], arrays["train_labels"], validation_size, seed
  )
  test = Split(arrays["test_images"], arrays["test_labels"])

  mean, std = 0.0, 1.0
  if standardize:
    pixels = train.images / 255.0  # float64 statistics over all training pixels
    mean, std = pixels.mean(), pixels.std()

  def to_float(split: Split) -> Split:
    return Split(to_model_input(split.images, mean, std), split.labels.astype(np.int32))

  return Datasets(to_float(train), to_float(validation), to_float(test), NUM_CLASSES[name],
                  float(mean), float(std))


def to_model_input(pixels: np.ndarray, pixel_mean: float, pixel_std: float) -> np.ndarray:
  """uint8 pixels (..., H, W, C) as the model sees them: (x/255 - mean) / std, float32."""
  return (pixels.astype(np.float32) / 255.0 - np.float32(pixel_mean)) / np.float32(pixel_std)
