"""The activation table: each function f with its derivative f' written by hand.

``ACTIVATIONS.get(name)`` is an ``Activation(fn, derivative, formula, derivative_formula)``;
the formulas are LaTeX for ``scripts/activation_table.py``. Where f is not
differentiable (x = 0 for the step, ReLU, PReLU, ELU with α ≠ 1, SELU) the
derivative takes its right-hand value for x > 0 and left-hand value for x <= 0.
The tests compare every derivative with ``jax.grad`` away from those points.
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy import special

from models import registry

SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
PRELU_ALPHA = 0.25  # the fixed α of the table's entry; the MLP learns its own
ELU_ALPHA = 1.0
_GELU_C = math.sqrt(2.0 / math.pi)


class Activation(NamedTuple):
  fn: Callable[[jax.Array], jax.Array]
  derivative: Callable[[jax.Array], jax.Array]
  formula: str
  derivative_formula: str


def prelu(x, alpha=PRELU_ALPHA):
  """PReLU: f(x) = x for x >= 0, αx for x < 0."""
  return jnp.where(x >= 0, x, alpha * x)


def prelu_derivative(x, alpha=PRELU_ALPHA):
  """f'(x) = 1 for x > 0, α for x <= 0 (and df/dα = min(x, 0))."""
  return jnp.where(x > 0, 1.0, alpha).astype(x.dtype)


def elu(x, alpha=ELU_ALPHA):
  """ELU: f(x) = x for x > 0, α(eˣ - 1) for x <= 0."""
  return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.minimum(x, 0.0)))


def elu_derivative(x, alpha=ELU_ALPHA):
  """f'(x) = 1 for x > 0, f(x) + α = αeˣ for x <= 0."""
  return jnp.where(x > 0, 1.0, elu(x, alpha) + alpha)


def _sigmoid(x):
  return jax.nn.sigmoid(x)


def _gelu_tanh(x):
  return 0.5 * x * (1.0 + jnp.tanh(_GELU_C * (x + 0.044715 * x**3)))


def _gelu_tanh_derivative(x):
  t = jnp.tanh(_GELU_C * (x + 0.044715 * x**3))
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t**2) * _GELU_C * (1.0 + 3 * 0.044715 * x**2)


def _normal_cdf(x):
  return 0.5 * (1.0 + special.erf(x / math.sqrt(2.0)))


def _normal_pdf(x):
  return jnp.exp(-0.5 * x**2) / math.sqrt(2.0 * math.pi)


_TABLE = {
    "identity": Activation(
        lambda x: x, jnp.ones_like, r"$x$", r"$1$"),
    "binary_step": Activation(
        lambda x: (x >= 0).astype(x.dtype), jnp.zeros_like,
        r"$1$ if $x \geq 0$ else $0$", r"$0$ ($x \neq 0$)"),
    "sigmoid": Activation(
        _sigmoid, lambda x: _sigmoid(x) * (1.0 - _sigmoid(x)),
        r"$\sigma(x) = 1/(1+e^{-x})$", r"$\sigma(x)(1-\sigma(x))$"),
    "tanh": Activation(
        jnp.tanh, lambda x: 1.0 - jnp.tanh(x) ** 2,
        r"$\tanh x$", r"$1 - \tanh^2 x$"),
    "arctan": Activation(
        jnp.arctan, lambda x: 1.0 / (1.0 + x**2),
        r"$\arctan x$", r"$1/(1+x^2)$"),
    "relu": Activation(
        lambda x: jnp.maximum(x, 0.0), lambda x: (x > 0).astype(x.dtype),
        r"$\max(0, x)$", r"$1$ if $x > 0$ else $0$"),
    "prelu": Activation(
        prelu, prelu_derivative,
        r"$x$ if $x \geq 0$ else $\alpha x$ ($\alpha$=0.25)", r"$1$ if $x > 0$ else $\alpha$"),
    "elu": Activation(
        elu, elu_derivative,
        r"$x$ if $x > 0$ else $\alpha(e^x - 1)$", r"$1$ if $x > 0$ else $f(x) + \alpha$"),
    "softplus": Activation(
        jax.nn.softplus, _sigmoid,
        r"$\ln(1 + e^x)$", r"$\sigma(x)$"),
    "gelu": Activation(
        _gelu_tanh, _gelu_tanh_derivative,
        r"$\frac{x}{2}(1 + \tanh(\sqrt{2/\pi}(x + 0.044715x^3)))$",
        r"$\frac{1+t}{2} + \frac{x}{2}(1-t^2)\sqrt{2/\pi}(1 + 0.134145x^2)$, $t$ = the tanh"),
    "gelu_exact": Activation(
        lambda x: x * _normal_cdf(x), lambda x: _normal_cdf(x) + x * _normal_pdf(x),
        r"$x\,\Phi(x)$", r"$\Phi(x) + x\,\varphi(x)$"),
    "silu": Activation(
        lambda x: x * _sigmoid(x), lambda x: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x))),
        r"$x\,\sigma(x)$ (swish)", r"$\sigma(x)(1 + x(1 - \sigma(x)))$"),
    "selu": Activation(
        lambda x: SELU_LAMBDA * elu(x, SELU_ALPHA),
        lambda x: SELU_LAMBDA * jnp.where(x > 0, 1.0, SELU_ALPHA * jnp.exp(jnp.minimum(x, 0.0))),
        r"$\lambda x$ if $x > 0$ else $\lambda\alpha(e^x - 1)$",
        r"$\lambda$ if $x > 0$ else $\lambda\alpha e^x$"),
}
_TABLE["swish"] = _TABLE["silu"]
ACTIVATIONS = registry.Registry("activation", _TABLE)
