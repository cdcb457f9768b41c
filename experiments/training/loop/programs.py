"""A run's compiled programs: blocks of train steps and the evaluation outputs, for K members.

With K > 1 members, ``steps.train_steps`` and ``steps.outputs`` are
``jax.vmap``ped over the leading member axis of the state (and of the index
arrays that are per member). With K = 1 the state has no member axis and the
program is the plain single-model step. Each program is compiled ahead of
time (``jit(...).lower(...).compile()``, with the run's XLA options) the
first time its shapes are needed, and the time it took is added to
``compile_seconds``, so compiling is timed apart from training.
"""

import functools
import time

import jax
import numpy as np

from experiments.training.loop import pipeline as pipeline_lib
from experiments.training.loop import steps
from experiments.training.objectives.objective import metrics_of
from experiments.training.processes import sharding


def _axis(array: jax.Array, per_member_ndim: int):
  """0 when ``array`` has a member axis (ndim == per_member_ndim), else None (shared)."""
  return 0 if array.ndim == per_member_ndim else None


def train_block_fn(objective, size: int, splits, chunk_size: int, batches_ndim: int):
  """(state, inputs, splits, batch block) -> (state, sums over the block)."""
  one = functools.partial(steps.train_steps, objective, chunk_size=chunk_size)
  if size > 1:
    one = jax.vmap(one, in_axes=(0, None, _axis(splits.pixel_mean, 1),
                                 _axis(splits.pixel_std, 1), 0 if batches_ndim == 3 else None))
  return lambda state, inputs, splits, indices: one(state, inputs, splits.pixel_mean,
                                                    splits.pixel_std, indices)


def outputs_fn(size: int, apply_fn, chunk_size: int, indices_ndim: int, objective):
  """(variables, inputs, splits, indices) -> the objective's outputs (n, ...), or (K, n, ...)
  with K > 1 members."""
  one = functools.partial(steps.outputs, apply_fn=apply_fn, chunk_size=chunk_size,
                          objective=objective)

  def outputs(variables, inputs, splits, indices):
    if size == 1:  # indices (n,), or (D, n / D): one share per device (``Layout.examples``)
      share = lambda idx: one(variables, inputs=inputs, pixel_mean=splits.pixel_mean,  # noqa: E731
                              pixel_std=splits.pixel_std, indices=idx)
      if indices.ndim == 1:
        return share(indices)
      return jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), jax.vmap(share)(indices))
    in_axes = (0, None, _axis(splits.pixel_mean, 1), _axis(splits.pixel_std, 1),
               0 if indices_ndim == 2 else None)
    return jax.vmap(lambda v, i, m, s, x: one(v, inputs=i, pixel_mean=m, pixel_std=s,
                                               indices=x), in_axes=in_axes)(
        variables, inputs, splits.pixel_mean, splits.pixel_std, indices)
  return outputs


@functools.partial(jax.jit, static_argnums=0)
def _sums(objective, outputs, labels: jax.Array):
  """Each member's sums of its outputs (K, n, ...) against labels (n,) or (K, n)."""
  labels_axis = 0 if labels.ndim == 2 else None
  return jax.vmap(objective.sums, in_axes=(0, labels_axis))(outputs, labels)


def member_metrics(objective, sums, size: int) -> list[dict]:
  """Each member's metrics (``objective.metrics_of``) from its sums (scalars when K = 1)."""
  host = jax.tree.map(lambda a: np.asarray(a, np.float64).reshape(size), sharding.to_host(sums))
  return [metrics_of(objective, jax.tree.map(lambda a, k=k: a[k], host)) for k in range(size)]


class Program:
  """The compiled train blocks (one per block length) and evaluation outputs (one per split)."""

  def __init__(self, pipeline: pipeline_lib.Pipeline):
    self._pipeline, self._run = pipeline, pipeline.run
    self._train, self._outputs = {}, {}
    self.compile_seconds = 0.0

  def _compiled(self, cache: dict, key, make, *args):
    if key not in cache:
      start = time.perf_counter()
      cache[key] = make().lower(*args).compile(compiler_options=self._run.compiler_options)
      self.compile_seconds += time.perf_counter() - start
    return cache[key]

  def train(self, state, block: jax.Array):
    """``state`` after the block's steps, and the block's counts (each member's summed)."""
    p, run = self._pipeline, self._run
    compiled = self._compiled(self._train, block.shape, lambda: jax.jit(train_block_fn(
        run.objective, run.size, p.splits, run.config.chunk_size, block.ndim), donate_argnums=0),
                              state, p.inputs, p.splits, block)
    return compiled(state, p.inputs, p.splits, block)

  def outputs(self, variables: dict, split: str):
    """The objective's outputs of ``split``'s examples: (n, ...), or (K, n, ...) with K > 1."""
    p, run = self._pipeline, self._run
    indices = p.evaluated[split]
    compiled = self._compiled(self._outputs, split, lambda: jax.jit(outputs_fn(
        run.size, run.model.apply, run.config.chunk_size, indices.ndim, run.objective)),
                              variables, p.inputs, p.splits, indices)
    return compiled(variables, p.inputs, p.splits, indices)

  def evaluate(self, variables: dict, split: str) -> list[dict]:
    """Each member's metrics on ``split``."""
    outputs = self.outputs(variables, split)
    if self._run.size == 1:
      outputs = jax.tree.map(lambda a: a[None], outputs)
    sums = _sums(self._run.objective, outputs, self._pipeline.labels[split])
    return member_metrics(self._run.objective, sums, self._run.size)
