"""What a model is trained for: the math the loop asks of a classifier, an autoencoder, a VAE
or a GAN, and which the loop, checkpoints, sweeps and processes never look inside.

An ``Objective`` is eight members, two values and six pure functions:

  metrics        what each split reports, "loss" first (``{split}_{metric}`` in a
                 run's rows);
  pixel_scaling  images are (x/255 - mean) / std with this (mean, std), or None:
                 the config's (x/255, or standardized);
  optimizer      a member's optimizer (a GAN's: one per network);
  train_step     one compiled update of a member's state on a batch, and the
                 batch's sums (``OneLoss``: the one gradient step on one loss);
  outputs        what evaluation keeps of each example (a classifier's logits);
  sums           a split's sums from those outputs, "count" among them
                 (``metrics_of`` divides them once);
  divergence     why a row shows a model no longer usable, or None;
  test_report    the kept model's test-split report for summary.json, or None.

Every objective is written for one member (no member axis); ``loop/programs.py``
vmaps it over the K members of a run. What a run reports beyond its metrics (a
generator's scores, figures) is ``experiments/training/reports/``'s.
"""

import math

import jax
import jax.numpy as jnp


class Objective:
  """The defaults: one network, one optimizer, images x/255 (or standardized)."""

  metrics: tuple[str, ...] = ("loss",)
  pixel_scaling: tuple[float, float] | None = None

  def optimizer(self, run, member):
    return run.optimizer(member)

  def train_step(self, state, images, labels, chunk_size):
    raise NotImplementedError

  def outputs(self, apply_fn, variables, images, key):
    raise NotImplementedError

  def sums(self, outputs, labels, mask=None) -> dict:
    raise NotImplementedError

  def divergence(self, row: dict, num_classes: int) -> str | None:
    """A loss that is NaN or infinite (the first such, by name)."""
    del num_classes
    return non_finite(row)

  def test_report(self, outputs, labels, class_names) -> dict | None:
    del outputs, labels, class_names
    return None


class OneLoss(Objective):
  """An objective of one network trained on one loss by the one gradient step.

  The network's output on a batch becomes the per-example outputs evaluation
  keeps (``_evaluated``); their ``sums`` hold the loss summed over the batch,
  and the step descends on it: (1/B) Σ_n ∇ℓ_n + ∇R(θ), R the state's weight
  penalty. Evaluation runs the same network in evaluation mode, so a split's
  metrics and a batch's are one computation.
  """

  def _rngs(self, key, train: bool) -> dict:
    """The network's random streams besides dropout's: none."""
    del key, train
    return {}

  def _evaluated(self, network_output, images):
    """What evaluation keeps of the network's output: the output itself."""
    del images
    return network_output

  def train_step(self, state, images, labels, chunk_size):
    """One update on a batch of B examples, and the batch's sums (before the update).

    Step t's randomness is fold_in(state.key, t). When B > ``chunk_size``
    (full-batch descent), the gradient and the sums are summed over chunks of
    ``chunk_size`` examples in a ``lax.scan``, the last chunk zero-padded and
    masked, so memory stays bounded and the result is the same sum (not with
    batch norm, whose statistics would be per chunk: the config refuses it).
    """
    batch_size = labels.shape[0]

    def loss(params, x, y, mask, key):
      out, batch_stats = apply_train(state, params, x, key, **self._rngs(key, train=True))
      sums = self.sums(self._evaluated(out, x), y, mask)
      return sums["loss"] / batch_size, (sums, batch_stats)

    step_key = jax.random.fold_in(state.key, state.step)
    grad_fn = jax.grad(loss, has_aux=True)
    if chunk_size is None or batch_size <= chunk_size:
      grads, (sums, batch_stats) = grad_fn(state.params, images, labels, None, step_key)
    else:
      grads, sums = _chunked_gradient(grad_fn, state.params, images, labels, chunk_size,
                                      step_key)
      batch_stats = state.batch_stats
    if state.penalty.active:
      grads = jax.tree.map(jnp.add, grads, jax.grad(state.penalty)(state.params))
    return state.apply_gradients(grads=grads, batch_stats=batch_stats), sums

  def outputs(self, apply_fn, variables, images, key):
    return self._evaluated(apply_fn(variables, images, train=False,
                                    **self._rngs(key, train=False)), images)


def apply_train(state, params, images: jax.Array, key: jax.Array, **kwargs):
  """``state.apply_fn`` in training mode with the step's dropout rate and keys: its output and
  the updated batch statistics ({} without batch norm)."""
  variables = {"params": params}
  kwargs = {"train": True, "dropout": state.dropout, "rngs": {"dropout": key}, **kwargs}
  if state.batch_stats:
    variables["batch_stats"] = state.batch_stats
    out, updated = state.apply_fn(variables, images, mutable=["batch_stats"], **kwargs)
    return out, updated.get("batch_stats", {})
  return state.apply_fn(variables, images, **kwargs), {}


def in_chunks(array: jax.Array, chunk_size: int) -> jax.Array:
  """(N, ...) zero-padded to a multiple of ``chunk_size`` and cut into (chunks, chunk_size, ...)."""
  num_chunks = -(-array.shape[0] // chunk_size)
  pad = num_chunks * chunk_size - array.shape[0]
  padded = jnp.pad(array, [(0, pad)] + [(0, 0)] * (array.ndim - 1))
  return padded.reshape(num_chunks, chunk_size, *array.shape[1:])


def _chunked_gradient(grad_fn, params, images, labels, chunk_size, step_key):
  """Σ over chunks of ``grad_fn``'s gradient and sums; the last chunk padded and masked."""
  mask = jnp.ones(labels.shape[0], jnp.float32)  # zero where padded, once in chunks
  chunks = jax.tree.map(lambda a: in_chunks(a, chunk_size), (images, labels, mask))
  num_chunks = chunks[1].shape[0]

  def body(total, chunk):
    i, (x, y, m) = chunk
    grads, (sums, _) = grad_fn(params, x, y, m, jax.random.fold_in(step_key, i))
    return jax.tree.map(jnp.add, total, (grads, sums)), None

  shapes = jax.eval_shape(grad_fn, params, *(a[0] for a in chunks), step_key)
  zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), (shapes[0], shapes[1][0]))
  (grads, sums), _ = jax.lax.scan(body, zero, (jnp.arange(num_chunks), chunks))
  return grads, sums


def metrics_of(objective: Objective, sums) -> dict[str, float]:
  """One member's metrics from its sums on the host: each sum over ``count``, in float64."""
  count = float(sums["count"])
  return {name: float(sums[name]) / count for name in objective.metrics}


def non_finite(row: dict) -> str | None:
  """Why ``row`` has a loss that is NaN or infinite ("train loss nan"), or None."""
  for key, value in row.items():
    if key.endswith("_loss") and not math.isfinite(value):
      return f"{key.replace('_', ' ')} {value}"
  return None
