"""Weight penalties, and which parameters count as weights.

The weights are the kernels of the dense and convolutional layers: the
parameter arrays with two or more dimensions. Biases, batch-norm scales γ
and offsets β and PReLU's α are left alone by the penalties here and by
decoupled weight decay (models/optimizers.py), as is usual.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp


def weight_mask(params):
  """True for each weight (a kernel, ndim >= 2), False for the other parameters."""
  return jax.tree.map(lambda p: p.ndim >= 2, params)


class Penalty(NamedTuple):
  """R(θ) = λ1 Σ_w |w| + (λ2/2) Σ_w w², summed over the weights w; added to the loss.

  Its gradient is λ1 sign(w) + λ2 w: with plain SGD the L2 term is exactly
  weight decay w ← w - α λ2 w. A term whose λ is None is left out of the
  computation; λ may be an array (one value per model trained under vmap),
  and λ = 0 contributes exactly 0.
  """

  l1: float | jax.Array | None = None
  l2: float | jax.Array | None = None

  @property
  def active(self) -> bool:
    """Whether any term is computed at all."""
    return self.l1 is not None or self.l2 is not None

  def __call__(self, params) -> jax.Array:
    total = jnp.zeros((), jnp.float32)
    for w, is_weight in zip(jax.tree.leaves(params), jax.tree.leaves(weight_mask(params))):
      if is_weight:
        if self.l1 is not None:
          total += self.l1 * jnp.sum(jnp.abs(w))
        if self.l2 is not None:
          total += 0.5 * self.l2 * jnp.sum(jnp.square(w))
    return total
