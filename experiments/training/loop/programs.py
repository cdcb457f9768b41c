"""A run's arrays on its devices and its compiled programs: blocks of train steps, evaluation.

``Pipeline``: run -> splits (host) -> the dataset, splits, evaluated indices and
labels placed by the run's layout (``sharding.Layout``) -> the initial state ->
each epoch's blocks of batch indices, drawn on the host and placed once. The
loop, the sweep's calibration and the benchmark all build it here.

``train_steps`` runs a block of batches as one ``lax.scan`` of the objective's
``train_step``; each batch is a row of example indices, gathered from the
uint8 dataset on the device and scaled to the model's input inside the step,
so no host transfer happens per step. ``outputs`` evaluates the objective's
per-example outputs for an index array in chunks.

``Program`` compiles them for the run: with K > 1 members ``jax.vmap``ped over
the leading member axis of the state (and of the arrays that are per member,
``Pipeline.member_axes``); with K = 1 the state has no member axis and the
program is the plain single-model one. Each program is compiled ahead of time
(``jit(...).lower(...).compile()``, with the run's XLA options) the first time
its shapes are needed, and the time it took is added to ``compile_seconds``,
so compiling is timed apart from training.
"""

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from data import datasets
from experiments.training.loop import batches as batches_lib
from experiments.training.loop import dataset as dataset_lib
from experiments.training.loop import state as state_lib
from experiments.training.objectives.objective import in_chunks
from experiments.training.objectives.objective import metrics_of
from experiments.training.processes import sharding

EVALUATION_SEED = 0  # the key of an objective that samples while evaluating (a VAE's z)


class Pipeline:
  """The placed arrays of one run; ``blocks(epoch)`` gives an epoch's placed batch indices."""

  def __init__(self, run, data: dataset_lib.HostData, local: bool = False,
               inputs: dataset_lib.Inputs | None = None):
    self.run, self.data = run, data
    self.layout = layout = sharding.Layout(run.size, run.plan.batch_size, local)
    self.host_splits = host = batches_lib.splits(run, data)
    per_member = [a.ndim == base + 1 for a, base in zip(host, (1, 1, 0, 0))]
    self.splits = batches_lib.Splits(*(layout.per_member(a) if k else layout.replicated(a)
                                       for a, k in zip(host, per_member)))
    self.per_member = batches_lib.Splits(*per_member)  # which split arrays have a member axis
    self.inputs = layout.replicated(dataset_lib.to_device(data) if inputs is None else inputs)
    evaluated = {"test": dataset_lib.test_indices(data)}
    if host.validation.shape[-1]:
      evaluated = {"validation": host.validation, **evaluated}
    self.evaluated = {name: layout.examples(i) for name, i in evaluated.items()}
    self.labels = {name: layout.replicated(dataset_lib.labels(data, i))
                   for name, i in evaluated.items()}
    self.pixel_scaling = [(float(m), float(s)) for m, s in zip(
        np.broadcast_to(host.pixel_mean, (run.size,)),
        np.broadcast_to(host.pixel_std, (run.size,)))]

  def initial_state(self) -> state_lib.TrainState:
    """Every member's state at step 0, placed (no member axis when K = 1)."""
    return self.layout.per_member(state_lib.initial_state(self.run))

  def blocks(self, epoch: int, first_steps_alone: bool = False) -> list:
    """``epoch``'s blocks of batch indices, drawn on the host and placed once."""
    batches = batches_lib.epoch_batches(self.run, self.host_splits, epoch)
    return [self.layout.batches(b)
            for b in batches_lib.epoch_blocks(self.run, batches, first_steps_alone)]


def train_steps(objective, state, inputs: dataset_lib.Inputs, pixel_mean: jax.Array,
                pixel_std: jax.Array, batch_indices: jax.Array, chunk_size: int | None = None):
  """``objective.train_step`` on each row of ``batch_indices`` (S, B) in turn, as one
  ``lax.scan``.

  Row s holds the dataset indices of batch s; its uint8 images are gathered
  and scaled to (x/255 - mean) / std inside the step. Returns the final state
  and the sums over the S batches.
  """

  def body(state, idx):
    images = datasets.to_model_input(inputs.images[idx], pixel_mean, pixel_std)
    return objective.train_step(state, images, inputs.labels[idx], chunk_size)

  state, step_sums = jax.lax.scan(body, state, batch_indices)
  return state, jax.tree.map(jnp.sum, step_sums)


def outputs(objective, apply_fn, chunk_size: int, variables: dict, inputs: dataset_lib.Inputs,
            pixel_mean: jax.Array, pixel_std: jax.Array, indices: jax.Array):
  """The objective's outputs (n, ...) for the examples ``indices`` (n,), in evaluation mode.

  The examples go through in chunks of ``chunk_size`` (``lax.map``), the last
  one padded with example 0; the padded rows are cut off. Chunk c gets the key
  fold_in(key(EVALUATION_SEED), c), which an objective that samples while
  evaluating (a VAE's z) draws from: the same draws every epoch.
  """

  def chunk_outputs(idx, key):
    images = datasets.to_model_input(inputs.images[idx], pixel_mean, pixel_std)
    return objective.outputs(apply_fn, variables, images, key)

  chunked = in_chunks(indices, chunk_size)
  keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(
      jax.random.key(EVALUATION_SEED), jnp.arange(chunked.shape[0]))
  chunks = jax.lax.map(lambda args: chunk_outputs(*args), (chunked, keys))
  return jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:])[:indices.shape[0]], chunks)


def _outputs_fn(run, indices_ndim: int, per_member: batches_lib.Splits):
  """(variables, inputs, pixel mean, pixel std, indices) -> the objective's outputs (n, ...),
  or (K, n, ...) with K > 1 members."""
  one = functools.partial(outputs, run.objective, run.model.apply, run.config.chunk_size)
  if run.size > 1:
    return jax.vmap(one, in_axes=_member_axes(per_member, indices_ndim == 2))
  if indices_ndim == 1:
    return one

  def shares(variables, inputs, mean, std, indices):  # (D, n / D): one share per device
    share = jax.vmap(lambda idx: one(variables, inputs, mean, std, idx))(indices)
    return jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), share)
  return shares


def _member_axes(per_member: batches_lib.Splits, indices_per_member: bool) -> tuple:
  """vmap's axes of (state or variables, inputs, pixel mean, pixel std, indices) over K members:
  the state's always, the shared dataset's never, the others' where they have one."""
  axis = lambda has: 0 if has else None  # noqa: E731
  return (0, None, axis(per_member.pixel_mean), axis(per_member.pixel_std),
          axis(indices_per_member))


@functools.partial(jax.jit, static_argnums=0)
def _sums(objective, outputs, labels: jax.Array):
  """Each member's sums of its outputs (K, n, ...) against labels (n,) or (K, n)."""
  labels_axis = 0 if labels.ndim == 2 else None
  return jax.vmap(objective.sums, in_axes=(0, labels_axis))(outputs, labels)


def member_metrics(objective, sums, size: int) -> list[dict]:
  """Each member's metrics (``metrics_of``) from its sums (scalars when K = 1)."""
  host = jax.tree.map(lambda a: np.asarray(a, np.float64).reshape(size), sharding.to_host(sums))
  return [metrics_of(objective, jax.tree.map(lambda a, k=k: a[k], host)) for k in range(size)]


class Program:
  """The compiled train blocks (one per block length) and evaluation outputs (one per split)."""

  def __init__(self, pipeline: Pipeline):
    self._pipeline, self._run = pipeline, pipeline.run
    self._train, self._outputs = {}, {}
    self.compile_seconds = 0.0

  def _compiled(self, cache: dict, key, make, *args):
    if key not in cache:
      start = time.perf_counter()
      cache[key] = make().lower(*args).compile(compiler_options=self._run.compiler_options)
      self.compile_seconds += time.perf_counter() - start
    return cache[key]

  def train_block(self, state, block: jax.Array):
    """``state`` after the block's steps (``train_steps``), and the block's sums (each
    member's)."""
    p, run = self._pipeline, self._run
    args = (state, p.inputs, p.splits.pixel_mean, p.splits.pixel_std, block)

    def make():
      one = functools.partial(train_steps, run.objective, chunk_size=run.config.chunk_size)
      if run.size > 1:
        one = jax.vmap(one, in_axes=_member_axes(p.per_member, block.ndim == 3))
      return jax.jit(one, donate_argnums=0)

    return self._compiled(self._train, block.shape, make, *args)(*args)

  def outputs(self, variables: dict, split: str):
    """The objective's outputs of ``split``'s examples: (n, ...), or (K, n, ...) with K > 1."""
    p = self._pipeline
    indices = p.evaluated[split]
    args = (variables, p.inputs, p.splits.pixel_mean, p.splits.pixel_std, indices)
    make = lambda: jax.jit(_outputs_fn(self._run, indices.ndim, p.per_member))  # noqa: E731
    return self._compiled(self._outputs, split, make, *args)(*args)

  def evaluate(self, variables: dict, split: str) -> list[dict]:
    """Each member's metrics on ``split``."""
    outputs = self.outputs(variables, split)
    if self._run.size == 1:
      outputs = jax.tree.map(lambda a: a[None], outputs)
    sums = _sums(self._run.objective, outputs, self._pipeline.labels[split])
    return member_metrics(self._run.objective, sums, self._run.size)
