"""The activation table: hand derivatives against jax.grad, values against jax.nn and NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import stats

from data import errors
from models import activations
from models import networks

X = jnp.linspace(-6.0, 6.0, 241)  # a step of 0.05: it lands on every kink of the defaults
RTOL, ATOL = 1e-5, 1e-6  # float32: closed forms vs autodiff of the same f, a few ulps
# Parameters away from the defaults, so that a derivative ignoring them would fail.
OTHER_PARAMS = {"beta": 2.5, "negative_slope": 0.2, "rrelu_lower": 0.05, "rrelu_upper": 0.6,
                "hardtanh_min": -2.0, "hardtanh_max": 0.5, "shrink_lambda": 1.3}


def _bound(name, others: bool):
  act = activations.ACTIVATIONS.get(name)
  return act.bind(**{p: OTHER_PARAMS[p] for p in act.params}) if others else act.bind()


@pytest.mark.parametrize("others", [False, True], ids=["defaults", "other_params"])
@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_hand_derivative_equals_autodiff_away_from_kinks(name, others):
  act = _bound(name, others)
  away = np.all([np.abs(np.asarray(X) - k) > 1e-3 for k in (*act.kinks(), np.inf)], axis=0)
  autodiff = jax.vmap(jax.grad(act.fn))(X)
  np.testing.assert_allclose(act.derivative(X)[away], autodiff[away], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_hand_derivative_in_float64_equals_autodiff_in_float64(name):
  """No float32 constant inside a float64 derivative: float64 autodiff to 1e-12 relative, or
  1e-14 absolute where the formulas' O(1) terms cancel (gelu's tails: a few float64 ulps of
  1); float32 rounding would show at ~1e-8, as the hard sigmoid's 1/6 did."""
  act = _bound(name, others=False)
  with jax.enable_x64(True):
    x = np.asarray(X, np.float64)
    away = np.all([np.abs(x - k) > 1e-3 for k in (*act.kinks(), np.inf)], axis=0)
    derivative = act.derivative(jnp.asarray(x))
    assert derivative.dtype == jnp.float64
    np.testing.assert_allclose(derivative[away], jax.vmap(jax.grad(act.fn))(x)[away],
                               rtol=1e-12, atol=1e-14)
  if name == "hardsigmoid":
    assert float(derivative[np.abs(x) < 3][0]) == 1 / 6


@pytest.mark.parametrize("others", [False, True], ids=["defaults", "other_params"])
@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_derivative_at_a_kink_is_the_left_piece(name, others):
  """At a kink k, f'(k) is the slope of the branch on the left: (f(k) - f(k - h)) / h.

  At a jump (binary step, hard shrink) the left branch's slope is measured
  just left of the jump instead, (f(k - h) - f(k - 2h)) / h.
  """
  act = _bound(name, others)
  h = 1e-3  # a smooth piece's slope over h is within h |f''| / 2 (<= 6e-4 here) + float32 rounding
  for k in act.kinks():
    k = jnp.float32(k)
    jump = name in ("binary_step", "hardshrink")
    slope = ((act.fn(k - h) - act.fn(k - 2 * h)) if jump else (act.fn(k) - act.fn(k - h))) / h
    assert float(act.derivative(k)) == pytest.approx(float(slope), abs=2e-3), k


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
        ("leaky_relu", jax.nn.leaky_relu),
        ("mish", jax.nn.mish),
        ("hardswish", jax.nn.hard_swish),
        ("softsign", jax.nn.soft_sign),
        ("hardtanh", jax.nn.hard_tanh),
        ("hardsigmoid", jax.nn.hard_sigmoid),
        ("rrelu", lambda x: jax.nn.leaky_relu(x, (1 / 8 + 1 / 3) / 2)),  # evaluation: a = (l+u)/2
    ],
)
def test_values_match_references(name, reference):
  np.testing.assert_allclose(activations.ACTIVATIONS.get(name).bind().fn(X), reference(X),
                             rtol=RTOL, atol=ATOL)


def test_parameterized_values_match_numpy_float64():
  """Each parameter changes f as its formula says (PyTorch's definitions, NumPy float64)."""
  x = np.asarray(X, np.float64)
  p = OTHER_PARAMS
  lam, beta = p["shrink_lambda"], p["beta"]
  expected = {
      "softplus": np.log1p(np.exp(beta * x)) / beta,
      "mish": x * np.tanh(np.log1p(np.exp(beta * x)) / beta),
      "leaky_relu": np.where(x >= 0, x, p["negative_slope"] * x),
      "hardtanh": np.clip(x, p["hardtanh_min"], p["hardtanh_max"]),
      "softshrink": np.where(x > lam, x - lam, np.where(x < -lam, x + lam, 0.0)),
      "hardshrink": np.where(np.abs(x) > lam, x, 0.0),
      "tanhshrink": x - np.tanh(x),
  }
  for name, want in expected.items():
    np.testing.assert_allclose(_bound(name, True).fn(X), want, rtol=RTOL, atol=ATOL, err_msg=name)


def test_rrelu_training_slopes_are_uniform_per_unit_and_keyed():
  x = -jnp.ones((200, 50))
  key = jax.random.key(0)
  slopes = -activations.rrelu_train(x, key, 0.1, 0.3)
  assert 0.1 <= float(slopes.min()) and float(slopes.max()) <= 0.3
  assert abs(float(slopes.mean()) - 0.2) < 0.002  # U(0.1, 0.3): std 0.058 / sqrt(10000)
  assert len(np.unique(np.asarray(slopes))) > 9000  # drawn per element
  np.testing.assert_array_equal(activations.rrelu_train(x, key, 0.1, 0.3), -slopes)
  assert not np.array_equal(activations.rrelu_train(x, jax.random.key(1), 0.1, 0.3), -slopes)
  np.testing.assert_array_equal(activations.rrelu_train(-x, key, 0.1, 0.3), -x)  # x >= 0 kept


def test_mlp_rrelu_random_in_training_mean_slope_at_evaluation():
  model = networks.create_model("mlp", 3, hidden_sizes=(64,), activation="rrelu",
                                activation_params=(("rrelu_lower", 0.1), ("rrelu_upper", 0.3)))
  x = jax.random.normal(jax.random.key(0), (4, 8, 8, 1))
  variables = networks.init_variables(model, jax.random.key(1), (8, 8, 1))
  train = lambda k: model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(k)})  # noqa: E731
  np.testing.assert_array_equal(train(2), train(2))
  assert not np.allclose(train(2), train(3))
  leaky = networks.create_model("mlp", 3, hidden_sizes=(64,), activation="leaky_relu",
                                activation_params=(("negative_slope", 0.2),))
  np.testing.assert_allclose(model.apply(variables, x), leaky.apply(variables, x), rtol=1e-6)


def test_definitions_on_the_negative_side():
  x = jnp.array([-2.0])
  assert float(activations.prelu(x, 0.1)[0]) == pytest.approx(-0.2)  # αx, not x/α
  elu_x = float(activations.elu(x)[0])
  assert float(activations.elu_derivative(x)[0]) == pytest.approx(elu_x + 1.0, rel=1e-6)
  assert float(activations.ACTIVATIONS.get("binary_step").fn(jnp.array([0.0]))[0]) == 1.0
  # ELU is α(eˣ - 1) (the course's row reads α(x eˣ - 1)); hard shrink zeroes |x| <= λ.
  assert elu_x == pytest.approx(np.expm1(-2.0), rel=1e-6)
  hardshrink = activations.ACTIVATIONS.get("hardshrink").bind()
  x = jnp.array([-0.6, -0.5, 0.3, 0.5, 0.6])
  np.testing.assert_array_equal(hardshrink.fn(x), jnp.array([-0.6, 0.0, 0.0, 0.0, 0.6]))


def test_relu_autodiff_at_zero_is_the_hand_derivative():
  """ReLU's autodiff (training's gradient) takes the left piece's slope at 0, as f' does."""
  relu = activations.ACTIVATIONS.get("relu").bind()
  assert float(jax.grad(relu.fn)(0.0)) == float(relu.derivative(jnp.float32(0.0))) == 0.0
  assert float(jax.grad(relu.fn)(1e-30)) == 1.0


def test_prelu_alpha_gradient_is_min_x_0():
  alpha_grad = jax.vmap(jax.grad(activations.prelu, argnums=1), in_axes=(0, None))(X, 0.3)
  np.testing.assert_allclose(alpha_grad, jnp.minimum(X, 0.0), rtol=RTOL)


def test_unknown_activation_names_the_choices():
  with pytest.raises(errors.UserError, match="unknown activation 'swishy'; choose one of identity, "):
    activations.ACTIVATIONS.get("swishy")
