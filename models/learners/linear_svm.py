"""Linear support vector machines solved in the dual by coordinate ascent (LIBLINEAR's method).

The intercept is a weight on a constant feature x_0 = 1 (so, as in LIBLINEAR
and scikit-learn's LinearSVC, it is penalized too): w includes it.

Classification, hinge loss, labels t_n ∈ {−1, +1} (one-vs-rest: one problem
per class, all solved together):
    primal  P(w) = ½‖w‖² + C Σ_n max(0, 1 − t_n w·x_n)
    dual    D(α) = Σ_n α_n − ½‖Σ_n α_n t_n x_n‖²,  0 ≤ α_n ≤ C,  w = Σ_n α_n t_n x_n.
One coordinate at a time, with the gradient G = t_n w·x_n − 1 of −D:
    α_n ← clip(α_n − G / ‖x_n‖², 0, C),  w ← w + (α_n' − α_n) t_n x_n.
A pass visits the points in a random order; passes stop when the projected
gradients span at most tol (max PG − min PG ≤ tol, LIBLINEAR's rule).

Regression, ε-insensitive loss, targets y_n:
    primal  P(w) = ½‖w‖² + C Σ_n max(0, |y_n − w·x_n| − ε)
    dual    D(β) = Σ_n (y_n β_n − ε |β_n|) − ½‖Σ_n β_n x_n‖²,  −C ≤ β_n ≤ C,  w = Σ_n β_n x_n.
The coordinate step is exact: with g = w·x_n − y_n and q = ‖x_n‖²,
    β_n ← clip(S(q β_n − g, ε) / q, −C, C),  S(u, ε) = sign(u) max(|u| − ε, 0);
passes stop when no β_n moves by more than tol / q.

At the optimum P(w) = D(α): the gap P − D measures how far a solution is
from it. C is a pytree leaf: a grid of C is one ``vmap``.
"""

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Settings:
  c: float = 0.1
  epsilon: float = 0.0  # regression
  num_classes: int = flax.struct.field(pytree_node=False, default=10)  # 0: regression
  tol: float = flax.struct.field(pytree_node=False, default=1e-4)
  max_iter: int = flax.struct.field(pytree_node=False, default=100)  # passes (scikit-learn: 1000)


@flax.struct.dataclass
class Params:
  settings: Settings
  w: jax.Array  # (D + 1, K): row 0 the intercept; K = 1 for regression and two classes
  dual: jax.Array  # (N, K): α (classification) or β (regression)
  passes: jax.Array


def with_intercept(x):
  """[1, x]: the constant feature the intercept multiplies."""
  return jnp.concatenate([jnp.ones((x.shape[0], 1), x.dtype), x], axis=1)


def signs(settings: Settings, y) -> jax.Array:
  """t (N, K): +1 for the class, −1 for the rest (one column for two classes)."""
  if settings.num_classes == 2:
    return jnp.where(y == 1, 1.0, -1.0)[:, None]
  return jnp.where(jax.nn.one_hot(y, settings.num_classes) > 0, 1.0, -1.0)


def _classification_pass(settings, x, t, q, state, order):
  def visit(carry, visit_n):
    w, pg_max, pg_min = carry
    n, a = visit_n
    g = t[n] * (x[n] @ w) - 1.0
    pg = jnp.where(a <= 0, jnp.minimum(g, 0.0), jnp.where(a >= settings.c, jnp.maximum(g, 0.0), g))
    new = jnp.where(pg != 0, jnp.clip(a - g / q[n], 0.0, settings.c), a)
    w = w + jnp.outer(x[n], (new - a) * t[n])
    return (w, jnp.maximum(pg_max, pg), jnp.minimum(pg_min, pg)), new

  w, alpha = state
  inf = jnp.full(w.shape[1], jnp.inf, x.dtype)
  (w, pg_max, pg_min), visited = jax.lax.scan(visit, (w, -inf, inf), (order, alpha[order]))
  return (w, alpha.at[order].set(visited)), jnp.max(pg_max - pg_min) <= settings.tol


def _regression_pass(settings, x, y, q, state, order):
  def visit(carry, visit_n):
    w, moved = carry
    n, b = visit_n
    u = q[n] * b - (x[n] @ w[:, 0] - y[n])
    new = jnp.clip(jnp.sign(u) * jnp.maximum(jnp.abs(u) - settings.epsilon, 0.0) / q[n],
                   -settings.c, settings.c)
    w = w + (new - b) * x[n][:, None]
    return (w, jnp.maximum(moved, jnp.abs(new - b) * q[n])), new

  w, beta = state
  (w, moved), visited = jax.lax.scan(visit, (w, jnp.zeros((), x.dtype)), (order, beta[order, 0]))
  return (w, beta.at[order, 0].set(visited)), moved <= settings.tol


def fit(settings: Settings, x, y, key) -> Params:
  """Dual coordinate ascent from α = 0 (w = 0), passes in orders drawn from ``key``."""
  x = with_intercept(x)
  q = jnp.sum(x * x, axis=1)
  regression = settings.num_classes == 0
  k = 1 if regression or settings.num_classes == 2 else settings.num_classes
  state = (jnp.zeros((x.shape[1], k), x.dtype), jnp.zeros((x.shape[0], k), x.dtype))
  if regression:
    one_pass = lambda state, order: _regression_pass(settings, x, y, q, state, order)  # noqa: E731
  else:
    t = signs(settings, y).astype(x.dtype)
    one_pass = lambda state, order: _classification_pass(settings, x, t, q, state, order)  # noqa: E731

  def body(carry):
    state, passes, _ = carry
    order = jax.random.permutation(jax.random.fold_in(key, passes), x.shape[0])
    state, done = one_pass(state, order)
    return state, passes + 1, done

  def not_done(carry):
    _, passes, done = carry
    return ~done & (passes < settings.max_iter)

  (w, dual), passes, _ = jax.lax.while_loop(not_done, body, (state, jnp.int32(0), False))
  return Params(settings, w, dual, passes)


def decision(params: Params, x) -> jax.Array:
  """w·[1, x] for each problem: (M, K)."""
  return with_intercept(x) @ params.w


def predict(params: Params, x) -> jax.Array:
  """Regression: w·x; two classes: [w·x > 0]; more: the class of the largest w·x."""
  f = decision(params, x)
  if params.settings.num_classes == 0:
    return f[:, 0]
  if params.settings.num_classes == 2:
    return (f[:, 0] > 0).astype(jnp.int32)
  return jnp.argmax(f, axis=1)


def primal_objective(settings: Settings, w, x, y) -> jax.Array:
  """P(w) of each problem (K,) for weights w (D + 1, K) with the intercept in row 0."""
  f = with_intercept(x) @ w
  if settings.num_classes == 0:
    losses = jnp.maximum(jnp.abs(y[:, None] - f) - settings.epsilon, 0.0)
  else:
    losses = jnp.maximum(0.0, 1.0 - signs(settings, y) * f)
  return 0.5 * jnp.sum(w * w, axis=0) + settings.c * jnp.sum(losses, axis=0)


def dual_objective(params: Params, y) -> jax.Array:
  """D(α) or D(β) of each problem (K,), with w = Σ α t x (or Σ β x) as held."""
  s, a = params.settings, params.dual
  half_norm = 0.5 * jnp.sum(params.w * params.w, axis=0)
  if s.num_classes == 0:
    return jnp.sum(y[:, None] * a - s.epsilon * jnp.abs(a), axis=0) - half_norm
  return jnp.sum(a, axis=0) - half_norm
