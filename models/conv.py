"""2-D convolution whose backward pass is written as two forward convolutions.

Forward, with input x (N, H, W, C), kernel w (kh, kw, C, F) and zero padding
(p_lo, p_hi) per spatial axis, stride 1:

    y[n, i, j, f] = Σ_{a, b, c} x_pad[n, i + a, j + b, c] w[a, b, c, f]

Backward, for the output gradient g = dL/dy:

    dL/dx = conv(g, rot180(w) with C and F swapped), padding (k - 1 - p_lo, k - 1 - p_hi)
    dL/dw[a, b, c, f] = Σ_{n, i, j} x_pad[n, i + a, j + b, c] g[n, i, j, f]
          = a convolution of x (batch axis read as features) with g as kernel.

Why not let autodiff emit these: inside ``lax.scan`` (the epoch loop), XLA:CPU
does not rewrite the transposed convolutions that JAX's autodiff produces into
its fast library kernels and runs them as naive loops, more than an order of
magnitude slower (the ConvNets' ``custom_conv_vjp=False`` keeps autodiff's, for
comparison). The kernel gradient must be a plain NHWC convolution of
explicitly transposed arrays: with "CHWN" dimension numbers XLA takes the slow
path again. Gradients are identical up to float rounding (tested against
``jax.grad`` of ``lax.conv_general_dilated``).

With one input channel (the first layer on grayscale images) the forward
pass is the definition itself, kh kw shifted multiply-adds,

    y[n, i, j, :] = Σ_{a, b} x_pad[n, i + a, j + b, 0] w[a, b, 0, :],

which XLA fuses into one elementwise loop: XLA:CPU's library convolution
would be an im2col GEMM whose inner dimension is only kh kw, which no GEMM
kernel runs efficiently.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax

_NHWC = ("NHWC", "HWIO", "NHWC")


def _conv(x, w, padding):
  return lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=_NHWC)


def _forward(x, w, padding):
  """The convolution; with one input channel, as kh kw shifted multiply-adds."""
  if x.shape[-1] != 1:
    return _conv(x, w, padding)
  kh, kw = w.shape[:2]
  x_pad = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), *((lo, hi, 0) for lo, hi in padding),
                                              (0, 0, 0)))
  height, width = x_pad.shape[1] - kh + 1, x_pad.shape[2] - kw + 1
  return sum(x_pad[:, a:a + height, b:b + width] * w[a, b, 0][None, None, None]
             for a in range(kh) for b in range(kw))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv2d(x: jax.Array, w: jax.Array, padding: tuple) -> jax.Array:
  """Stride-1 NHWC convolution with explicit ``padding`` ((lo, hi), (lo, hi))."""
  return _forward(x, w, padding)


def _conv2d_fwd(x, w, padding):
  return _forward(x, w, padding), (x, w)


def _conv2d_bwd(padding, residuals, g):
  x, w = residuals
  kh, kw = w.shape[:2]
  flipped = w[::-1, ::-1].transpose(0, 1, 3, 2)  # (kh, kw, F, C)
  dx_padding = tuple(
      (k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip((kh, kw), padding)
  )
  dx = _conv(g, flipped, dx_padding)
  # Transpose x to (C, H, W, N) "images" and g to an (H', W', N, F) kernel:
  # a plain NHWC convolution then sums over n and the output positions,
  # leaving (C, kh, kw, F).
  dw = _conv(x.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3), padding).transpose(1, 2, 0, 3)
  return dx, dw


conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)


def conv_general_dilated(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count=1,
    precision=None,
    **unused_kwargs,
):
  """Drop-in for ``lax.conv_general_dilated`` as called by ``flax.linen.Conv``.

  Supports what the models here use (2-D, stride 1, no dilation or feature
  groups, NHWC / HWIO) and routes it to ``conv2d``; anything else is refused.
  """
  del precision
  if (
      tuple(window_strides) != (1, 1)
      or any(d not in (None, 1) for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
      or feature_group_count != 1
      or lhs.ndim != 4
  ):
    raise NotImplementedError("conv2d supports 2-D stride-1 undilated convolutions only")
  del dimension_numbers  # flax passes NHWC / HWIO for 4-D inputs.
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], (1, 1), padding)
  return conv2d(lhs, rhs, tuple(tuple(p) for p in padding))


def space_to_depth(x: jax.Array, block: int = 2) -> jax.Array:
  """(N, bH, bW, C) -> (N, H, W, b² C): each b x b block of pixels as one pixel's channels.

  A stride-b convolution is a stride-1 convolution of this (its kernel
  rearranged the same way), so a strided layer runs on ``conv2d``.
  """
  n, h, w, c = x.shape
  x = x.reshape(n, h // block, block, w // block, block, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h // block, w // block, block * block * c)


def depth_to_space(x: jax.Array, block: int = 2) -> jax.Array:
  """(N, H, W, b² C) -> (N, bH, bW, C), the inverse of ``space_to_depth``.

  A stride-b transposed convolution is a stride-1 convolution to b² C channels
  followed by this (the sub-pixel convolution, Shi et al. 2016).
  """
  n, h, w, c = x.shape
  x = x.reshape(n, h, w, block, block, c // (block * block)).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h * block, w * block, c // (block * block))
