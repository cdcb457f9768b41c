"""The activation table: each function f with its derivative f' written by hand.

``ACTIVATIONS.get(name)`` is an ``Activation(fn, derivative, formula,
derivative_formula, params, kinks)``: ``fn(x, **p)`` and ``derivative(x, **p)``
take the parameters named in ``params`` (``PARAMETERS`` holds their defaults,
PyTorch's, and valid ranges); ``.bind(**p)`` fixes them (defaults for those
not given), leaving ``fn(x)``. The formulas are LaTeX for
``scripts/activation_table.py``; ``kinks(**p)`` lists the points where f is
not differentiable. There the derivative takes the value of the piece on the
left (the branch for x <= k): f'(0) = 0 for ReLU, α for PReLU and ELU; at a
jump (the binary step at 0, hard shrink at ±λ) the same rule applies. The
tests compare every derivative with ``jax.grad`` away from the kinks and with
the left difference quotient at them.

Both tables of the course are here: identity, binary step, logistic, tanh,
arctan, ReLU, PReLU, ELU, SoftPlus (the first); Leaky ReLU, SoftPlus with β,
Mish, RReLU, HardSwish, SoftSign, Hard tanh, Hard sigmoid, Tanh shrink, Soft
shrink, Hard shrink (the second); plus GELU, SiLU, SELU. Where the course's
text differs from the standard definition, the standard one is used: its ELU
row reads α(x eˣ - 1) for x <= 0, here α(eˣ - 1) (Clevert et al. 2016); its
Hard shrink row gives x in both branches, here x for |x| > λ and 0 otherwise.

RReLU (Xu et al. 2015) draws its negative slope a ~ U(l, u) independently for
every unit of every example in training (``rrelu_train``, keyed by the
training step's PRNG stream) and uses a = (l + u)/2 at evaluation, which is
what ``fn`` computes.
"""

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import special

from data import errors

SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
PRELU_ALPHA = 0.25  # the fixed α of the table's entry; the MLP learns its own
ELU_ALPHA = 1.0
_GELU_C = math.sqrt(2.0 / math.pi)


class Parameter(NamedTuple):
  default: float
  low: float  # the smallest valid value (excluded when low_open)
  low_open: bool
  meaning: str


PARAMETERS = {
    "beta": Parameter(1.0, 0.0, True, "β of softplus and mish: (1/β) ln(1 + exp(βx))"),
    "negative_slope": Parameter(0.01, 0.0, False, "slope of leaky_relu for x < 0"),
    "rrelu_lower": Parameter(1 / 8, 0.0, False, "l of rrelu: negative slope a ~ U(l, u) in training"),
    "rrelu_upper": Parameter(1 / 3, 0.0, False, "u of rrelu (evaluation slope (l + u)/2)"),
    "hardtanh_min": Parameter(-1.0, -math.inf, False, "b of hardtanh: clip(x, b, a)"),
    "hardtanh_max": Parameter(1.0, -math.inf, False, "a of hardtanh: clip(x, b, a)"),
    "shrink_lambda": Parameter(0.5, 0.0, False, "λ of softshrink and hardshrink"),
}


class Activation(NamedTuple):
  fn: Callable[..., jax.Array]
  derivative: Callable[..., jax.Array]
  formula: str
  derivative_formula: str
  params: tuple[str, ...] = ()
  kinks: Callable[..., tuple[float, ...]] = lambda **p: ()

  def values(self, **overrides) -> dict[str, float]:
    """Every parameter this activation takes: ``overrides``, else its default."""
    return {name: overrides.get(name, PARAMETERS[name].default) for name in self.params}

  def bind(self, **overrides) -> "Activation":
    """This activation with its parameters fixed: ``overrides``, else their defaults."""
    p = self.values(**overrides)
    return self._replace(fn=functools.partial(self.fn, **p),
                         derivative=functools.partial(self.derivative, **p), params=(),
                         kinks=lambda: self.kinks(**p))


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


def _at_zero(**_):
  return (0.0,)


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


def softplus(x, beta):
  """SoftPlus with β: f(x) = (1/β) ln(1 + e^{βx}), computed stably as softplus(βx)/β."""
  return jax.nn.softplus(beta * x) / beta


def mish(x, beta):
  """Mish: f(x) = x tanh(softplus_β(x))."""
  return x * jnp.tanh(softplus(x, beta))


def mish_derivative(x, beta):
  """f'(x) = tanh(s) + x (1 - tanh² s) σ(βx), s = softplus_β(x) (ds/dx = σ(βx))."""
  t = jnp.tanh(softplus(x, beta))
  return t + x * (1.0 - t**2) * _sigmoid(beta * x)


def leaky_relu(x, negative_slope):
  """f(x) = x for x >= 0, a x for x < 0 (a fixed; PReLU learns it, RReLU draws it)."""
  return jnp.where(x >= 0, x, negative_slope * x)


def leaky_relu_derivative(x, negative_slope):
  """f'(x) = 1 for x > 0, a for x <= 0 (the left piece at the kink)."""
  return jnp.where(x > 0, 1.0, negative_slope)


def rrelu_train(x, key, rrelu_lower, rrelu_upper):
  """RReLU in training: x for x >= 0, a x for x < 0 with a ~ U(l, u) drawn per element."""
  slope = jax.random.uniform(key, x.shape, x.dtype, rrelu_lower, rrelu_upper)
  return jnp.where(x >= 0, x, slope * x)


def relu(x):
  """max(0, x), written as a select: its autodiff gradient at 0 is 0, the left piece's.

  (``jnp.maximum(x, 0)`` differentiates to 1/2 at 0.) The select form is also
  what XLA:CPU fuses best after a convolution: a ``maximum`` with 0 feeding
  the ConvNets' pooling reduction makes XLA:CPU write out a full-size array
  of zeros every step.
  """
  return jnp.where(x > 0, x, 0.0)


def _relu6(x):
  return jnp.clip(x, 0.0, 6.0)


def _hard_sigmoid_derivative(x):
  """1/6 on (-3, 3], else 0: the constant made in x's own dtype (1/6 rounded once)."""
  return jnp.where((x > -3) & (x <= 3), np.asarray(1 / 6, x.dtype), np.asarray(0, x.dtype))


def _shrink(x, shrink_lambda, soft: bool):
  inside = jnp.abs(x) <= shrink_lambda
  return jnp.where(inside, 0.0, x - jnp.sign(x) * shrink_lambda if soft else x)


def _shrink_derivative(x, shrink_lambda):
  """Soft and hard shrink: f'(x) = 1 for |x| > λ, 0 inside (the left piece at ±λ)."""
  return jnp.where((x > -shrink_lambda) & (x <= shrink_lambda), 0.0, 1.0).astype(x.dtype)


_TABLE = {
    "identity": Activation(
        lambda x: x, jnp.ones_like, r"$x$", r"$1$"),
    "binary_step": Activation(
        lambda x: (x >= 0).astype(x.dtype), jnp.zeros_like,
        r"$1$ if $x \geq 0$ else $0$", r"$0$ ($x \neq 0$)", kinks=_at_zero),
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
        relu, lambda x: (x > 0).astype(x.dtype),
        r"$\max(0, x)$", r"$1$ if $x > 0$ else $0$", kinks=_at_zero),
    "prelu": Activation(
        prelu, prelu_derivative,
        r"$x$ if $x \geq 0$ else $\alpha x$ ($\alpha$=0.25)", r"$1$ if $x > 0$ else $\alpha$",
        kinks=_at_zero),
    "elu": Activation(
        elu, elu_derivative,
        r"$x$ if $x > 0$ else $\alpha(e^x - 1)$", r"$1$ if $x > 0$ else $f(x) + \alpha$",
        kinks=_at_zero),
    "softplus": Activation(
        softplus, lambda x, beta: _sigmoid(beta * x),
        r"$\frac{1}{\beta}\ln(1 + e^{\beta x})$ ($\beta$=1)", r"$\sigma(\beta x)$",
        params=("beta",)),
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
        r"$\lambda$ if $x > 0$ else $\lambda\alpha e^x$", kinks=_at_zero),
    # The course's second table.
    "leaky_relu": Activation(
        leaky_relu, leaky_relu_derivative,
        r"$x$ if $x \geq 0$ else $a x$ ($a$=0.01)", r"$1$ if $x > 0$ else $a$",
        params=("negative_slope",), kinks=_at_zero),
    "mish": Activation(
        mish, mish_derivative,
        r"$x \tanh(\mathrm{softplus}_\beta(x))$",
        r"$\tanh s + x(1 - \tanh^2 s)\,\sigma(\beta x)$, $s$ = the softplus",
        params=("beta",)),
    "rrelu": Activation(
        lambda x, rrelu_lower, rrelu_upper:
            leaky_relu(x, (rrelu_lower + rrelu_upper) / 2),
        lambda x, rrelu_lower, rrelu_upper:
            leaky_relu_derivative(x, (rrelu_lower + rrelu_upper) / 2),
        r"$x$ if $x \geq 0$ else $a x$, $a \sim U(l, u)$ (eval: $\frac{l+u}{2}$)",
        r"$1$ if $x > 0$ else $a$", params=("rrelu_lower", "rrelu_upper"), kinks=_at_zero),
    "hardswish": Activation(
        lambda x: x * _relu6(x + 3.0) / 6.0,
        lambda x: jnp.where(x <= -3, 0.0, jnp.where(x <= 3, (2.0 * x + 3.0) / 6.0, 1.0)),
        r"$x\,\mathrm{ReLU6}(x + 3)/6$", r"$0$; $(2x + 3)/6$; $1$ (cuts at $\mp 3$)",
        kinks=lambda: (-3.0, 3.0)),
    "softsign": Activation(
        lambda x: x / (1.0 + jnp.abs(x)), lambda x: 1.0 / (1.0 + jnp.abs(x)) ** 2,
        r"$x / (1 + |x|)$", r"$1 / (1 + |x|)^2$"),
    "hardtanh": Activation(
        lambda x, hardtanh_min, hardtanh_max: jnp.clip(x, hardtanh_min, hardtanh_max),
        lambda x, hardtanh_min, hardtanh_max:
            ((x > hardtanh_min) & (x <= hardtanh_max)).astype(x.dtype),
        r"$\min(\max(x, b), a)$ ($b$=-1, $a$=1)", r"$1$ if $b < x \leq a$ else $0$",
        params=("hardtanh_min", "hardtanh_max"),
        kinks=lambda hardtanh_min, hardtanh_max: (hardtanh_min, hardtanh_max)),
    "hardsigmoid": Activation(
        lambda x: _relu6(x + 3.0) / 6.0, _hard_sigmoid_derivative,
        r"$\mathrm{ReLU6}(x + 3)/6$", r"$1/6$ if $-3 < x \leq 3$ else $0$",
        kinks=lambda: (-3.0, 3.0)),
    "tanhshrink": Activation(
        lambda x: x - jnp.tanh(x), lambda x: jnp.tanh(x) ** 2,
        r"$x - \tanh x$", r"$\tanh^2 x$"),
    "softshrink": Activation(
        lambda x, shrink_lambda: _shrink(x, shrink_lambda, soft=True), _shrink_derivative,
        r"$x \mp \lambda$ if $\pm x > \lambda$ else $0$ ($\lambda$=0.5)",
        r"$1$ if $|x| > \lambda$ else $0$", params=("shrink_lambda",),
        kinks=lambda shrink_lambda: (-shrink_lambda, shrink_lambda)),
    "hardshrink": Activation(
        lambda x, shrink_lambda: _shrink(x, shrink_lambda, soft=False), _shrink_derivative,
        r"$x$ if $|x| > \lambda$ else $0$ ($\lambda$=0.5)", r"$1$ if $|x| > \lambda$ else $0$",
        params=("shrink_lambda",),
        kinks=lambda shrink_lambda: (-shrink_lambda, shrink_lambda)),
}

_TABLE["swish"] = _TABLE["silu"]
ACTIVATIONS = errors.Registry("activation", _TABLE)
