"""Loss functions on a batch of N examples, each stated with its formula.

Each averages over the batch of N examples (and, for the binary loss, over the
K outputs too); the docstrings give the exact normalization.
"""

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
  """Sigmoid binary cross-entropy, averaged over all N x K outputs.

  L = -(1/(N K)) Σ_{n,k} [y_nk log σ(z_nk) + (1 - y_nk) log(1 - σ(z_nk))],
  computed from the logits z in the numerically stable form
  max(z, 0) - z y + log(1 + exp(-|z|)).

  Args:
    logits: (N, K) pre-activations z.
    targets: (N, K) targets y in [0, 1].
  """
  return optax.sigmoid_binary_cross_entropy(logits, targets).mean()


def mean_squared_error(outputs: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean squared error as written in the course: E = 1/(2N) Σ_n Σ_k (o_nk - y_nk)².

  The 1/2 makes the gradient dE/do_nk = (o_nk - y_nk)/N.

  Args:
    outputs: (N, K) network outputs o.
    targets: (N, K) targets y.
  """
  return 0.5 * jnp.sum(jnp.square(outputs - targets)) / outputs.shape[0]
