"""Each member's splits and batch order, made on the host.

Every split is an array of example indices into the dataset (``dataset.py``):
each member's training and validation indices (a holdout split, or its fold
in k-fold cross-validation, ``datasets.split_indices``) and the test indices
shared by all. Members whose splits are identical share one index array (no
member axis), so a vmapped program gathers their batches once.

An epoch's batches are a permutation of the member's training indices,
drawn from fold_in(shuffle key, epoch) and cut into ``updates_per_epoch``
rows of B: the order is a function of the seed and the epoch alone, which is
what makes a resumed run continue exactly. They are drawn on the host's CPU
device as NumPy arrays, and the caller places each block on the devices once.
"""

import functools
from typing import NamedTuple

import jax
import numpy as np

from data import datasets
from experiments.training.loop import dataset as dataset_lib
from experiments.training.loop import run as run_lib
from experiments.training.loop import state as state_lib
from experiments.training.settings.config import TrainConfig


class Splits(NamedTuple):
  """Each member's example indices and pixel scaling; without a member axis when shared."""

  train: np.ndarray  # int32 (K, n_train), or (n_train,) when every member has the same
  validation: np.ndarray  # int32 (K, n_validation) or (n_validation,)
  pixel_mean: np.ndarray  # float32 (K,) or (): images are (x/255 - mean) / std
  pixel_std: np.ndarray


def member_split(member: TrainConfig, data: dataset_lib.HostData,
                 pixel_scaling: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray,
                                                                     float, float]:
  """(train indices, validation indices, pixel mean, pixel std) of one resolved member whose
  objective scales pixels by ``pixel_scaling`` (None: x/255, or standardized)."""
  train, validation = datasets.split_indices(
      data.num_examples, member.data_seed, member.validation_size, member.folds, member.fold,
      member.train_size)
  mean, std = pixel_scaling or (0.0, 1.0)
  if member.standardize:
    mean, std = datasets.pixel_statistics(data.train_images[train])
  return train, validation, mean, std


def splits(run: run_lib.Run, data: dataset_lib.HostData) -> Splits:
  """The Splits of the run's members (shared when every member's split is the same)."""
  keys = {(m.data_seed, m.fold) for m in run.members}
  members = run.members[:1] if len(keys) == 1 else run.members
  parts = [member_split(m, data, run.objective.pixel_scaling) for m in members]
  stacked = [np.stack(column) for column in zip(*parts)]
  if len(keys) == 1:
    stacked = [a[0] for a in stacked]
  train, validation, mean, std = stacked
  return Splits(np.asarray(train, np.int32), np.asarray(validation, np.int32),
                np.asarray(mean, np.float32), np.asarray(std, np.float32))


def _shuffle_seeds(run: run_lib.Run) -> list[int]:
  """Each member's shuffling seed: its data seed's when batches are shared, else its seed."""
  return [m.data_seed if m.shared_batches else m.seed for m in run.members]


@functools.partial(jax.jit, static_argnums=(3,))
def _epoch_batches(key: jax.Array, train: jax.Array, epoch: int, batch_size: int) -> jax.Array:
  num_batches = train.shape[0] // batch_size
  order = jax.random.permutation(jax.random.fold_in(key, epoch), train.shape[0])
  return train[order[:num_batches * batch_size]].reshape(num_batches, batch_size)


def epoch_batches(run: run_lib.Run, splits_: Splits, epoch: int) -> np.ndarray:
  """Example indices of ``epoch``'s batches on the host: (S, B) when shared, else (K, S, B)."""
  seeds = _shuffle_seeds(run)
  with jax.default_device(jax.local_devices(backend="cpu")[0]):
    keys = jax.numpy.stack([state_lib.seed_keys(s)[2] for s in seeds])
    if splits_.train.ndim == 1 and len(set(seeds)) == 1:
      batches = _epoch_batches(keys[0], splits_.train, epoch, run.plan.batch_size)
    else:
      train_axis = None if splits_.train.ndim == 1 else 0
      batches = jax.vmap(_epoch_batches, in_axes=(0, train_axis, None, None))(
          keys, splits_.train, epoch, run.plan.batch_size)
    return np.asarray(batches)


def epoch_blocks(run: run_lib.Run, batches: np.ndarray, first_steps_alone: bool) -> list:
  """An epoch's batches cut into blocks of ``block_size`` steps: (S', B) or (K, S', B) each.

  With ``first_steps_alone`` the first block's steps come one by one (blocks
  of one step), so a fresh run shows and times its first update after one
  step rather than one block. Only epoch 1 of a fresh run does this, which a
  resumed run never repeats, so resuming stays exact.
  """
  plan = run.plan
  shape = (plan.updates_per_epoch // plan.block_size, plan.block_size, plan.batch_size)
  if batches.ndim == 2:
    blocks = list(batches.reshape(shape))
  else:
    blocks = list(batches.reshape(run.size, *shape).swapaxes(0, 1))
  if first_steps_alone and plan.block_size > 1:
    first = blocks.pop(0)
    blocks[:0] = [first[..., i:i + 1, :] for i in range(plan.block_size)]
  return blocks
