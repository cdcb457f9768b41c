"""Autoencoders: dense, convolutional, and the variational autoencoder (Kingma & Welling 2014).

Each reads images x (N, H, W, C) with pixels in [0, 1] (x/255) and returns the
logits of its reconstruction (N, H, W, C): the reconstruction is σ(logits),
read as each pixel's Bernoulli probability. ``encode`` and ``decode`` are its
two halves (``model.apply(variables, x, method=model.encode)``).

ae       x -> [Dense(h) -> ReLU]* -> Dense(code) -> [Dense(h) -> ReLU]* (mirrored)
         -> Dense(H W C): 784-256-64-256-784 by default. The code is linear, so
         with no hidden layer and a squared loss the best such model spans
         PCA's subspace of the same size (tested).
conv_ae  x -> [3x3 conv stride 2 (32, 64) -> ReLU] -> Dense(code) -> Dense(7 7 64)
         -> ReLU -> [3x3 transposed conv stride 2 (32, then C)], ReLU between:
         28x28 -> 14x14 -> 7x7 -> code -> 7x7 -> 14x14 -> 28x28.
vae      encoder x -> Dense(400) -> ReLU -> (μ, log σ²) of q(z|x) = N(μ, diag σ²);
         z = μ + σ ⊙ ε, ε ~ N(0, I) (the reparameterization trick: z is a
         differentiable function of the parameters and an independent draw);
         decoder z -> Dense(400) -> ReLU -> Dense(H W C), Bernoulli p(x|z).
         784-400-20 as PyTorch's example. ε is drawn from the "sample" PRNG stream.

The strided convolutions run as stride-1 ones on ``conv.space_to_depth`` and
the transposed ones as sub-pixel convolutions (``conv.depth_to_space``), so
every convolution is ``models/conv.py``'s, whose gradient is fast on CPU.
"""

from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from models import conv


def _conv(features: int) -> nn.Conv:
  return nn.Conv(features, (3, 3), padding="SAME", conv_general_dilated=conv.conv_general_dilated)


class _Dense(nn.Module):
  """[Dense(h) -> ReLU]* -> Dense(out): an encoder or a decoder, its output reshaped to ``shape``."""

  hidden_sizes: Sequence[int]

  @nn.compact
  def __call__(self, x, shape: tuple[int, ...]):
    x = x.reshape((x.shape[0], -1))
    for width in self.hidden_sizes:
      x = nn.relu(nn.Dense(width)(x))
    x = nn.Dense(int(np.prod(shape)))(x)
    return x.reshape((x.shape[0], *shape))


class DenseAutoencoder(nn.Module):
  """The dense autoencoder: ``hidden_sizes`` down to ``code_size`` and back, mirrored."""

  default_dropout: ClassVar[float] = 0.0
  num_classes: int = 10  # unused: the registry builds every model with it
  hidden_sizes: Sequence[int] = (256,)
  code_size: int = 64

  def setup(self):
    self.encoder = _Dense(tuple(self.hidden_sizes))
    self.decoder = _Dense(tuple(reversed(self.hidden_sizes)))

  def encode(self, x):
    return self.encoder(x, (self.code_size,))

  def decode(self, code, shape=(28, 28, 1)):
    return self.decoder(code, shape)

  def __call__(self, x, train: bool = False, dropout=None):
    del train, dropout
    return self.decode(self.encode(x), x.shape[1:])


class ConvAutoencoder(nn.Module):
  """The convolutional autoencoder (module docstring); H and W must be multiples of 4."""

  default_dropout: ClassVar[float] = 0.0
  num_classes: int = 10
  code_size: int = 64

  @nn.compact
  def __call__(self, x, train: bool = False, dropout=None):
    del train, dropout
    height, width, channels = x.shape[1:]
    h = nn.relu(_conv(32)(conv.space_to_depth(x)))
    h = nn.relu(_conv(64)(conv.space_to_depth(h)))
    code = nn.Dense(self.code_size)(h.reshape((h.shape[0], -1)))
    h = nn.relu(nn.Dense(height // 4 * width // 4 * 64)(code))
    h = h.reshape((h.shape[0], height // 4, width // 4, 64))
    h = nn.relu(conv.depth_to_space(_conv(4 * 32)(h)))
    return conv.depth_to_space(_conv(4 * channels)(h))


class VAE(nn.Module):
  """The variational autoencoder; ``__call__`` gives (reconstruction logits, μ, log σ²)."""

  default_dropout: ClassVar[float] = 0.0
  num_classes: int = 10
  hidden_sizes: Sequence[int] = (400,)
  latent_size: int = 20

  def setup(self):
    self.encoder = _Dense(tuple(self.hidden_sizes))
    self.decoder = _Dense(tuple(reversed(self.hidden_sizes)))

  def encode(self, x):
    """(μ, log σ²) of q(z|x), each (N, latent)."""
    both = self.encoder(x, (2 * self.latent_size,))
    return both[:, :self.latent_size], both[:, self.latent_size:]

  def decode(self, z, shape=(28, 28, 1)):
    """The logits of p(x|z), (N, *shape)."""
    return self.decoder(z, shape)

  def __call__(self, x, train: bool = False, dropout=None):
    del train, dropout
    mean, log_variance = self.encode(x)
    epsilon = jax.random.normal(self.make_rng("sample"), mean.shape, mean.dtype)
    return self.decode(reparameterize(mean, log_variance, epsilon), x.shape[1:]), mean, \
        log_variance


def reparameterize(mean: jax.Array, log_variance: jax.Array, epsilon: jax.Array) -> jax.Array:
  """z = μ + σ ⊙ ε with σ = exp(½ log σ²): a draw of N(μ, diag σ²) differentiable in μ and σ."""
  return mean + jnp.exp(0.5 * log_variance) * epsilon
