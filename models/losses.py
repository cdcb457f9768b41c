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
