"""Logistic regression with an L2 penalty, solved to convergence by L-BFGS.

Scores z = x W + b. With K > 2 classes, P(c | x) = softmax(z)_c (multinomial);
with 2, one column, P(1 | x) = σ(z) (binary). The weights minimize
scikit-learn's objective, its sum of losses divided by N:
    J(W, b) = (1/N) Σ_n −log P(y_n | x_n) + ‖W‖² / (2 C N)
(the intercept b is not penalized). J is strictly convex in W, so the
minimizer W is unique and two solvers that converge agree on it; in the
multinomial case b is unique up to a constant, fixed by Σ_c b_c = 0, which
starting from b = 0 keeps (each gradient in b sums to 0 over the classes).

L-BFGS (Optax's, 10 past differences and a zoom line search, as scipy's
L-BFGS-B that scikit-learn calls) runs in a ``lax.while_loop`` until
max |∂J| ≤ tol or max_iter steps. C is a pytree leaf: ``vmap`` over C fits a
grid of penalties in one program.
"""

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class Settings:
  c: float = 1.0  # inverse penalty strength
  num_classes: int = flax.struct.field(pytree_node=False, default=10)
  tol: float = flax.struct.field(pytree_node=False, default=1e-4)
  max_iter: int = flax.struct.field(pytree_node=False, default=100)


@flax.struct.dataclass
class Params:
  settings: Settings
  w: jax.Array  # (D, K), K = 1 for two classes
  b: jax.Array  # (K,)
  iterations: jax.Array  # L-BFGS steps taken
  gradient: jax.Array  # max |∂J| at the solution


def _columns(settings: Settings) -> int:
  return 1 if settings.num_classes == 2 else settings.num_classes


def objective(settings: Settings, weights, x, y) -> jax.Array:
  """J(W, b) above, for weights = (W, b)."""
  w, b = weights
  z = x @ w + b[None, :]
  if settings.num_classes == 2:
    z = z[:, 0]
    losses = jax.nn.softplus(z) - y * z  # −log σ(z) for y = 1, −log(1 − σ(z)) for y = 0
  else:
    losses = jax.nn.logsumexp(z, axis=1) - jnp.take_along_axis(z, y[:, None], axis=1)[:, 0]
  return jnp.mean(losses) + jnp.sum(w * w) / (2.0 * settings.c * x.shape[0])


def fit(settings: Settings, x, y, key=None) -> Params:
  """argmin J by L-BFGS from W = 0, b = 0."""
  del key
  k = _columns(settings)
  weights = (jnp.zeros((x.shape[1], k), x.dtype), jnp.zeros((k,), x.dtype))

  def value(weights):
    return objective(settings, weights, x, y)

  solver = optax.lbfgs()
  value_and_grad = optax.value_and_grad_from_state(value)

  def largest_gradient(state):
    return optax.tree.max(jax.tree.map(jnp.abs, optax.tree.get(state, "grad")))

  def step(carry):
    weights, state = carry
    f, g = value_and_grad(weights, state=state)
    updates, state = solver.update(g, state, weights, value=f, grad=g, value_fn=value)
    return optax.apply_updates(weights, updates), state

  def not_done(carry):
    _, state = carry
    count = optax.tree.get(state, "count")
    return (count == 0) | ((count < settings.max_iter) & (largest_gradient(state) > settings.tol))

  weights, state = jax.lax.while_loop(not_done, step, (weights, solver.init(weights)))
  gradient = optax.tree.max(jax.tree.map(jnp.abs, jax.grad(value)(weights)))
  return Params(settings, *weights, optax.tree.get(state, "count"), gradient)


def predict_proba(params: Params, x) -> jax.Array:
  """P(c | x) for each class: (M, num_classes)."""
  z = x @ params.w + params.b[None, :]
  if params.settings.num_classes == 2:
    p = jax.nn.sigmoid(z[:, 0])
    return jnp.stack([1.0 - p, p], axis=1)
  return jax.nn.softmax(z, axis=1)


def predict(params: Params, x) -> jax.Array:
  """The most probable class."""
  z = x @ params.w + params.b[None, :]
  if params.settings.num_classes == 2:
    return (z[:, 0] > 0).astype(jnp.int32)
  return jnp.argmax(z, axis=1)
