"""Weight penalties and decoupled weight decay against their formulas and Optax's AdamW."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from data import errors
from models import networks
from models import optimizers
from models import regularizers
from tests import helpers


def _variables(model):
  return networks.init_variables(model, jax.random.key(0), (6, 6, 1))


def test_penalty_value_and_gradient_touch_only_the_weights():
  model = networks.create_model("mlp", 3, hidden_sizes=(5,), batch_norm=True)
  params = _variables(model)["params"]
  penalty = regularizers.Penalty(l1=0.01, l2=0.1)
  kernels = [params["Dense_0"]["kernel"], params["Dense_1"]["kernel"]]
  expected = sum(0.01 * np.abs(w).sum() + 0.05 * np.square(w).sum() for w in kernels)
  np.testing.assert_allclose(penalty(params), expected, rtol=1e-6)
  grads = jax.grad(penalty)(params)
  for name in ("Dense_0", "Dense_1"):
    w = params[name]["kernel"]
    np.testing.assert_allclose(grads[name]["kernel"], 0.01 * np.sign(w) + 0.1 * w, rtol=1e-6)
  np.testing.assert_array_equal(grads["Dense_1"]["bias"], 0.0)
  np.testing.assert_array_equal(grads["BatchNorm_0"]["scale"], 0.0)
  assert float(regularizers.Penalty()(params)) == 0.0 and not regularizers.Penalty().active
  # A term present with λ = 0 (a model trained beside others that use it) adds exactly 0.
  zero = regularizers.Penalty(l1=jnp.float32(0.0), l2=jnp.float32(0.0))
  assert zero.active and float(zero(params)) == 0.0
  for g in jax.tree.leaves(jax.grad(zero)(params)):
    np.testing.assert_array_equal(g, 0.0)


def _train(tx, penalty, num_steps=10):
  model = networks.create_model("mlp", 10, hidden_sizes=(16,))
  state = helpers.one_state(model, tx, input_shape=(6, 6, 1), penalty=penalty)
  inputs = helpers.uint8_inputs(32, (6, 6, 1), seed=2)
  batches = jnp.tile(jnp.arange(32).reshape(2, 16), (num_steps // 2, 1))
  return helpers.train(state, inputs, batches)[0].params


def _assert_trees_close(a, b, rtol):
  """rtol of each array's largest value: float32 rounding in another order of operations."""
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, rtol=0, atol=rtol * float(np.abs(y).max()))


def test_with_sgd_an_l2_penalty_is_weight_decay():
  """∇(λ/2 Σ w²) = λ w, so SGD's step -α(g + λw) is decay by α λ w: equal to float32 rounding."""
  with_l2 = _train(optimizers.create_optimizer("sgd", learning_rate=0.1),
                   regularizers.Penalty(l2=0.05))
  with_decay = _train(optimizers.create_optimizer("sgd", learning_rate=0.1, weight_decay=0.05),
                      regularizers.Penalty())
  _assert_trees_close(with_l2, with_decay, rtol=1e-5)


def test_adam_with_weight_decay_is_optax_adamw():
  """Our decoupled decay on Adam equals optax.adamw masked to the weights.

  Measured max gap 1.7e-7 on values ~1e-2: α(u + λθ)s(t) there vs α u s(t) + αλθ s(t) here
  round differently. Compared at 1e-5 of each array's largest value.
  """
  schedule = optax.cosine_decay_schedule(1.0, 10)
  ours = optimizers.create_optimizer("adam", learning_rate=1e-2, schedule=schedule,
                                     weight_decay=0.1)
  reference = optax.adamw(lambda t: 1e-2 * schedule(t), weight_decay=0.1,
                          mask=regularizers.weight_mask)
  _assert_trees_close(_train(ours, regularizers.Penalty()),
                      _train(reference, regularizers.Penalty()), rtol=1e-5)
  # An L2 penalty is not the same thing under Adam: the decay goes through 1/sqrt(v).
  with_l2 = _train(optimizers.create_optimizer("adam", learning_rate=1e-2, schedule=schedule),
                   regularizers.Penalty(l2=0.1))
  gaps = [np.abs(a - b).max() for a, b in zip(jax.tree.leaves(with_l2),
                                               jax.tree.leaves(_train(ours, regularizers.Penalty())))]
  assert max(gaps) > 1e-3


def test_weight_decay_is_an_injected_hyperparameter():
  tx = optimizers.create_optimizer("momentum", "textbook", 0.1, weight_decay=0.01)
  state = tx.init({"w": jnp.ones((2, 2))})
  np.testing.assert_allclose(state.hyperparams["weight_decay"], 0.01)
  with pytest.raises(errors.UserError, match="weight_decay must be >= 0"):
    optimizers.create_optimizer("sgd", weight_decay=-1.0)
