"""The adversarial objective: a GAN's discriminator and generator, updated in one compiled step.

With D(x) = σ(d(x)) the discriminator's probability that x is real and G the
generator, each step draws noise z ~ N(0, I) for a batch of B real images x
and updates

  the discriminator on  L_D = -(1/B) Σ [log D(x_n) + log(1 - D(G(z_n)))],
  then the generator on L_G = -(1/B) Σ log D(G(z'_n))   (non-saturating:
                        Goodfellow et al. 2014; its gradient does not vanish
                        while D rejects G's samples),

each with its own optimizer (``--optimizer`` for G, ``--discriminator_optimizer``
for D, both from the table), with fresh noise z' for G's update and the
updated D. Both networks and both optimizer states are one member's state
(params {"generator", "discriminator"}, opt_state likewise), so K GANs still
train as one vmapped program. Images are scaled to [-1, 1], G's tanh range.

Every split reports L_D ("loss", on the split's real images and as many
samples), L_G, and the mean D(x) and D(G(z)). A GAN has diverged when a loss
is NaN or infinite, or when the mean D(G(z)) of a training epoch is below
1e-3: the discriminator wins outright and the generator has collapsed.
A run's report scores its samples with the dataset's classifier
(``reports/generation.py``).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from experiments.training.objectives.objective import Objective
from experiments.training.objectives.objective import non_finite

COLLAPSE = 1e-3  # a training epoch's mean D(G(z)) below this: the generator has collapsed


class Optimizers(NamedTuple):
  """The generator's and the discriminator's optimizers, one state each."""

  generator: optax.GradientTransformation
  discriminator: optax.GradientTransformation

  def init(self, params: dict) -> dict:
    return {name: getattr(self, name).init(params[name]) for name in self._fields}


def _bce_sums(logits, real: bool):
  """Σ_n -log σ(z_n) (real) or -log(1 - σ(z_n)) (fake), and Σ_n σ(z_n)."""
  loss = jax.nn.softplus(-logits) if real else jax.nn.softplus(logits)
  return jnp.sum(loss), jnp.sum(jax.nn.sigmoid(logits))


class Adversarial(Objective):
  metrics = ("loss", "generator_loss", "d_real", "d_fake")
  pixel_scaling = (0.5, 0.5)  # (x/255 - 0.5) / 0.5 in [-1, 1]

  def __init__(self, model):
    self.model = model  # the DCGAN: its generate and discriminate methods

  def optimizer(self, run, member):
    return Optimizers(run.optimizer(member), run.discriminator_optimizer(member))

  def train_step(self, state, images, labels, chunk_size):
    del chunk_size  # the config refuses full-batch descent for a GAN
    batch = labels.shape[0]
    model, params, stats = self.model, state.params, state.batch_stats
    key = jax.random.fold_in(state.key, state.step)
    z = jax.random.normal(jax.random.fold_in(key, 0), (batch, model.latent_size))
    z_again = jax.random.normal(jax.random.fold_in(key, 1), (batch, model.latent_size))

    def run_model(p, batch_stats, method, x):
      out, updated = model.apply({"params": p, "batch_stats": batch_stats}, x, train=True,
                                 method=method, mutable=["batch_stats"])
      return out, updated["batch_stats"]

    fake, g_stats = run_model(params, stats, model.generate, z)

    def discriminator_loss(d_params):
      p = {**params, "discriminator": d_params}
      real_logits, s = run_model(p, g_stats, model.discriminate, images)
      fake_logits, s = run_model(p, s, model.discriminate, jax.lax.stop_gradient(fake))
      (real_loss, d_real), (fake_loss, d_fake) = (_bce_sums(real_logits, True),
                                                  _bce_sums(fake_logits, False))
      return (real_loss + fake_loss) / batch, (s, {"loss": real_loss + fake_loss,
                                                   "d_real": d_real, "d_fake": d_fake})

    d_grads, (stats, sums) = jax.grad(discriminator_loss, has_aux=True)(params["discriminator"])
    tx = state.tx
    updates, d_opt = tx.discriminator.update(d_grads, state.opt_state["discriminator"],
                                             params["discriminator"])
    params = {**params, "discriminator": optax.apply_updates(params["discriminator"], updates)}

    def generator_loss(g_params):
      p = {**params, "generator": g_params}
      samples, s = run_model(p, stats, model.generate, z_again)
      logits, s = run_model(p, s, model.discriminate, samples)
      loss, _ = _bce_sums(logits, True)
      return loss / batch, (s, loss)

    g_grads, (stats, g_loss) = jax.grad(generator_loss, has_aux=True)(params["generator"])
    updates, g_opt = tx.generator.update(g_grads, state.opt_state["generator"],
                                         params["generator"])
    params = {**params, "generator": optax.apply_updates(params["generator"], updates)}
    sums = {**sums, "generator_loss": g_loss, "count": jnp.asarray(batch, jnp.float32)}
    new_state = state.replace(step=state.step + 1, params=params, batch_stats=stats,
                              opt_state={"generator": g_opt, "discriminator": d_opt})
    return new_state, sums

  def outputs(self, apply_fn, variables, images, key):
    """D's logits of the split's real images and of as many samples G draws from ``key``."""
    model = self.model
    z = jax.random.normal(key, (images.shape[0], model.latent_size))
    fake = apply_fn(variables, z, method=model.generate)
    return {"real": apply_fn(variables, images, method=model.discriminate),
            "fake": apply_fn(variables, fake, method=model.discriminate)}

  def sums(self, outputs, labels, mask=None):
    del labels, mask
    real_loss, d_real = _bce_sums(outputs["real"], True)
    fake_loss, d_fake = _bce_sums(outputs["fake"], False)
    generator_loss, _ = _bce_sums(outputs["fake"], True)
    return {"loss": real_loss + fake_loss, "generator_loss": generator_loss, "d_real": d_real,
            "d_fake": d_fake, "count": jnp.asarray(outputs["real"].shape[0], jnp.float32)}

  def divergence(self, row: dict, num_classes: int) -> str | None:
    reason = non_finite(row)
    if reason is None and row["train_d_fake"] < COLLAPSE:
      reason = (f"mean D(G(z)) {row['train_d_fake']:.2g} < {COLLAPSE:g} over the epoch: the "
                "discriminator wins outright, the generator has collapsed")
    return reason

  def samples(self, model, variables, key, n: int):
    """n generated images as uint8 (n, H, W, C)."""
    z = jax.random.normal(key, (n, model.latent_size))
    images = model.apply(variables, z, method=model.generate)
    return jnp.clip(jnp.round((images + 1.0) * 127.5), 0, 255).astype(jnp.uint8)
