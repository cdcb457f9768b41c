"""The networks, as Flax Linen modules, and a registry that builds them by name.

A module is pure: ``variables = model.init(rng, x)`` and
``logits = model.apply(variables, x, train=..., rngs=...)``;
``init_variables(model, rng, input_shape)`` wraps the first. ``variables``
holds "params" and, with batch normalization, "batch_stats" (the running
mean and variance, state rather than parameters). Inputs are images
(N, H, W, C); outputs are K logits per example.

Dropout is a training setting, not part of the architecture: the forward
pass takes its rate p, ``model.apply(variables, x, train=True, dropout=p)``
(a float or, for models trained together under ``jax.vmap``, an array; None
or evaluation mode: no dropout). In training each unit is zeroed with
probability p and the rest are scaled by 1/(1-p) (inverted dropout); p = 0
keeps every unit exactly. ``default_dropout`` is each model's usual rate.
The MLP's RReLU activation draws its training slopes from the same "dropout"
PRNG stream. The recurrent networks (rnn, lstm, gru) read the image as a
sequence of rows or pixels (``models/recurrent.py``). The autoencoders (ae,
conv_ae, vae: ``models/autoencoders.py``) and the GAN (dcgan: ``models/gan.py``)
are trained for other objectives than classification (``objective``).

The feed-forward models take ``batch_norm``. Batch normalization
(Ioffe & Szegedy 2015) normalizes each feature over the batch in training,
ŷ = γ (x - μ_B) / sqrt(σ²_B + ε) + β, and keeps running averages
m ← 0.9 m + 0.1 μ_B and v ← 0.9 v + 0.1 σ²_B (biased σ²_B) that replace μ_B,
σ²_B at evaluation, so a prediction never depends on the rest of its batch.
It sits between a layer's linear map and its activation; that layer's bias
is dropped (β takes its place).
"""

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from data import errors
from models import activations
from models import autoencoders
from models import conv
from models import gan
from models import recurrent
from models.dropout import Dropout

BATCH_NORM_MOMENTUM = 0.9


def pool_2x2(x: jax.Array, kind: str) -> jax.Array:
  """2x2 max or average pooling with stride 2 (an odd last row or column is dropped, as 'VALID').

  Written as a reshape and a reduction over the 2x2 windows, so its gradient
  is an elementwise fusion: flax's ``nn.max_pool`` (``lax.reduce_window``)
  differentiates into XLA's ``select_and_scatter``, which XLA:CPU runs as a
  slower loop of its own. Max pooling's gradient goes to the
  window's maximum (split evenly between exact ties, which after a ReLU are
  zeros whose gradient is zero anyway).
  """
  n, h, w, c = x.shape
  windows = x[:, :h - h % 2, :w - w % 2].reshape(n, h // 2, 2, w // 2, 2, c)
  return windows.max(axis=(2, 4)) if kind == "max" else windows.mean(axis=(2, 4))


def _maybe_batch_norm(x, batch_norm: bool, train: bool):
  """Batch normalization (train: batch statistics; eval: running ones), or nothing."""
  if not batch_norm:
    return x
  return nn.BatchNorm(use_running_average=not train, momentum=BATCH_NORM_MOMENTUM)(x)


class MLP(nn.Module):
  """Multilayer perceptron: x -> [Dense(h) -> (BN) -> act -> (dropout)]* -> Dense(K).

  Each hidden layer computes a(W x + b), with ``a`` any name of the activation
  table (models/activations.py); the default is 784-512-512-10 ReLU.
  """

  default_dropout: ClassVar[float] = 0.0
  num_classes: int = 10
  hidden_sizes: Sequence[int] = (512, 512)
  activation: str = "relu"
  activation_params: tuple[tuple[str, float], ...] = ()  # e.g. (("beta", 2.0),); else defaults
  batch_norm: bool = False

  @nn.compact
  def __call__(self, x, train: bool = False, dropout=None):
    entry = activations.ACTIVATIONS.get(self.activation)
    values = entry.values(**dict(self.activation_params))
    x = x.reshape((x.shape[0], -1))
    for i, width in enumerate(self.hidden_sizes):
      x = nn.Dense(width, use_bias=not self.batch_norm)(x)
      x = _maybe_batch_norm(x, self.batch_norm, train)
      if self.activation == "prelu":  # PReLU learns one α per layer, from 0.25
        alpha = self.param(f"prelu_alpha_{i}", nn.initializers.constant(activations.PRELU_ALPHA), ())
        x = activations.prelu(x, alpha)
      elif self.activation == "rrelu" and train:  # slopes drawn from the training PRNG stream
        x = activations.rrelu_train(x, self.make_rng("dropout"), **values)
      else:
        x = entry.fn(x, **values)
      x = Dropout()(x, dropout, train)
    return nn.Dense(self.num_classes)(x)


def _conv(features: int, size: int, custom_vjp: bool, use_bias: bool = True) -> nn.Conv:
  """A 'SAME' convolution; ``custom_vjp`` selects the CPU-fast backward (models/conv.py)."""
  conv_fn = conv.conv_general_dilated if custom_vjp else jax.lax.conv_general_dilated
  return nn.Conv(features, (size, size), padding="SAME", use_bias=use_bias,
                 conv_general_dilated=conv_fn)


class _ConvNet(nn.Module):
  """[conv k x k x f -> (BN) -> ReLU -> pool 2x2]* -> [dense h -> (BN) -> ReLU]* -> dropout -> dense K.

  The convolutions are 'SAME', so each stage halves H and W only by pooling.
  Subclasses fix the layers; all of them share this forward pass.
  """

  default_dropout: ClassVar[float] = 0.0
  num_classes: int = 10
  batch_norm: bool = False
  custom_conv_vjp: bool = True
  kernel_size: int = 3
  conv_features: Sequence[int] = ()
  dense_sizes: Sequence[int] = ()
  pool: str = "max"  # max | avg

  @nn.compact
  def __call__(self, x, train: bool = False, dropout=None):
    for features in self.conv_features:
      x = _conv(features, self.kernel_size, self.custom_conv_vjp, use_bias=not self.batch_norm)(x)
      x = pool_2x2(activations.relu(_maybe_batch_norm(x, self.batch_norm, train)), self.pool)
    x = x.reshape((x.shape[0], -1))
    for width in self.dense_sizes:
      x = nn.Dense(width, use_bias=not self.batch_norm)(x)
      x = activations.relu(_maybe_batch_norm(x, self.batch_norm, train))
    x = Dropout()(x, dropout, train)
    return nn.Dense(self.num_classes)(x)


class CNN(_ConvNet):
  """The classic MNIST ConvNet.

  conv 5x5x32 -> ReLU -> maxpool 2x2 -> conv 5x5x64 -> ReLU -> maxpool 2x2
  -> dense 1024 -> ReLU -> dropout (0.5) -> dense K. A 28x28 input leaves
  7x7x64 = 3136 features for the dense layer.
  """

  default_dropout: ClassVar[float] = 0.5
  kernel_size: int = 5
  conv_features: Sequence[int] = (32, 64)
  dense_sizes: Sequence[int] = (1024,)


class CNNSmall(_ConvNet):
  """The Flax-example MNIST CNN (a fast baseline).

  conv 3x3x32 -> ReLU -> avgpool 2x2 -> conv 3x3x64 -> ReLU -> avgpool 2x2
  -> dense 256 -> ReLU -> dense K.
  """

  conv_features: Sequence[int] = (32, 64)
  dense_sizes: Sequence[int] = (256,)
  pool: str = "avg"


class CifarConvNet(_ConvNet):
  """The course's CIFAR-10 ConvNet: INPUT -> CONV 3x3x12 -> RELU -> POOL 2x2 -> FC K.

  On 32x32x3 CIFAR-10 images: 32x32x3 -> 32x32x12 -> 16x16x12 (3072 features)
  -> 10 class scores. Any H x W x C input works (28x28x1 gives 14x14x12).
  """

  conv_features: Sequence[int] = (12,)


MODELS = errors.Registry("model", {
    "mlp": MLP, "cnn": CNN, "cnn_small": CNNSmall, "cifar_convnet": CifarConvNet,
    "rnn": recurrent.RNN, "lstm": recurrent.LSTM, "gru": recurrent.GRU,
    "ae": autoencoders.DenseAutoencoder, "conv_ae": autoencoders.ConvAutoencoder,
    "vae": autoencoders.VAE, "dcgan": gan.DCGAN})

# The architecture settings a user chooses; each model takes some of them.
ARCHITECTURE_SETTINGS = ("hidden_sizes", "activation", "activation_params", "batch_norm",
                         "bidirectional", "sequence", "code_size", "latent_size")


def takes(name: str, setting: str) -> bool:
  """Whether model ``name`` has the architecture ``setting`` (e.g. the CNN has no hidden_sizes)."""
  return setting in {f.name for f in dataclasses.fields(MODELS.get(name))}


def default(name: str, setting: str):
  """Model ``name``'s own value of an architecture ``setting`` it takes (MLP: 512,512 ReLU)."""
  return next(f.default for f in dataclasses.fields(MODELS.get(name)) if f.name == setting)


def is_recurrent(name: str) -> bool:
  return issubclass(MODELS.get(name), recurrent.Recurrent)


def create_model(name: str, num_classes: int, **kwargs) -> nn.Module:
  """Builds the model ``name`` from ``MODELS`` with its keyword settings."""
  return MODELS.get(name)(num_classes=num_classes, **kwargs)


def init_variables(model: nn.Module, rng: jax.Array, input_shape: Sequence[int]) -> dict:
  """The variables of ``model`` for inputs of shape (H, W, C): {"params"[, "batch_stats"]}.

  ``rng`` draws the parameters; a model that samples as it runs (the VAE) gets
  its "sample" stream from fold_in(rng, 1).
  """
  rngs = {"params": rng, "sample": jax.random.fold_in(rng, 1)}
  return dict(model.init(rngs, jnp.zeros((1, *input_shape), jnp.float32)))
