"""Model shapes, parameter counts (pinned to the architectures' arithmetic) and the registry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import networks


def _num_params(params):
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


# Each count is Σ (fan_in + 1) x fan_out over the layers:
#   mlp:       785*512 + 513*512 + 513*10
#   cnn:       (25*1+1)*32 + (25*32+1)*64 + (7*7*64+1)*1024 + 1025*10
#   cnn_small: (9*1+1)*32 + (9*32+1)*64 + (7*7*64+1)*256 + 257*10
@pytest.mark.parametrize(
    "name,expected",
    [
        ("mlp", 785 * 512 + 513 * 512 + 513 * 10),
        ("cnn", 26 * 32 + 801 * 64 + 3137 * 1024 + 1025 * 10),
        ("cnn_small", 10 * 32 + 289 * 64 + 3137 * 256 + 257 * 10),
    ],
)
def test_parameter_counts_and_output_shape(name, expected):
  model = networks.create_model(name, num_classes=10)
  params = networks.init_params(model, jax.random.key(0), (28, 28, 1))
  assert _num_params(params) == expected
  logits = model.apply({"params": params}, jnp.zeros((3, 28, 28, 1)))
  assert logits.shape == (3, 10)
  assert logits.dtype == jnp.float32


def test_mlp_hidden_sizes_and_activation_are_configurable():
  model = networks.create_model("mlp", 4, hidden_sizes=(7,), activation="tanh")
  params = networks.init_params(model, jax.random.key(0), (2, 3, 1))
  assert _num_params(params) == 7 * 7 + 8 * 4
  x = jax.random.normal(jax.random.key(1), (5, 2, 3, 1))
  hidden = jnp.tanh(x.reshape(5, 6) @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"][None])
  expected = hidden @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"][None]
  np.testing.assert_allclose(model.apply({"params": params}, x), expected, rtol=1e-5, atol=1e-6)


def test_cnn_dropout_is_active_only_in_training_and_keyed():
  model = networks.create_model("cnn", 10)
  params = networks.init_params(model, jax.random.key(0), (28, 28, 1))
  x = jax.random.uniform(jax.random.key(1), (2, 28, 28, 1))
  evaluate = model.apply({"params": params}, x, train=False)
  np.testing.assert_array_equal(evaluate, model.apply({"params": params}, x, train=False))

  def train(seed):
    return model.apply({"params": params}, x, train=True, rngs={"dropout": jax.random.key(seed)})

  np.testing.assert_array_equal(train(3), train(3))
  assert not np.allclose(train(3), train(4))
  assert not np.allclose(train(3), evaluate)


@pytest.mark.parametrize("name", ["cnn", "cnn_small"])
def test_custom_conv_vjp_gives_autodiff_gradients(name):
  x = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1))
  labels = jnp.arange(4)
  grads = []
  for custom in (True, False):
    model = networks.create_model(name, 10, custom_conv_vjp=custom)
    params = networks.init_params(model, jax.random.key(0), (28, 28, 1))

    def loss(p, model=model):
      logits = model.apply({"params": p}, x, train=False)
      return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(4), labels])

    grads.append(jax.grad(loss)(params))
  for got, want in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * float(jnp.abs(want).max()))


def test_unknown_model_names_the_choices():
  with pytest.raises(ValueError, match="mlp, cnn, cnn_small"):
    networks.create_model("resnet", 10)
