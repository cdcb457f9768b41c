"""The dataset a run trains on: its arrays on the host, and the same on the device, once.

On the device the whole dataset is one pair of arrays, uint8 images and
int32 labels: the training examples 0..N-1 followed by the test split
N..N + N_test - 1. Every split is an array of indices into them
(``batches.py``), so no image is copied per split, per epoch or per member.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from data import datasets
from experiments.training.settings.config import TrainConfig


class HostData(NamedTuple):
  """The dataset's arrays on the host, as ``datasets.load_arrays`` gives them."""

  train_images: np.ndarray  # uint8 (N, H, W, C)
  train_labels: np.ndarray  # int32 (N,)
  test_images: np.ndarray
  test_labels: np.ndarray
  class_names: tuple[str, ...]

  @property
  def input_shape(self) -> tuple[int, ...]:
    return self.train_images.shape[1:]

  @property
  def num_examples(self) -> int:
    return len(self.train_labels)

  @property
  def num_bytes(self) -> int:
    return sum(a.nbytes for a in self[:4])


def load(config: TrainConfig) -> HostData:
  """The dataset of ``config`` (from the decoded-array cache, else prepared by tfds)."""
  arrays = datasets.load_arrays(config.dataset, config.archive_dir, config.tfds_data_dir)
  return HostData(arrays["train_images"], arrays["train_labels"].astype(np.int32),
                  arrays["test_images"], arrays["test_labels"].astype(np.int32),
                  datasets.DATASETS.get(config.dataset).class_names)


class Inputs(NamedTuple):
  """The dataset on the device: training examples 0..N-1, then the test split."""

  images: jax.Array  # uint8 (N + N_test, H, W, C)
  labels: jax.Array  # int32 (N + N_test,)


def to_device(data: HostData) -> Inputs:
  return Inputs(jnp.asarray(np.concatenate([data.train_images, data.test_images])),
                jnp.asarray(np.concatenate([data.train_labels, data.test_labels])))


def labels(data: HostData, indices: np.ndarray) -> np.ndarray:
  """The labels of rows ``indices`` of ``Inputs`` (any shape), on the host."""
  return np.concatenate([data.train_labels, data.test_labels])[indices]


def test_indices(data: HostData) -> np.ndarray:
  """The test split's rows of ``Inputs``: N .. N + N_test - 1 (on the host)."""
  return np.arange(data.num_examples, data.num_examples + len(data.test_labels), dtype=np.int32)
