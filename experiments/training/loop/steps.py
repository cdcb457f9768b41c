"""The compiled pieces of training for one member: a block of steps, evaluation outputs.

``train_steps`` runs a block of batches as one ``lax.scan`` of the objective's
``train_step``; each batch is a row of example indices, gathered from the uint8
dataset on the device and scaled to the model's input inside the step, so no
host transfer happens per step. ``outputs`` evaluates the objective's
per-example outputs for an index array in chunks. For a run of K > 1
members, ``programs.py`` vmaps these over the member axis.
"""

import jax
import jax.numpy as jnp

from data import datasets
from experiments.training.loop.dataset import Inputs
from experiments.training.objectives.gradient_step import in_chunks

EVALUATION_SEED = 0  # the key of an objective that samples while evaluating (a VAE's z)


def train_steps(
    objective,
    state,
    inputs: Inputs,
    pixel_mean: jax.Array,
    pixel_std: jax.Array,
    batch_indices: jax.Array,
    chunk_size: int | None = None,
):
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


def outputs(
    variables: dict,
    apply_fn,
    inputs: Inputs,
    pixel_mean: jax.Array,
    pixel_std: jax.Array,
    indices: jax.Array,
    chunk_size: int,
    objective,
):
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
