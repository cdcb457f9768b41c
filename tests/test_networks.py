"""Model shapes, parameter counts (pinned to the architectures' arithmetic) and the registry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data import errors
from experiments.training.settings import model_settings
from models import networks


def _num_params(params):
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


# Each count is Σ (fan_in + 1) x fan_out over the layers:
#   mlp:       785*512 + 513*512 + 513*10
#   cnn:       (25*1+1)*32 + (25*32+1)*64 + (7*7*64+1)*1024 + 1025*10
#   cnn_small: (9*1+1)*32 + (9*32+1)*64 + (7*7*64+1)*256 + 257*10
#   cifar_convnet on 28x28x1: (9*1+1)*12 + (14*14*12+1)*10
@pytest.mark.parametrize(
    "name,expected",
    [
        ("mlp", 785 * 512 + 513 * 512 + 513 * 10),
        ("cnn", 26 * 32 + 801 * 64 + 3137 * 1024 + 1025 * 10),
        ("cnn_small", 10 * 32 + 289 * 64 + 3137 * 256 + 257 * 10),
        ("cifar_convnet", 10 * 12 + (14 * 14 * 12 + 1) * 10),
    ],
)
def test_parameter_counts_and_output_shape(name, expected):
  model = networks.create_model(name, num_classes=10)
  params = networks.init_variables(model, jax.random.key(0), (28, 28, 1))["params"]
  assert _num_params(params) == expected
  logits = model.apply({"params": params}, jnp.zeros((3, 28, 28, 1)))
  assert logits.shape == (3, 10)
  assert logits.dtype == jnp.float32


def test_mlp_hidden_sizes_and_activation_are_configurable():
  model = networks.create_model("mlp", 4, hidden_sizes=(7,), activation="tanh")
  params = networks.init_variables(model, jax.random.key(0), (2, 3, 1))["params"]
  assert _num_params(params) == 7 * 7 + 8 * 4
  x = jax.random.normal(jax.random.key(1), (5, 2, 3, 1))
  hidden = jnp.tanh(x.reshape(5, 6) @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"][None])
  expected = hidden @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"][None]
  np.testing.assert_allclose(model.apply({"params": params}, x), expected, rtol=1e-5, atol=1e-6)


def test_cnn_dropout_is_active_only_in_training_and_keyed():
  model = networks.create_model("cnn", 10)
  assert model.default_dropout == 0.5
  params = networks.init_variables(model, jax.random.key(0), (28, 28, 1))["params"]
  x = jax.random.uniform(jax.random.key(1), (2, 28, 28, 1))
  evaluate = model.apply({"params": params}, x, train=False, dropout=0.5)
  np.testing.assert_array_equal(evaluate, model.apply({"params": params}, x, train=False))

  def train(seed, rate=0.5):
    return model.apply({"params": params}, x, train=True, dropout=rate,
                       rngs={"dropout": jax.random.key(seed)})

  np.testing.assert_array_equal(train(3), train(3))
  assert not np.allclose(train(3), train(4))
  assert not np.allclose(train(3), evaluate)
  # p = 0, even as an array (models trained together), keeps every unit exactly.
  np.testing.assert_array_equal(train(3, jnp.float32(0.0)),
                                model.apply({"params": params}, x, train=True))


@pytest.mark.parametrize("name", ["cnn", "cnn_small"])
def test_custom_conv_vjp_gives_autodiff_gradients(name):
  x = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1))
  labels = jnp.arange(4)
  grads = []
  for custom in (True, False):
    model = networks.create_model(name, 10, custom_conv_vjp=custom)
    params = networks.init_variables(model, jax.random.key(0), (28, 28, 1))["params"]

    def loss(p, model=model):
      logits = model.apply({"params": p}, x, train=False)
      return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(4), labels])

    grads.append(jax.grad(loss)(params))
  for got, want in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * float(jnp.abs(want).max()))


def test_unknown_model_names_the_choices():
  with pytest.raises(errors.UserError,
                     match="unknown model 'resnet'; choose one of mlp, cnn, cnn_small, cifar_convnet"):
    networks.create_model("resnet", 10)


def test_which_model_takes_which_architecture_setting():
  assert networks.takes("mlp", "hidden_sizes") and networks.takes("mlp", "activation")
  assert not networks.takes("cnn", "hidden_sizes") and not networks.takes("cnn", "activation")
  recurrent = {"rnn", "lstm", "gru"}
  assert {m for m in networks.MODELS if networks.is_recurrent(m)} == recurrent
  classifiers = {m for m in networks.MODELS if model_settings.objective_of(m) == "classification"}
  for model in networks.MODELS:
    assert networks.takes(model, "batch_norm") == (model in classifiers - recurrent)
    assert networks.takes(model, "sequence") == networks.takes(model, "bidirectional") == (
        model in recurrent)
    assert networks.takes(model, "code_size") == (model in {"ae", "conv_ae"})
    assert networks.takes(model, "latent_size") == (model in {"vae", "dcgan"})
  assert networks.takes("rnn", "activation") and not networks.takes("lstm", "activation")


def test_cifar_convnet_layer_shapes_on_32x32x3():
  """INPUT 32x32x3 -> CONV 12 -> RELU -> POOL 2x2 -> FC 10, shape by shape."""
  model = networks.create_model("cifar_convnet", 10)
  x = jax.random.uniform(jax.random.key(1), (5, 32, 32, 3))
  variables = networks.init_variables(model, jax.random.key(0), (32, 32, 3))
  params = variables["params"]
  assert params["Conv_0"]["kernel"].shape == (3, 3, 3, 12)
  assert params["Dense_0"]["kernel"].shape == (16 * 16 * 12, 10)
  logits, state = model.apply(variables, x, capture_intermediates=True, mutable=["intermediates"])
  captured = state["intermediates"]
  assert captured["Conv_0"]["__call__"][0].shape == (5, 32, 32, 12)
  assert captured["Dense_0"]["__call__"][0].shape == (5, 10)
  assert logits.shape == (5, 10)
  # The same computation written out: conv, ReLU, 2x2 max pool, flatten, dense.
  z = jax.lax.conv_general_dilated(x, params["Conv_0"]["kernel"], (1, 1), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  a = jax.nn.relu(z + params["Conv_0"]["bias"][None, None, None])
  pooled = a.reshape(5, 16, 2, 16, 2, 12).max(axis=(2, 4))
  expected = pooled.reshape(5, -1) @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"][None]
  np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["mlp", "cnn", "cnn_small", "cifar_convnet"])
def test_batch_norm_layers_and_running_statistics(name):
  """Train mode normalizes with the batch and updates m <- 0.9 m + 0.1 μ_B; eval uses m, v."""
  model = networks.create_model(name, 10, batch_norm=True)
  variables = networks.init_variables(model, jax.random.key(0), (28, 28, 1))
  stats = variables["batch_stats"]
  first = stats["BatchNorm_0"]
  np.testing.assert_array_equal(first["mean"], 0.0)
  np.testing.assert_array_equal(first["var"], 1.0)
  # A normalized layer has no bias: β of the batch norm takes its place.
  layer = "Dense_0" if name == "mlp" else "Conv_0"
  assert "bias" not in variables["params"][layer]

  x = 3.0 + 2.0 * jax.random.normal(jax.random.key(1), (16, 28, 28, 1))
  _, state = model.apply(variables, x, train=True, mutable=["batch_stats", "intermediates"],
                         capture_intermediates=True)
  pre = np.asarray(state["intermediates"][layer]["__call__"][0], np.float64)
  pre = pre.reshape(-1, pre.shape[-1])  # every position of every example is a sample
  new = state["batch_stats"]["BatchNorm_0"]
  np.testing.assert_allclose(new["mean"], 0.1 * pre.mean(0), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(new["var"], 0.9 + 0.1 * pre.var(0), rtol=1e-4, atol=1e-6)
  normalized = np.asarray(state["intermediates"]["BatchNorm_0"]["__call__"][0], np.float64)
  normalized = normalized.reshape(-1, normalized.shape[-1])  # γ = 1, β = 0 at initialization
  np.testing.assert_allclose(normalized.mean(0), 0.0, atol=1e-4)
  np.testing.assert_allclose(normalized.var(0), pre.var(0) / (pre.var(0) + 1e-5), rtol=1e-3)

  # Eval mode: each example's logits do not depend on the rest of the batch.
  trained = {**variables, "batch_stats": state["batch_stats"]}
  together = model.apply(trained, x, train=False)
  alone = jnp.concatenate([model.apply(trained, x[i:i + 1], train=False) for i in range(4)])
  np.testing.assert_allclose(together[:4], alone, rtol=1e-5, atol=1e-5)
  # Train mode: they do, through μ_B and σ²_B.
  batch = model.apply(variables, x, train=True, mutable=["batch_stats"])[0]
  half = model.apply(variables, x[:8], train=True, mutable=["batch_stats"])[0]
  assert not np.allclose(batch[:8], half, atol=1e-3)


def test_mlp_dropout_zeroes_hidden_units_and_rescales_the_rest():
  """Inverted dropout: each hidden unit is 0 with probability p, else scaled by 1/(1-p)."""
  model = networks.create_model("mlp", 10, hidden_sizes=(2000,))
  variables = networks.init_variables(model, jax.random.key(0), (4, 4, 1))
  x = jax.random.uniform(jax.random.key(1), (3, 4, 4, 1))
  _, state = model.apply(variables, x, train=True, dropout=0.25,
                         rngs={"dropout": jax.random.key(2)},
                         capture_intermediates=True, mutable=["intermediates"])
  hidden = np.asarray(state["intermediates"]["Dense_0"]["__call__"][0])
  kept = np.asarray(state["intermediates"]["Dropout_0"]["__call__"][0])
  relu = np.maximum(hidden, 0)
  live = relu > 0
  zeroed = (kept == 0) & live
  assert abs(zeroed.sum() / live.sum() - 0.25) < 0.02  # ~3000 live units: 4 std ≈ 0.03
  np.testing.assert_allclose(kept[~zeroed & live], relu[~zeroed & live] / 0.75, rtol=1e-6)
  np.testing.assert_array_equal(model.apply(variables, x), model.apply(variables, x, train=False))


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_2x2_pooling_equals_flax_pooling_with_its_gradient(kind):
  """Values equal flax's reduce_window pools; gradients too where no window has a tie."""
  import flax.linen as flax_nn
  x = jax.random.normal(jax.random.key(0), (2, 7, 6, 3))  # an odd height: 'VALID' drops the last row
  flax_pool = flax_nn.max_pool if kind == "max" else flax_nn.avg_pool
  ours = lambda x: networks.pool_2x2(x, kind)  # noqa: E731
  theirs = lambda x: flax_pool(x, (2, 2), strides=(2, 2))  # noqa: E731
  np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-6)
  weights = jax.random.normal(jax.random.key(1), ours(x).shape)
  grad = lambda f: jax.grad(lambda x: jnp.sum(f(x) * weights))(x)  # noqa: E731
  np.testing.assert_allclose(grad(ours), grad(theirs), rtol=1e-6, atol=1e-7)
