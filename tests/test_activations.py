"""The activation table: hand derivatives against jax.grad, values against jax.nn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import stats

from models import activations
from models import registry

# Points away from x = 0, where several functions are not differentiable.
X = jnp.concatenate([jnp.linspace(-6.0, -0.05, 60), jnp.linspace(0.05, 6.0, 60)])
RTOL, ATOL = 1e-5, 1e-6  # float32: closed forms vs autodiff of the same f, a few ulps


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_hand_derivative_equals_autodiff(name):
  act = activations.ACTIVATIONS.get(name)
  autodiff = jax.vmap(jax.grad(act.fn))(X)
  np.testing.assert_allclose(act.derivative(X), autodiff, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "name,reference",
    [
        ("sigmoid", jax.nn.sigmoid),
        ("tanh", jnp.tanh),
        ("relu", jax.nn.relu),
        ("elu", jax.nn.elu),
        ("softplus", jax.nn.softplus),
        ("gelu", lambda x: jax.nn.gelu(x, approximate=True)),
        ("gelu_exact", lambda x: jax.nn.gelu(x, approximate=False)),
        ("silu", jax.nn.silu),
        ("swish", jax.nn.swish),
        ("selu", jax.nn.selu),
        ("prelu", lambda x: jnp.where(x >= 0, x, 0.25 * x)),
        ("gelu_exact", lambda x: x * stats.norm.cdf(x)),
    ],
)
def test_values_match_references(name, reference):
  np.testing.assert_allclose(activations.ACTIVATIONS.get(name).fn(X), reference(X), rtol=RTOL, atol=ATOL)


def test_definitions_on_the_negative_side():
  x = jnp.array([-2.0])
  assert float(activations.prelu(x, 0.1)[0]) == pytest.approx(-0.2)  # αx, not x/α
  elu_x = float(activations.elu(x)[0])
  assert float(activations.elu_derivative(x)[0]) == pytest.approx(elu_x + 1.0, rel=1e-6)
  assert float(activations.ACTIVATIONS.get("binary_step").fn(jnp.array([0.0]))[0]) == 1.0


def test_prelu_alpha_gradient_is_min_x_0():
  alpha_grad = jax.vmap(jax.grad(activations.prelu, argnums=1), in_axes=(0, None))(X, 0.3)
  np.testing.assert_allclose(alpha_grad, jnp.minimum(X, 0.0), rtol=RTOL)


def test_unknown_activation_names_the_choices():
  with pytest.raises(registry.UserError, match="unknown activation 'mish'; choose one of identity, "):
    activations.ACTIVATIONS.get("mish")
