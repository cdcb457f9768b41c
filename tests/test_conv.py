"""models/conv.py: the hand-written convolution VJP equals autodiff of lax's convolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import conv

# float32 gradients summed over up to N*H*W = 2*9*9 = 162 products per entry
# by two different algorithms: agreement to ~1e-5 relative (of the largest entry).
RTOL = 2e-5


def _reference(x, w, padding):
  return jax.lax.conv_general_dilated(
      x, w, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


@pytest.mark.parametrize("channels", [1, 3], ids=["one_channel_shifted_sums", "library_conv"])
@pytest.mark.parametrize(
    "kernel,padding",
    [(3, "SAME"), (5, "SAME"), (3, "VALID"), (2, "SAME"), (3, ((2, 0), (1, 1)))],
)
def test_custom_vjp_matches_autodiff(kernel, padding, channels):
  kx, kw, kg = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (2, 9, 8, channels))
  w = jax.random.normal(kw, (kernel, kernel, channels, 4))
  y_ref, vjp_ref = jax.vjp(lambda x, w: _reference(x, w, padding), x, w)
  y, vjp = jax.vjp(
      lambda x, w: conv.conv_general_dilated(x, w, (1, 1), padding), x, w
  )
  np.testing.assert_allclose(y, y_ref, rtol=RTOL, atol=RTOL * float(jnp.abs(y_ref).max()))
  g = jax.random.normal(kg, y.shape)
  for got, want in zip(vjp(g), vjp_ref(g)):
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * float(jnp.abs(want).max()))


def test_unsupported_convolutions_are_refused():
  x, w = jnp.zeros((1, 8, 8, 2)), jnp.zeros((3, 3, 2, 2))
  with pytest.raises(NotImplementedError):
    conv.conv_general_dilated(x, w, (2, 2), "SAME")
