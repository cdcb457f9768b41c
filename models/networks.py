"""The networks, as Flax Linen modules, and a registry that builds them by name.

A module is pure: ``params = model.init(rng, x)["params"]`` and
``logits = model.apply({"params": params}, x, train=..., rngs=...)``;
``init_params(model, rng, input_shape)`` wraps the first. Inputs are images
(N, H, W, C); outputs are K logits per example.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from models import activations
from models import conv


class MLP(nn.Module):
  """Multilayer perceptron: x -> [Dense(h) -> act]* -> Dense(K).

  Each hidden layer computes a(W x + b), with ``a`` any name of the activation
  table (models/activations.py); the default is 784-512-512-10 ReLU.
  """

  num_classes: int = 10
  hidden_sizes: Sequence[int] = (512, 512)
  activation: str = "relu"

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    x = x.reshape((x.shape[0], -1))
    for i, width in enumerate(self.hidden_sizes):
      x = nn.Dense(width)(x)
      if self.activation == "prelu":  # PReLU learns one α per layer, from 0.25
        alpha = self.param(f"prelu_alpha_{i}", nn.initializers.constant(activations.PRELU_ALPHA), ())
        x = activations.prelu(x, alpha)
      else:
        x = activations.get_activation(self.activation).fn(x)
    return nn.Dense(self.num_classes)(x)


def _conv(features: int, size: int, custom_vjp: bool) -> nn.Conv:
  """A 'SAME' convolution; ``custom_vjp`` selects the CPU-fast backward (models/conv.py)."""
  conv_fn = conv.conv_general_dilated if custom_vjp else jax.lax.conv_general_dilated
  return nn.Conv(features, (size, size), padding="SAME", conv_general_dilated=conv_fn)


class CNN(nn.Module):
  """The classic MNIST ConvNet.

  conv 5x5x32 -> ReLU -> maxpool 2x2 -> conv 5x5x64 -> ReLU -> maxpool 2x2
  -> dense 1024 -> ReLU -> dropout -> dense K. 'SAME' padding, so a 28x28
  input leaves 7x7x64 = 3136 features for the dense layer.
  """

  num_classes: int = 10
  dropout_rate: float = 0.5
  custom_conv_vjp: bool = True

  @nn.compact
  def __call__(self, x, train: bool = False):
    for features in (32, 64):
      x = nn.relu(_conv(features, 5, self.custom_conv_vjp)(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(1024)(x))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes)(x)


class CNNSmall(nn.Module):
  """The Flax-example MNIST CNN (a fast baseline).

  conv 3x3x32 -> ReLU -> avgpool 2x2 -> conv 3x3x64 -> ReLU -> avgpool 2x2
  -> dense 256 -> ReLU -> dense K.
  """

  num_classes: int = 10
  custom_conv_vjp: bool = True

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    for features in (32, 64):
      x = nn.relu(_conv(features, 3, self.custom_conv_vjp)(x))
      x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(256)(x))
    return nn.Dense(self.num_classes)(x)


MODELS = {"mlp": MLP, "cnn": CNN, "cnn_small": CNNSmall}


def create_model(name: str, num_classes: int, **kwargs) -> nn.Module:
  """Builds the model ``name`` from ``MODELS`` with its keyword settings."""
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
  return MODELS[name](num_classes=num_classes, **kwargs)


def init_params(model: nn.Module, rng: jax.Array, input_shape: Sequence[int]):
  """Returns the parameters of ``model`` for inputs of shape (H, W, C)."""
  return model.init(rng, jnp.zeros((1, *input_shape), jnp.float32))["params"]
