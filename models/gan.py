"""A DCGAN for 28x28 images (Radford et al. 2016): a generator and a discriminator in one module.

Generator G: z ~ N(0, I) (latent_size) -> Dense(7 7 2w) -> BN -> ReLU
    -> transposed conv stride 2 to w -> BN -> ReLU                      (14x14)
    -> transposed conv stride 2 to C -> tanh                            (28x28, in [-1, 1])
Discriminator D: x in [-1, 1] -> conv stride 2 (w) -> LeakyReLU(0.2)   (14x14)
    -> conv stride 2 (2w) -> BN -> LeakyReLU(0.2)                       (7x7)
    -> Dense(1): the logit of "x is real", D(x) = σ(logit).
w = ``width`` = 64: half of DCGAN's channels.
Batch normalization where DCGAN puts it: in G everywhere but the output, in D
everywhere but the input layer. A transposed convolution with stride 2 runs
as a 3x3 convolution to 4 times the channels and ``conv.depth_to_space`` (a
sub-pixel convolution, the same family of linear maps); a strided one as
``conv.space_to_depth`` and a 3x3 convolution. So every convolution is
``models/conv.py``'s, fast inside the compiled epoch on CPU.

``generate(z)`` and ``discriminate(x)`` are the two networks;
``variables["params"]`` holds "generator" and "discriminator", each trained
by its own optimizer (``experiments/training/objectives/adversarial.py``).
"""

from typing import ClassVar

import flax.linen as nn
import jax

from models import conv

BATCH_NORM_MOMENTUM = 0.9


def _conv(features: int) -> nn.Conv:
  return nn.Conv(features, (3, 3), padding="SAME", conv_general_dilated=conv.conv_general_dilated)


def _batch_norm(x, train: bool):
  return nn.BatchNorm(use_running_average=not train, momentum=BATCH_NORM_MOMENTUM)(x)


class Generator(nn.Module):
  shape: tuple[int, int, int] = (28, 28, 1)
  width: int = 32

  @nn.compact
  def __call__(self, z, train: bool = False):
    height, width, channels = self.shape
    x = nn.Dense(height // 4 * width // 4 * 2 * self.width, use_bias=False)(z)
    x = nn.relu(_batch_norm(x, train)).reshape((z.shape[0], height // 4, width // 4,
                                                2 * self.width))
    x = conv.depth_to_space(_conv(4 * self.width)(x))
    x = nn.relu(_batch_norm(x, train))
    return jax.numpy.tanh(conv.depth_to_space(_conv(4 * channels)(x)))


class Discriminator(nn.Module):
  width: int = 32

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.leaky_relu(_conv(self.width)(conv.space_to_depth(x)), 0.2)
    x = _conv(2 * self.width)(conv.space_to_depth(x))
    x = nn.leaky_relu(_batch_norm(x, train), 0.2)
    return nn.Dense(1)(x.reshape((x.shape[0], -1)))[:, 0]


class DCGAN(nn.Module):
  """The generator and the discriminator; ``__call__`` (for ``init``) runs D on G's samples."""

  default_dropout: ClassVar[float] = 0.0
  num_classes: int = 10  # unused: the registry builds every model with it
  latent_size: int = 100
  image_shape: tuple[int, int, int] = (28, 28, 1)
  width: int = 64

  def setup(self):
    self.generator = Generator(self.image_shape, self.width)
    self.discriminator = Discriminator(self.width)

  def generate(self, z, train: bool = False):
    return self.generator(z, train)

  def discriminate(self, x, train: bool = False):
    return self.discriminator(x, train)

  def __call__(self, x, train: bool = False, dropout=None):
    """D's logits of the images x (N, H, W, C); G is initialized on noise of x's batch."""
    del dropout
    z = jax.numpy.zeros((x.shape[0], self.latent_size), x.dtype)
    self.generate(z, train)
    return self.discriminate(x, train)
