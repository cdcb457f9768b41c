"""Naive Bayes: classes with independent features, in log-probabilities throughout.

With class priors π_c = N_c / N, a point x gets the joint log-likelihood
    jll_c(x) = log π_c + Σ_i log p(x_i | c),
its prediction argmax_c jll_c(x) and log P(c | x) = jll_c(x) − logsumexp_c' jll_c'(x).
The three models differ in p(x_i | c):

- Gaussian: N(x_i; θ_ci, σ²_ci), the class's mean and variance, each
  variance plus ε = var_smoothing · max_i Var(x_i) (scikit-learn's):
  log p = −½ log(2π σ²_ci) − (x_i − θ_ci)² / (2 σ²_ci).
- Bernoulli: the pixel binarized, b_i = [x_i > binarize], on with probability
  p_ci = (Σ_{n in c} b_ni + α) / (N_c + 2α): log p = b_i log p_ci + (1 − b_i) log(1 − p_ci).
- Multinomial: x_i counts draws of feature i, with
  p_ci = (Σ_{n in c} x_ni + α) / Σ_j (Σ_{n in c} x_nj + α): log p = x_i log p_ci
  (the multinomial coefficient, the same for every class, is left out).

α and var_smoothing are pytree leaves: a grid of them is one ``vmap``.
"""

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Settings:
  kind: str = flax.struct.field(pytree_node=False, default="gaussian")  # bernoulli | multinomial
  num_classes: int = flax.struct.field(pytree_node=False, default=10)
  var_smoothing: float = 1e-9  # Gaussian
  alpha: float = 1.0  # Bernoulli and multinomial: Laplace/Lidstone smoothing
  binarize: float = 0.5  # Bernoulli


@flax.struct.dataclass
class Params:
  settings: Settings
  class_log_prior: jax.Array  # (C,)
  theta: jax.Array  # (C, D): Gaussian means; Bernoulli and multinomial: log p_ci
  var: jax.Array  # (C, D): Gaussian variances; Bernoulli: log(1 − p_ci); multinomial: unused 0s


def _counts(settings: Settings, x, y):
  onehot = jax.nn.one_hot(y, settings.num_classes, dtype=x.dtype)  # (N, C)
  return onehot, onehot.sum(0)


def fit(settings: Settings, x, y, key=None) -> Params:
  """The class priors and each class's per-feature parameters, in closed form."""
  del key
  onehot, class_count = _counts(settings, x, y)
  log_prior = jnp.log(class_count) - jnp.log(class_count.sum())
  if settings.kind == "gaussian":
    theta = (onehot.T @ x) / class_count[:, None]
    # Two passes, as np.var: E[(x − θ_y)²], not E[x²] − θ² (which cancels).
    var = (onehot.T @ (x - theta[y]) ** 2) / class_count[:, None]
    epsilon = settings.var_smoothing * jnp.max(jnp.var(x, axis=0))
    return Params(settings, log_prior, theta, var + epsilon)
  if settings.kind == "bernoulli":
    x = (x > settings.binarize).astype(x.dtype)
    log_p = jnp.log(onehot.T @ x + settings.alpha) - jnp.log(
        class_count + 2.0 * settings.alpha)[:, None]
    return Params(settings, log_prior, log_p, jnp.log1p(-jnp.exp(log_p)))
  counts = onehot.T @ x + settings.alpha
  log_p = jnp.log(counts) - jnp.log(counts.sum(1, keepdims=True))
  return Params(settings, log_prior, log_p, jnp.zeros_like(log_p))


def joint_log_likelihood(params: Params, x) -> jax.Array:
  """jll_c(x) for each query and class: (M, C)."""
  kind = params.settings.kind
  if kind == "gaussian":
    log_norm = -0.5 * jnp.sum(jnp.log(2.0 * jnp.pi * params.var), axis=1)
    squares = jnp.stack([jnp.sum((x - params.theta[c][None, :]) ** 2 / params.var[c][None, :], axis=1)
                         for c in range(params.theta.shape[0])], axis=1)
    return (params.class_log_prior + log_norm)[None, :] - 0.5 * squares
  if kind == "bernoulli":
    b = (x > params.settings.binarize).astype(x.dtype)
    return b @ (params.theta - params.var).T + (params.class_log_prior + params.var.sum(1))[None, :]
  return params.class_log_prior[None, :] + x @ params.theta.T


def predict_log_proba(params: Params, x) -> jax.Array:
  """log P(c | x) = jll_c(x) − logsumexp_c' jll_c'(x): (M, C)."""
  jll = joint_log_likelihood(params, x)
  return jll - jax.nn.logsumexp(jll, axis=1, keepdims=True)


def predict(params: Params, x) -> jax.Array:
  """argmax_c jll_c(x)."""
  return jnp.argmax(joint_log_likelihood(params, x), axis=1)
