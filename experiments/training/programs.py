"""A run's compiled programs: a block of train steps and the predictors, for all K members.

With K > 1 members, ``steps.train_steps`` and ``steps.predict`` are
``jax.vmap``ped over the leading member axis of the state (and of the index
arrays that are per member). With K = 1 the state keeps its member axis of
size 1 outside, and the program drops it and runs the plain single-model step
inside: the unvmapped program is what a single run compiles (measured faster
for the wide MLP than the same model under vmap).

Everything is compiled ahead of time (``jit(...).lower(...).compile()``), so
compilation is timed apart from training.
"""

import functools
import time
from typing import NamedTuple

import jax

from experiments.training import inputs as inputs_lib
from experiments.training import run as run_lib
from experiments.training import steps
from experiments.training.state import TrainState
from models import metrics


def _axis(array: jax.Array, per_member_ndim: int):
  """0 when ``array`` has a member axis (ndim == per_member_ndim), else None (shared)."""
  return 0 if array.ndim == per_member_ndim else None


def _squeeze(tree):
  return jax.tree.map(lambda a: a[0], tree)


def _expand(tree):
  return jax.tree.map(lambda a: a[None], tree)


def train_block_fn(run: run_lib.Run, splits: inputs_lib.Splits, batches_shape: tuple[int, ...]):
  """(state, inputs, splits, batch block) -> (state, counts with a member axis)."""
  chunk_size = run.config.chunk_size
  if run.size == 1:
    def block(state, inputs, splits, indices):
      state, counts = steps.train_steps(_squeeze(state), inputs, splits.pixel_mean,
                                        splits.pixel_std, indices, chunk_size)
      return _expand(state), _expand(counts)
    return block
  one = functools.partial(steps.train_steps, chunk_size=chunk_size)
  in_axes = (0, None, _axis(splits.pixel_mean, 1), _axis(splits.pixel_std, 1),
             0 if len(batches_shape) == 3 else None)
  vmapped = jax.vmap(one, in_axes=in_axes)
  return lambda state, inputs, splits, indices: vmapped(
      state, inputs, splits.pixel_mean, splits.pixel_std, indices)


def predict_fn(run: run_lib.Run, indices_ndim: int):
  """(variables, inputs, splits, indices) -> logits (K, n, C) of every member."""
  chunk_size, apply_fn = run.config.chunk_size, run.model.apply
  one = functools.partial(steps.predict, apply_fn=apply_fn, chunk_size=chunk_size)
  if run.size == 1:
    def predict(variables, inputs, splits, indices):
      """``indices`` (n,), or (D, n / D): one share per device (``Layout.examples``)."""
      def share(idx):
        return one(_squeeze(variables), inputs=inputs, pixel_mean=splits.pixel_mean,
                   pixel_std=splits.pixel_std, indices=idx)
      logits = share(indices) if indices.ndim == 1 else jax.vmap(share)(indices)
      return logits.reshape(1, -1, logits.shape[-1])
    return predict

  def predict(variables, inputs, splits, indices):
    in_axes = (0, None, _axis(splits.pixel_mean, 1), _axis(splits.pixel_std, 1),
               0 if indices_ndim == 2 else None)
    return jax.vmap(lambda v, i, m, s, x: one(v, inputs=i, pixel_mean=m, pixel_std=s,
                                               indices=x), in_axes=in_axes)(
        variables, inputs, splits.pixel_mean, splits.pixel_std, indices)
  return predict


class Programs(NamedTuple):
  """The compiled programs of a run and how long compiling them took."""

  train_block: object  # (state, inputs, splits, batch block) -> (state, Counts (K,))
  predictors: dict  # split name -> (variables, inputs, splits, indices) -> logits (K, n, C)
  compile_seconds: float


def compile_programs(run: run_lib.Run, state: TrainState, inputs: inputs_lib.Inputs,
                     splits: inputs_lib.Splits, batch_block: jax.Array | None,
                     eval_indices: dict[str, jax.Array]) -> Programs:
  """Compiles the train block for ``batch_block``'s shape and a predictor per evaluated split.

  ``batch_block`` None: nothing is left to train, only the predictors are compiled.
  """
  start = time.perf_counter()
  train_block = None
  if batch_block is not None:
    train_block = (
        jax.jit(train_block_fn(run, splits, batch_block.shape), donate_argnums=0)
        .lower(state, inputs, splits, batch_block).compile())
  variables = state.variables
  predictors = {
      name: jax.jit(predict_fn(run, indices.ndim)).lower(variables, inputs, splits, indices)
      .compile()
      for name, indices in eval_indices.items()
  }
  return Programs(train_block, predictors, time.perf_counter() - start)


@jax.jit
def counts(logits: jax.Array, labels: jax.Array) -> metrics.Counts:
  """Loss and accuracy sums of each member's logits (K, n, C) against labels (n,) or (K, n)."""
  labels_axis = 0 if labels.ndim == 2 else None
  return jax.vmap(metrics.counts, in_axes=(0, labels_axis))(logits, labels)
