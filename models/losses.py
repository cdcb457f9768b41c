"""Loss functions on a batch of N examples, each stated with its formula.

Each sums over the K outputs of an example and averages over the N examples,
so that, with its output function ŷ = g(z) (identity, softmax, sigmoid), the
gradient with respect to the pre-activations is the same for all three:
dL/dz_nk = (ŷ_nk - y_nk) / N. ``LOSSES`` pairs each loss with that g.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from data import errors


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Softmax cross-entropy: L = -(1/N) Σ_n log softmax(z_n)[y_n].

  Args:
    logits: (N, K) pre-activations z.
    labels: (N,) integer classes y_n in [0, K).
  """
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def binary_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Sigmoid binary cross-entropy, summed over the K outputs, averaged over N.

  L = -(1/N) Σ_n Σ_k [y_nk log σ(z_nk) + (1 - y_nk) log(1 - σ(z_nk))],
  computed from the logits z in the numerically stable form
  max(z, 0) - z y + log(1 + exp(-|z|)). (Keras and ``optax.*.mean()`` divide
  by N K instead; summing over k gives the course's gradient (σ(z) - y)/N.)

  Args:
    logits: (N, K) pre-activations z.
    targets: (N, K) targets y in [0, 1].
  """
  return optax.sigmoid_binary_cross_entropy(logits, targets).sum() / logits.shape[0]


def mean_squared_error(outputs: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean squared error as written in the course: E = 1/(2N) Σ_n Σ_k (o_nk - y_nk)².

  The 1/2 makes the gradient dE/do_nk = (o_nk - y_nk)/N.

  Args:
    outputs: (N, K) network outputs o.
    targets: (N, K) targets y.
  """
  return 0.5 * jnp.sum(jnp.square(outputs - targets)) / outputs.shape[0]


class Loss(NamedTuple):
  """A loss of pre-activations z and (N, K) targets y, and its output function ŷ = g(z)."""

  fn: Callable[[jax.Array, jax.Array], jax.Array]
  output: Callable[[jax.Array], jax.Array]


LOSSES = {
    "mean_squared_error": Loss(mean_squared_error, lambda z: z),
    "softmax_cross_entropy": Loss(
        lambda z, y: optax.softmax_cross_entropy(z, y).mean(), jax.nn.softmax),
    "binary_cross_entropy": Loss(binary_cross_entropy, jax.nn.sigmoid),
}


def bernoulli_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Per example, summed over its pixels: -Σ_i [x_i log σ(z_i) + (1 - x_i) log(1 - σ(z_i))].

  The negative log-likelihood of pixels x in [0, 1] under independent
  Bernoulli(σ(z_i)) (a VAE's reconstruction term), from the logits z in the
  stable form max(z, 0) - z x + log(1 + exp(-|z|)).

  Args:
    logits: (N, ...) pre-activations z.
    targets: (N, ...) pixels x in [0, 1].
  """
  per_pixel = optax.sigmoid_binary_cross_entropy(logits, targets)
  return per_pixel.reshape(per_pixel.shape[0], -1).sum(-1)


def squared_pixel_error(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Per example, the mean over its P pixels of (σ(z_i) - x_i)²: the reconstruction's MSE."""
  squared = jnp.square(jax.nn.sigmoid(logits) - targets)
  return squared.reshape(squared.shape[0], -1).mean(-1)


def gaussian_kl(mean: jax.Array, log_variance: jax.Array) -> jax.Array:
  """Per example, KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² - log σ_j² - 1), in closed form."""
  return 0.5 * jnp.sum(jnp.square(mean) + jnp.exp(log_variance) - log_variance - 1.0, axis=-1)


# An autoencoder's training loss per example, from reconstruction logits and pixels in [0, 1].
RECONSTRUCTION_LOSSES = errors.Registry("reconstruction_loss", {
    "bce": bernoulli_cross_entropy,
    "mse": squared_pixel_error,
})
