"""Saliency maps against the weights of a linear model and the full input Jacobian."""

import jax
import jax.numpy as jnp
import numpy as np

from models import networks
from models import saliency


def test_a_linear_models_saliency_is_its_class_weights():
  """Softmax regression: z_c = w_c · x + b_c, so ∂z_c/∂x = w_c, whatever x is."""
  model = networks.create_model("mlp", 4, hidden_sizes=())
  variables = networks.init_variables(model, jax.random.key(0), (5, 6, 3))
  images = jax.random.uniform(jax.random.key(1), (3, 5, 6, 3))
  classes = jnp.array([0, 3, 2])
  maps = saliency.saliency_maps(model.apply, variables, images, classes)
  kernel = np.asarray(variables["params"]["Dense_0"]["kernel"])  # (5*6*3, 4)
  for n, c in enumerate(classes):
    expected = np.abs(kernel[:, c].reshape(5, 6, 3)).max(axis=-1)
    np.testing.assert_allclose(maps[n], expected, rtol=1e-6)


def test_saliency_equals_the_jacobian_row_of_the_chosen_class():
  model = networks.create_model("cifar_convnet", 10)
  variables = networks.init_variables(model, jax.random.key(0), (8, 8, 3))
  images = jax.random.uniform(jax.random.key(1), (2, 8, 8, 3))
  classes = jnp.array([4, 7])
  maps = saliency.saliency_maps(model.apply, variables, images, classes)
  for n, c in enumerate(classes):
    jacobian = jax.jacrev(lambda x: model.apply(variables, x[None], train=False)[0])(images[n])
    np.testing.assert_allclose(maps[n], jnp.abs(jacobian[c]).max(axis=-1), rtol=1e-5, atol=1e-7)
