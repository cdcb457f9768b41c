"""What each member of a run sees: the dataset on the device, its splits, its batch order.

The whole dataset lives on the device once, as uint8 images: the training
examples followed by the test split. Every split is an array of example
indices into it: each member's training and validation indices (a holdout
split, or its fold in k-fold cross-validation, ``datasets.split_indices``) and
the test indices shared by all. Members whose splits are identical share one
index array (no member axis), so a vmapped program gathers their batches once.

An epoch's batches are a permutation of the member's training indices,
drawn from fold_in(shuffle key, epoch), cut into ``updates_per_epoch`` rows
of B: the order is a function of the seed and the epoch alone, which is what
makes a resumed run continue exactly.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from data import datasets
from experiments.training import run as run_lib
from experiments.training import state as state_lib
from experiments.training.config import TrainConfig


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


class Splits(NamedTuple):
  """Each member's example indices and pixel scaling; without a member axis when shared.

  ``splits`` makes them on the host (NumPy); whoever trains places them on devices.
  """

  train: jax.Array  # int32 (K, n_train), or (n_train,) when every member has the same
  validation: jax.Array  # int32 (K, n_validation) or (n_validation,)
  pixel_mean: jax.Array  # float32 (K,) or (): images are (x/255 - mean) / std
  pixel_std: jax.Array


def member_split(member: TrainConfig, data: HostData) -> tuple[np.ndarray, np.ndarray, float,
                                                               float]:
  """(train indices, validation indices, pixel mean, pixel std) of one resolved member."""
  train, validation = datasets.split_indices(
      data.num_examples, member.data_seed, member.validation_size, member.folds, member.fold)
  mean, std = 0.0, 1.0
  if member.standardize:
    mean, std = datasets.pixel_statistics(data.train_images[train])
  return train, validation, mean, std


def splits(run: run_lib.Run, data: HostData) -> Splits:
  """The Splits of the run's members, on the host (shared when every member's split is the same)."""
  keys = {(m.data_seed, m.fold) for m in run.members}
  members = run.members[:1] if len(keys) == 1 else run.members
  parts = [member_split(m, data) for m in members]
  stacked = [np.stack(column) for column in zip(*parts)]
  if len(keys) == 1:
    stacked = [a[0] for a in stacked]
  train, validation, mean, std = stacked
  return Splits(np.asarray(train, np.int32), np.asarray(validation, np.int32),
                np.asarray(mean, np.float32), np.asarray(std, np.float32))


def labels(data: HostData, indices: np.ndarray) -> np.ndarray:
  """The labels of rows ``indices`` of ``Inputs`` (any shape), on the host."""
  return np.concatenate([data.train_labels, data.test_labels])[indices]


def test_indices(data: HostData) -> np.ndarray:
  """The test split's rows of ``Inputs``: N .. N + N_test - 1 (on the host)."""
  return np.arange(data.num_examples, data.num_examples + len(data.test_labels), dtype=np.int32)


def shuffle_keys(run: run_lib.Run) -> jax.Array:
  """Each member's shuffling key: its data seed's when batches are shared, else its seed's."""
  seeds = [m.data_seed if m.shared_batches else m.seed for m in run.members]
  return jnp.stack([state_lib.seed_keys(s)[2] for s in seeds])


def batches_are_shared(run: run_lib.Run, splits_: Splits) -> bool:
  """Whether every member sees the same batches (one (S, B) index array serves all)."""
  seeds = {m.data_seed if m.shared_batches else m.seed for m in run.members}
  return splits_.train.ndim == 1 and len(seeds) == 1


@functools.partial(jax.jit, static_argnums=(3,))
def _epoch_batches(key: jax.Array, train: jax.Array, epoch: int, batch_size: int) -> jax.Array:
  num_batches = train.shape[0] // batch_size
  order = jax.random.permutation(jax.random.fold_in(key, epoch), train.shape[0])
  return train[order[:num_batches * batch_size]].reshape(num_batches, batch_size)


def epoch_batches(run: run_lib.Run, splits_: Splits, keys: jax.Array, epoch: int) -> jax.Array:
  """Example indices of ``epoch``'s batches: (S, B) when shared, else (K, S, B)."""
  batch_size = run.plan.batch_size
  if batches_are_shared(run, splits_):
    return _epoch_batches(keys[0], splits_.train, epoch, batch_size)
  train_axis = None if splits_.train.ndim == 1 else 0
  return jax.vmap(_epoch_batches, in_axes=(0, train_axis, None, None))(
      keys, splits_.train, epoch, batch_size)
