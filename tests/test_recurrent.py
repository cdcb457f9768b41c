"""The recurrent networks: sequences, layer shapes, initialization, the hidden-state gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from models import networks
from models import recurrent


def test_an_image_is_read_by_rows_or_by_pixels():
  images = jnp.arange(2 * 4 * 3 * 1, dtype=jnp.float32).reshape(2, 4, 3, 1)
  rows = recurrent.as_sequence(images, "rows")
  assert rows.shape == (4, 2, 3)
  np.testing.assert_array_equal(rows[1, 0], images[0, 1, :, 0])
  pixels = recurrent.as_sequence(images, "pixels")
  assert pixels.shape == (12, 2, 1)
  np.testing.assert_array_equal(pixels[:, 1, 0], images[1].ravel())
  permuted = recurrent.as_sequence(images, "permuted_pixels")
  order = np.asarray(permuted[:, 0, 0]).astype(int)  # image 0 holds 0..11: the permutation
  assert sorted(order) == list(range(12)) and list(order) != list(range(12))
  np.testing.assert_array_equal(recurrent.as_sequence(images, "permuted_pixels"), permuted)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_stacked_layers_shapes_and_logits(name, bidirectional):
  model = networks.create_model(name, 10, hidden_sizes=(16, 8), bidirectional=bidirectional)
  variables = networks.init_variables(model, jax.random.key(0), (28, 28, 1))
  params = variables["params"]
  gates = {"rnn": 1, "lstm": 4, "gru": 3}[name]
  directions = 2 if bidirectional else 1
  assert params["layer_0"]["W"].shape == (28, gates * 16)
  assert params["layer_1"]["W"].shape == (16 * directions, gates * 8)
  assert params["layer_1"]["U"].shape == (8, gates * 8)
  assert ("layer_1_backward" in params) == bidirectional
  assert params["Dense_0"]["kernel"].shape == (8 * directions, 10)
  assert model.apply(variables, jnp.ones((3, 28, 28, 1))).shape == (3, 10)


def test_initialization_orthogonal_blocks_and_the_lstm_forget_bias():
  model = networks.create_model("lstm", 10, hidden_sizes=(8,))
  layer = networks.init_variables(model, jax.random.key(0), (28, 28, 1))["params"]["layer_0"]
  np.testing.assert_array_equal(layer["b"], np.repeat([0.0, 1.0, 0.0, 0.0], 8))
  for k in range(4):
    block = np.asarray(layer["U"][:, 8 * k:8 * (k + 1)])
    np.testing.assert_allclose(block.T @ block, np.eye(8), atol=1e-5)


def test_probes_leave_the_logits_unchanged():
  model = networks.create_model("gru", 10, hidden_sizes=(8,))
  variables = networks.init_variables(model, jax.random.key(0), (28, 28, 1))
  x = jax.random.uniform(jax.random.key(1), (2, 28, 28, 1))
  np.testing.assert_allclose(model.apply(variables, x, probes=jnp.zeros((28, 2, 8))),
                             model.apply(variables, x), rtol=1e-6, atol=1e-6)


def test_hidden_state_gradients_are_the_total_derivative_through_later_steps():
  """∂L/∂h_t recomputed by restarting the Elman recurrence from h_t and differentiating."""
  with jax.enable_x64(True):
    model = networks.create_model("rnn", 3, hidden_sizes=(5,), sequence="rows")
    images = jax.random.uniform(jax.random.key(1), (4, 6, 2, 1), jnp.float64)
    labels = jnp.array([0, 1, 2, 1])
    variables = jax.tree.map(lambda a: a.astype(jnp.float64), networks.init_variables(
        model, jax.random.key(0), (6, 2, 1)))
    curve = recurrent.hidden_state_gradients(model, variables, images, labels)
    p = variables["params"]
    xs = recurrent.as_sequence(images, "rows")

    def step(h, x):
      return jnp.tanh(x @ p["layer_0"]["W"] + h @ p["layer_0"]["U"] + p["layer_0"]["b"][None])

    def loss_from(t, h):  # the rest of the network from h_t (h_{t+1}, ..., h_T, the dense layer)
      for x in xs[t + 1:]:
        h = step(h, x)
      logits = h @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"][None]
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).sum()

    h, expected = jnp.zeros((4, 5), jnp.float64), []
    for t, x in enumerate(xs):
      h = step(h, x)
      expected.append(jnp.linalg.norm(jax.grad(loss_from, 1)(t, h), axis=-1).mean())
    np.testing.assert_allclose(curve, np.array(expected), rtol=1e-10)
