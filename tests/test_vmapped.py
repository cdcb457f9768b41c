"""K models under jax.vmap against the same K models trained one at a time."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import steps
from experiments import vmapped
from models import networks
from models import optimizers
from models import schedules

MEMBERS = [
    vmapped.Member(seed=0, learning_rate=0.1, hyperparameters={"momentum": 0.9}),
    vmapped.Member(seed=1, learning_rate=0.03, hyperparameters={"momentum": 0.5}),
    vmapped.Member(seed=2, learning_rate=0.3, hyperparameters={"momentum": 0.0}),
]
SCHEDULE = schedules.learning_rate_schedule("cosine", 1.0, 8)
MAKE_TX = vmapped.optimizer_factory("momentum", "textbook", SCHEDULE, clip_norm=None)


def _data(n=96):
  images = jax.random.uniform(jax.random.key(10), (n, 8, 8, 1))
  labels = jax.random.randint(jax.random.key(11), (n,), 0, 10)
  return images, labels


def _solo(model, member, images, labels, batches):
  init_key, dropout_key, _ = steps.seed_keys(member.seed)
  variables = networks.init_variables(model, init_key, (8, 8, 1))
  tx = optimizers.create_optimizer(
      "momentum", "textbook", member.learning_rate, member.hyperparameters, SCHEDULE)
  state = steps.create_train_state(model, variables, tx, dropout_key)
  return jax.jit(steps.train_steps)(state, images, labels, batches)


# cnn: dropout keys per member too; mlp with batch norm: running statistics per member.
@pytest.mark.parametrize("model_name,kwargs", [
    ("mlp", {"hidden_sizes": (32,)}), ("cnn", {"dropout": 0.5}),
    ("mlp", {"hidden_sizes": (32,), "batch_norm": True})])
@pytest.mark.parametrize("shared_batches", [True, False])
def test_vmapped_members_equal_members_trained_alone(model_name, kwargs, shared_batches):
  model = networks.create_model(model_name, 10, **kwargs)
  images, labels = _data()
  keys = jnp.stack([steps.seed_keys(m.seed)[2] for m in MEMBERS])
  own = vmapped.epoch_batches(keys, 1, 96, 12)  # (K, 8, 12)
  batches = own[0] if shared_batches else own
  state = vmapped.init_states(model, (8, 8, 1), MEMBERS, MAKE_TX)
  run = jax.jit(vmapped.train_steps, static_argnums=(4, 5))
  state, counts = run(state, images, labels, batches, None, shared_batches)
  assert counts.loss_sum.shape == (3,)
  for k, member in enumerate(MEMBERS):
    solo, solo_counts = _solo(model, member, images, labels,
                              batches if shared_batches else batches[k])
    # float32; vmapped matmuls and convolutions may sum in another order.
    for a, b in zip(jax.tree.leaves(state.variables), jax.tree.leaves(solo.variables)):
      np.testing.assert_allclose(a[k], b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(counts.loss_sum[k], solo_counts.loss_sum, rtol=1e-5)
  evals = vmapped.evaluate(state.variables, state.apply_fn, images, labels, 40)
  assert evals.count.shape == (3,) and np.all(np.asarray(evals.count) == 96)


def test_members_differ_in_hyperparameters_held_as_state():
  model = networks.create_model("mlp", 10, hidden_sizes=(8,))
  state = vmapped.init_states(model, (8, 8, 1), MEMBERS, MAKE_TX)
  hyperparams = state.opt_state[0].hyperparams
  np.testing.assert_allclose(hyperparams["learning_rate"], [0.1, 0.03, 0.3])
  np.testing.assert_allclose(hyperparams["momentum"], [0.9, 0.5, 0.0])
