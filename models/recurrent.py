"""Recurrent networks reading an image as a sequence: rnn (Elman), lstm and gru.

An image (H, W, C) becomes a sequence x_1..x_T (``SEQUENCES``):

  rows             T = H steps of W C values (MNIST: 28 steps of 28 pixels,
                   "row-sequential MNIST");
  pixels           T = H W steps of C values (784 steps of one pixel: the
                   long-memory benchmark, 28 times more steps, slow);
  permuted_pixels  the same steps in one fixed permutation of the pixels
                   (``PERMUTATION_SEED``), so neighbours in time are not
                   neighbours in the image.

The layers of ``hidden_sizes`` are stacked, each reading the hidden states
of the one below (``models/cells.py`` has each cell's equations and its
backpropagation through time). With ``bidirectional``, each layer is a
forward and a backward layer (the sequence read from x_T to x_1) whose
states are concatenated. The last state (h_T forward; the backward layer's
state after reading x_1) goes through dropout and a dense layer to the K
logits.

Initialization, as Flax's LSTM cell: W LeCun normal, each gate's block of U
orthogonal, biases 0, except the LSTM's forget-gate bias, 1 (Gers et al.
2000; Jozefowicz et al. 2015): the cell keeps its memory, f = σ(1) ≈ 0.73,
until training teaches it to forget.
"""

from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from data import errors
from models import activations
from models import cells
from models.dropout import Dropout

PERMUTATION_SEED = 0
SEQUENCES = errors.Registry("sequence", {
    "rows": "H steps of W C values (28 steps of 28 pixels)",
    "pixels": "H W steps of C values (784 steps of one pixel; slow)",
    "permuted_pixels": "the pixels in one fixed random order (784 steps; slow)",
})


def as_sequence(images: jax.Array, sequence: str) -> jax.Array:
  """Images (N, H, W, C) as a time-major sequence (T, N, D) read as ``sequence`` says."""
  SEQUENCES.get(sequence)
  n, height, width, channels = images.shape
  if sequence == "rows":
    steps = images.reshape(n, height, width * channels)
  else:
    steps = images.reshape(n, height * width, channels)
    if sequence == "permuted_pixels":
      steps = steps[:, np.random.default_rng(PERMUTATION_SEED).permutation(height * width)]
  return jnp.swapaxes(steps, 0, 1)


def _orthogonal_blocks(gates: int):
  """U (H, G H) as G orthogonal (H, H) blocks, one per gate."""
  def init(key, shape, dtype=jnp.float32):
    blocks = [nn.initializers.orthogonal()(k, (shape[0], shape[0]), dtype)
              for k in jax.random.split(key, gates)]
    return jnp.concatenate(blocks, axis=1)
  return init


def _input_bias(cell: cells.Cell):
  """Zeros, but 1 on the LSTM's forget-gate block."""
  def init(key, shape, dtype=jnp.float32):
    del key
    bias = jnp.zeros(shape, dtype)
    if cell.name == "lstm":
      width = shape[0] // 4
      bias = bias.at[width:2 * width].set(1.0)
    return bias
  return init


class Layer(nn.Module):
  """One recurrent layer: xs (T, B, D) -> hidden states (T, B, H) (``cells.scan_layer``)."""

  cell: cells.Cell
  width: int

  @nn.compact
  def __call__(self, xs: jax.Array, probes: jax.Array | None = None) -> jax.Array:
    columns = self.cell.gates * self.width
    f32 = jnp.float32  # as flax's Dense: float32 parameters
    params = {"W": self.param("W", nn.initializers.lecun_normal(), (xs.shape[-1], columns), f32),
              "U": self.param("U", _orthogonal_blocks(self.cell.gates), (self.width, columns),
                              f32),
              "b": self.param("b", _input_bias(self.cell), (columns,), f32)}
    if self.cell.recurrent_bias:
      params["b_h"] = self.param("b_h", nn.initializers.zeros, (columns,), f32)
    if probes is not None:
      return cells.reference_layer(self.cell, params, xs, probes)
    return cells.scan_layer(self.cell, params, xs)


class Recurrent(nn.Module):
  """[recurrent layer (forward, and backward when bidirectional)]* -> last state -> dropout -> dense K."""

  default_dropout: ClassVar[float] = 0.0
  num_classes: int = 10
  hidden_sizes: Sequence[int] = (128,)
  bidirectional: bool = False
  sequence: str = "rows"

  def make_cell(self) -> cells.Cell:
    raise NotImplementedError

  @nn.compact
  def __call__(self, x, train: bool = False, dropout=None, probes=None):
    """Logits (N, K); ``probes`` (T, N, H): zeros added to the top forward layer's h_t
    (``hidden_state_gradients``)."""
    cell, xs = self.make_cell(), as_sequence(x, self.sequence)
    for i, width in enumerate(self.hidden_sizes):
      top = i == len(self.hidden_sizes) - 1
      forward = Layer(cell, width, name=f"layer_{i}")(xs, probes if top else None)
      last = [forward[-1]]
      if self.bidirectional:
        backward = Layer(cell, width, name=f"layer_{i}_backward")(xs[::-1])[::-1]
        forward = jnp.concatenate([forward, backward], axis=-1)
        last.append(backward[0])
      xs = forward
    last = jnp.concatenate(last, axis=-1)
    return nn.Dense(self.num_classes)(Dropout()(last, dropout, train))


class RNN(Recurrent):
  """The Elman network: h_t = f(W x_t + U h_{t-1} + b), f any activation of the table (tanh)."""

  activation: str = "tanh"
  activation_params: tuple[tuple[str, float], ...] = ()

  def make_cell(self) -> cells.Cell:
    if self.activation == "tanh":
      return cells.elman()
    entry = activations.ACTIVATIONS.get(self.activation).bind(**dict(self.activation_params))
    return cells.elman(entry.fn, entry.derivative)


class LSTM(Recurrent):
  """Long short-term memory: input, forget and output gates and a cell (``models/cells.py``)."""

  def make_cell(self) -> cells.Cell:
    return cells.LSTM


class GRU(Recurrent):
  """Gated recurrent unit: reset and update gates (``models/cells.py``, PyTorch's form)."""

  def make_cell(self) -> cells.Cell:
    return cells.GRU


# Activations a recurrent layer cannot take: a learned slope, a random one.
NOT_RECURRENT = ("prelu", "rrelu")


def hidden_state_gradients(model: Recurrent, variables: dict, images: jax.Array,
                           labels: jax.Array) -> jax.Array:
  """(T,): the mean over examples of ‖∂L/∂h_t‖ for the top forward layer's states.

  L is the mean softmax cross-entropy of the batch; ∂L/∂h_t is the total
  derivative, through every later step (``cells.reference_layer``'s probes).
  Where it fades as t moves away from T, early inputs barely move the loss:
  the vanishing gradient of the Elman network, which the LSTM's cell avoids.
  """
  steps = as_sequence(images[:1], model.sequence).shape[0]
  probes = jnp.zeros((steps, images.shape[0], model.hidden_sizes[-1]), images.dtype)

  def loss(probes):
    logits = model.apply(variables, images, probes=probes)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).sum()

  per_example = jax.grad(loss)(probes)  # the sum: each example's own ∂L_n/∂h_t
  return jnp.linalg.norm(per_example, axis=-1).mean(axis=-1)
