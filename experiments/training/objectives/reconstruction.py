"""The autoencoders' objectives: reconstruction (ae, conv_ae) and the evidence lower bound (vae).

Both read pixels x/255 in [0, 1] and reconstruct them through σ(logits).

Reconstruction: the training loss per image is the binary cross-entropy
summed over its pixels (``--reconstruction_loss=bce``) or the mean squared
error per pixel (``mse``); every split reports it and the reconstruction's
MSE per pixel, (1/P) Σ_i (σ(z_i) - x_i)², which the summary compares with
PCA's of as many components as the code (``models/pca.py``), computed in the
same run: a linear autoencoder can at best equal it.

ELBO (Kingma & Welling 2014): the loss per image is the negative evidence
lower bound, -ELBO = -E_q[log p(x|z)] + KL(q(z|x) ‖ N(0, I)): a Bernoulli
cross-entropy summed over pixels (one z drawn per image with the
reparameterization trick) plus the KL divergence in closed form, both
reported. Evaluation draws z from a fixed key, so an epoch's figure is
reproducible.

A model has diverged when a loss is NaN or infinite, or (reconstruction)
when its training MSE per pixel exceeds 0.25, worse than every pixel at 0.5.
"""

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from experiments.training.reports import generation
from experiments.training.loop import steps
from experiments.training.objectives.objective import Objective
from experiments.training.objectives.objective import non_finite
from models import losses
from models import pca

MSE_LIMIT = 0.25


def _masked_sums(per_example: dict, mask) -> dict:
  """Σ_n of each per-example value (where ``mask``), and the count."""
  first = next(iter(per_example.values()))
  mask = jnp.ones(first.shape[0], jnp.float32) if mask is None else mask.astype(jnp.float32)
  return {**{k: jnp.sum(v * mask) for k, v in per_example.items()}, "count": jnp.sum(mask)}


class _PerExample:
  """What both objectives share: a dict of per-example values (``_per_example(model output,
  images)``, "loss" among them) trained on, summed over a split and averaged for the test."""

  def _train_kwargs(self, key) -> dict:
    """``steps.apply_train``'s extra arguments for the step's ``key``."""
    del key
    return {}

  def train_step(self, state, images, labels, chunk_size):
    batch_size = labels.shape[0]

    def loss(params, x, y, mask, key):
      del y
      out, batch_stats = steps.apply_train(state, params, x, key, **self._train_kwargs(key))
      sums = _masked_sums(self._per_example(out, x), mask)
      return sums["loss"] / batch_size, (sums, batch_stats)

    return steps.gradient_step(loss, state, images, labels, chunk_size)

  def sums(self, outputs, labels, mask=None):
    del labels
    return _masked_sums(outputs, mask)

  def test_report(self, outputs, labels, class_names) -> dict:
    del labels, class_names
    return {k: float(np.mean(v)) for k, v in outputs.items()}


class Reconstruction(_PerExample, Objective):
  """An autoencoder trained to reconstruct its input."""

  name = "reconstruction"
  metrics = ("loss", "reconstruction_mse")
  lower_is_better = frozenset(metrics)
  pixel_scaling = (0.0, 1.0)

  def __init__(self, loss: str = "bce"):
    self.loss_name, self._loss = loss, losses.RECONSTRUCTION_LOSSES.get(loss)

  def _per_example(self, logits, images) -> dict:
    return {"loss": self._loss(logits, images),
            "reconstruction_mse": losses.squared_pixel_error(logits, images)}

  def outputs(self, apply_fn, variables, images, key):
    del key
    return self._per_example(apply_fn(variables, images, train=False), images)

  @staticmethod
  def reconstruction_logits(model, variables, images):
    return model.apply(variables, images)

  def divergence(self, row: dict, num_classes: int) -> str | None:
    reason = non_finite(row)
    if reason is None and row["train_reconstruction_mse"] > MSE_LIMIT:
      reason = (f"train reconstruction MSE {row['train_reconstruction_mse']:.3g} > "
                f"{MSE_LIMIT}, worse than every pixel at 0.5")
    return reason

  def finish(self, run, loop, data, workdir, plots) -> tuple[dict, list]:
    """The test MSE beside PCA's with as many components; reconstructions and curves."""
    components = run.model.code_size
    baseline = pca.test_reconstruction_mse(data.train_images, data.test_images, components)
    test = loop.test_metrics[0]["reconstruction_mse"]
    logging.info("test reconstruction MSE per pixel %.5f; PCA with %d components %.5f",
                 test, components, baseline)
    fields = {"test_reconstruction_mse": test, "pca_test_reconstruction_mse": baseline,
              "pca_components": components}
    figures = generation.reconstruction_figures(run, loop, data, workdir) if plots and workdir \
        else []
    return fields, figures


class EvidenceLowerBound(_PerExample, generation.Generative):
  """The VAE's -ELBO: reconstruction cross-entropy plus the KL divergence, per image."""

  name = "elbo"
  metrics = ("loss", "reconstruction", "kl")
  lower_is_better = frozenset(metrics)
  pixel_scaling = (0.0, 1.0)
  random_outputs = True  # z ~ q(z|x) for each image

  @staticmethod
  def _per_example(outputs, images) -> dict:
    logits, mean, log_variance = outputs
    reconstruction = losses.bernoulli_cross_entropy(logits, images)
    kl = losses.gaussian_kl(mean, log_variance)
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}

  def _train_kwargs(self, key) -> dict:
    return {"rngs": {"dropout": key, "sample": jax.random.fold_in(key, 1)}}

  def outputs(self, apply_fn, variables, images, key):
    return self._per_example(apply_fn(variables, images, train=False, rngs={"sample": key}),
                             images)

  @staticmethod
  def reconstruction_logits(model, variables, images):
    """decode(μ(x)): the reconstruction through the mean of q(z|x), without sampling."""
    mean, _ = model.apply(variables, images, method=model.encode)
    return model.apply(variables, mean, images.shape[1:], method=model.decode)

  def samples(self, model, variables, key, n: int):
    """σ(decode(z)) for z ~ N(0, I), as uint8 (n, H, W, C)."""
    z = jax.random.normal(key, (n, model.latent_size))
    return generation.pixels(model.apply(variables, z, method=model.decode))

  def finish(self, run, loop, data, workdir, plots) -> tuple[dict, list]:
    """The test -ELBO; the scores of decoded samples; samples, latent space, manifold."""
    fields = {"test_neg_elbo": loop.test_metrics[0]["loss"],
              **generation.sample_scores(run, loop, data)}
    figures = generation.vae_figures(run, loop, data, workdir) if plots and workdir else []
    return fields, figures
