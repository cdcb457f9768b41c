"""Inverted dropout whose rate is given at call time, so models trained together may differ in it."""

import flax.linen as nn
import jax
import jax.numpy as jnp


class Dropout(nn.Module):
  """Inverted dropout with its rate p given at call time (a float, or an array under vmap).

  In training, x / (1 - p) where a Bernoulli(1 - p) mask keeps the unit, else 0
  (the mask from the "dropout" PRNG stream); p = 0 keeps every unit exactly.
  Without a rate, or in evaluation, the identity. (Flax's ``nn.Dropout`` fixes
  p when the module is built, so models trained together could not differ in it.)
  """

  @nn.compact
  def __call__(self, x: jax.Array, rate, train: bool) -> jax.Array:
    if rate is None or not train:
      return x
    keep = 1.0 - rate
    mask = jax.random.bernoulli(self.make_rng("dropout"), keep, x.shape)
    return jnp.where(mask, x / keep, 0.0)
