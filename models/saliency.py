"""Saliency maps: how much each input pixel moves a class score.

For an image x and class c, the map is S_ij = max_ch |∂z_c(x) / ∂x_ij,ch|,
the gradient of the class score (the logit z_c, before the softmax) with
respect to the input, its absolute value maximized over channels
(Simonyan, Vedaldi & Zisserman 2014). Computed in eval mode.
"""

import jax
import jax.numpy as jnp


def saliency_maps(apply_fn, variables: dict, images: jax.Array, classes: jax.Array) -> jax.Array:
  """(N, H, W) maps of images (N, H, W, C) for the classes (N,) of each image."""

  def score(image, c):
    return apply_fn(variables, image[None], train=False)[0, c]

  gradients = jax.vmap(jax.grad(score))(images, classes)
  return jnp.max(jnp.abs(gradients), axis=-1)
