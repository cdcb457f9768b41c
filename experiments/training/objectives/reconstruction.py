"""The autoencoders' objectives: reconstruction (ae, conv_ae) and the evidence lower bound (vae).

Both read pixels x/255 in [0, 1] and reconstruct them through σ(logits).

Reconstruction: the training loss per image is the binary cross-entropy
summed over its pixels (``--reconstruction_loss=bce``) or the mean squared
error per pixel (``mse``); every split reports it and the reconstruction's
MSE per pixel, (1/P) Σ_i (σ(z_i) - x_i)², which the run's report compares with
PCA's of as many components as the code (``reports/objective_reports.py``).

ELBO (Kingma & Welling 2014): the loss per image is the negative evidence
lower bound, -ELBO = -E_q[log p(x|z)] + KL(q(z|x) ‖ N(0, I)): a Bernoulli
cross-entropy summed over pixels (one z drawn per image with the
reparameterization trick) plus the KL divergence in closed form, both
reported. Evaluation draws z from a fixed key, so an epoch's figure is
reproducible. The test report is each per-example value's mean.

A model has diverged when a loss is NaN or infinite, or (reconstruction)
when its training MSE per pixel exceeds 0.25, worse than every pixel at 0.5.
"""

import jax
import jax.numpy as jnp
import numpy as np

from experiments.training.objectives.objective import OneLoss
from experiments.training.objectives.objective import non_finite
from models import losses

MSE_LIMIT = 0.25


def pixels(logits) -> np.ndarray:
  """Bernoulli logits as uint8 pixels: round(255 σ(z))."""
  return np.asarray(jnp.round(jax.nn.sigmoid(logits) * 255.0)).astype(np.uint8)


class _PerExample(OneLoss):
  """What both objectives share: evaluation keeps a dict of per-example values
  (``_evaluated(model output, images)``, "loss" among them), summed over a split and
  averaged for the test report."""

  def sums(self, outputs, labels, mask=None) -> dict:
    """Σ_n of each per-example value (where ``mask``), and the count."""
    del labels
    first = next(iter(outputs.values()))
    mask = jnp.ones(first.shape[0], jnp.float32) if mask is None else mask.astype(jnp.float32)
    return {**{k: jnp.sum(v * mask) for k, v in outputs.items()}, "count": jnp.sum(mask)}

  def test_report(self, outputs, labels, class_names) -> dict:
    del labels, class_names
    return {k: float(np.mean(v)) for k, v in outputs.items()}


class Reconstruction(_PerExample):
  """An autoencoder trained to reconstruct its input."""

  metrics = ("loss", "reconstruction_mse")
  pixel_scaling = (0.0, 1.0)

  def __init__(self, loss: str = "bce"):
    self._loss = losses.RECONSTRUCTION_LOSSES.get(loss)

  def _evaluated(self, network_output, images) -> dict:
    return {"loss": self._loss(network_output, images),
            "reconstruction_mse": losses.squared_pixel_error(network_output, images)}

  @staticmethod
  def reconstruction_logits(model, variables, images):
    return model.apply(variables, images)

  def divergence(self, row: dict, num_classes: int) -> str | None:
    reason = non_finite(row)
    if reason is None and row["train_reconstruction_mse"] > MSE_LIMIT:
      reason = (f"train reconstruction MSE {row['train_reconstruction_mse']:.3g} > "
                f"{MSE_LIMIT}, worse than every pixel at 0.5")
    return reason


class EvidenceLowerBound(_PerExample):
  """The VAE's -ELBO: reconstruction cross-entropy plus the KL divergence, per image."""

  metrics = ("loss", "reconstruction", "kl")
  pixel_scaling = (0.0, 1.0)

  def _rngs(self, key, train: bool) -> dict:
    """z ~ q(z|x) for each image, from the step's key (train) or the chunk's (evaluation)."""
    if train:
      return {"rngs": {"dropout": key, "sample": jax.random.fold_in(key, 1)}}
    return {"rngs": {"sample": key}}

  def _evaluated(self, network_output, images) -> dict:
    logits, mean, log_variance = network_output
    reconstruction = losses.bernoulli_cross_entropy(logits, images)
    kl = losses.gaussian_kl(mean, log_variance)
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}

  @staticmethod
  def reconstruction_logits(model, variables, images):
    """decode(μ(x)): the reconstruction through the mean of q(z|x), without sampling."""
    mean, _ = model.apply(variables, images, method=model.encode)
    return model.apply(variables, mean, images.shape[1:], method=model.decode)

  def samples(self, model, variables, key, n: int):
    """σ(decode(z)) for z ~ N(0, I), as uint8 (n, H, W, C)."""
    z = jax.random.normal(key, (n, model.latent_size))
    return pixels(model.apply(variables, z, method=model.decode))
