"""Datasets as arrays: the decoded-array cache, seeded validation splits and folds, scaling.

``load_arrays`` returns the train and test splits of a tfds image
classification dataset as uint8 images (N, H, W, C) and int32 labels.
Decoding tfds's records takes seconds (plus the TensorFlow import), so the
decoded arrays are cached once in ``<tfds_data_dir>/perceptrax_arrays/`` as
an uncompressed ``.npz`` with its SHA-256 beside it (``.npz.sha256``); later
starts read and verify that file in a fraction of a second and never import
TensorFlow. A cache that is unreadable or does not match its digest is
rebuilt from tfds, with one warning line.

Images stay uint8 until they reach the model: ``to_model_input`` scales them
to x/255 (optionally standardized with the training pixels' mean and
standard deviation), on the host or inside a compiled step.
"""

import io
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from data import archives
from data import errors
from data import files


class Dataset(NamedTuple):
  class_names: tuple[str, ...]


DATASETS = errors.Registry("dataset", {
    "mnist": Dataset(tuple(str(d) for d in range(10))),
    "fashion_mnist": Dataset((
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )),
    "cifar10": Dataset((
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    )),
})


def cache_path(name: str, tfds_data_dir: str | None) -> str:
  return os.path.join(
      archives.resolve_tfds_data_dir(tfds_data_dir), "perceptrax_arrays", f"{name}.npz"
  )


ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")


def load_arrays(
    name: str, archive_dir: str | None = None, tfds_data_dir: str | None = None
) -> dict[str, np.ndarray]:
  """Returns ``{train,test}_{images,labels}`` (uint8 images, int32 labels).

  Reads the decoded-array cache when present and verified; otherwise prepares
  the dataset through tfds (offline from ``archive_dir`` when given) and
  fills the cache. Processes preparing the same dataset into the same tfds
  data dir take turns (an exclusive lock beside the cache): the second reads
  the first's cache.
  """
  DATASETS.get(name)
  path = cache_path(name, tfds_data_dir)
  arrays = _read_cache(path, warn=True)
  if arrays is not None:
    return arrays
  archive_dir = archives.resolve_archive_dir(archive_dir)
  tfds_data_dir = archives.resolve_tfds_data_dir(tfds_data_dir)
  archives.check_preparable(name, archive_dir, tfds_data_dir)  # before creating the lock
  files.check_writable(os.path.dirname(path))
  with files.exclusive_lock(path + ".lock"):
    arrays = _read_cache(path, warn=False)  # another process may have built it meanwhile
    if arrays is None:
      arrays, version = archives.prepare_and_read(name, archive_dir, tfds_data_dir)
      buffer = io.BytesIO()
      np.savez(buffer, **arrays, tfds_version=np.array(version))
      files.remove_stale_temporaries(path)  # a writer killed mid-write left them
      files.write_verified(path, buffer.getvalue())
  return arrays


def _read_cache(path: str, warn: bool) -> dict[str, np.ndarray] | None:
  """The cached arrays; None if there is no cache or it is damaged (said once, if ``warn``)."""
  if not os.path.exists(path):
    return None
  try:
    with np.load(io.BytesIO(files.read_verified(path))) as cached:
      return {k: cached[k] for k in ARRAYS}
  except Exception as e:  # any damage: rebuild from tfds
    if warn:
      logging.warning("the array cache %s is damaged (%s); rebuilding it from tfds", path,
                      str(e).splitlines()[0] if str(e) else type(e).__name__)
    return None


def split_indices(
    num_examples: int, seed: int, validation_size: int = 0, folds: int = 0, fold: int = 0,
    train_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
  """Sorted (train, validation) example indices of a seeded split of ``num_examples``.

  One permutation of the examples by ``seed`` defines every split. A holdout
  split (``folds`` = 0) validates on its first ``validation_size`` entries and
  trains on the rest, or on the ``train_size`` entries after them.
  k-fold cross-validation (``folds`` = k >= 2) cuts it into k folds of
  s = N // k entries; fold j (``fold``) is entries [j s, (j + 1) s) and
  validates, the rest trains. The N mod k entries after the last fold train
  in every fold, so every fold trains on the same number of examples.
  """
  order = np.random.default_rng(seed).permutation(num_examples)
  if folds:
    size = num_examples // folds
    start, stop = fold * size, (fold + 1) * size
  else:
    start, stop = 0, validation_size
  validation = order[start:stop]
  train = np.concatenate([order[:start], order[stop:]])[:train_size]
  return np.sort(train).astype(np.int32), np.sort(validation).astype(np.int32)


def pixel_statistics(images: np.ndarray) -> tuple[float, float]:
  """Mean and standard deviation of x/255 over all pixels of uint8 ``images`` (float64).

  Computed from the histogram of the 256 pixel values, exactly and without a
  float copy of the images.
  """
  counts = np.bincount(images.reshape(-1), minlength=256).astype(np.float64)
  values = np.arange(256) / 255.0
  mean = counts @ values / counts.sum()
  return float(mean), float(np.sqrt(counts @ np.square(values - mean) / counts.sum()))


def to_model_input(pixels, pixel_mean=0.0, pixel_std=1.0):
  """uint8 pixels (..., H, W, C) as the model sees them: (x/255 - mean) / std, float32.

  Works on NumPy arrays (host) and on JAX arrays (inside a compiled step);
  ``pixel_mean`` and ``pixel_std`` may be arrays (one value per model). x/255
  is computed as x · float32(1/255), which is what XLA compiles a division by
  the constant 255 into, so host and device give the same bits; standardized,
  they differ by at most 2 ulp (XLA divides by std as a multiplication by 1/std).
  """
  xp = jnp if isinstance(pixels, jax.Array) else np
  scaled = pixels.astype(xp.float32) * xp.float32(1.0 / 255.0)
  return (scaled - xp.asarray(pixel_mean, xp.float32)) / xp.asarray(pixel_std, xp.float32)
