"""The generative objectives' math: the ELBO's terms, the reparameterization trick, PCA as the
linear autoencoder's optimum, the classifier score; the GAN's step against one written by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.training.loop import run as run_lib
from experiments.training.loop import state as state_lib
from experiments.training.objectives import adversarial
from experiments.training.settings.config import TrainConfig
from models import autoencoders
from models import generator_scores
from models import losses
from models import pca


def test_the_kl_term_equals_its_closed_form_and_a_monte_carlo_estimate():
  """KL(N(μ, σ²) ‖ N(0, I)) per example: ½ Σ (μ² + σ² - log σ² - 1), and E_q[log q - log p]
  over 400 000 draws (float64; the estimate's standard error is ~2e-3 here, bound 1e-2)."""
  with jax.enable_x64(True):
    mean = jnp.array([[0.5, -1.0, 0.0], [2.0, 0.1, -0.3]], jnp.float64)
    log_variance = jnp.array([[0.0, -1.0, 0.5], [0.3, 0.0, -2.0]], jnp.float64)
    kl = losses.gaussian_kl(mean, log_variance)
    variance = np.exp(np.asarray(log_variance))
    closed = 0.5 * np.sum(np.asarray(mean) ** 2 + variance - np.asarray(log_variance) - 1, -1)
    np.testing.assert_allclose(kl, closed, rtol=1e-12)
    epsilon = jax.random.normal(jax.random.key(0), (400_000, *mean.shape), jnp.float64)
    z = autoencoders.reparameterize(mean[None], log_variance[None], epsilon)
    log_q = -0.5 * (epsilon ** 2 + log_variance[None] + jnp.log(2 * jnp.pi))
    log_p = -0.5 * (z ** 2 + jnp.log(2 * jnp.pi))
    np.testing.assert_allclose(jnp.mean(jnp.sum(log_q - log_p, -1), 0), kl, atol=1e-2)


def test_the_reparameterized_gradient_agrees_with_the_score_function_estimate():
  """∂/∂μ and ∂/∂(log σ²) of E_{z~N(μ,σ²)}[f(z)], f(z) = sin(z) + z², by the pathwise gradient
  of μ + σ ε and by the score function E[f(z) ∂ log q(z)/∂θ], each from 10⁶ draws
  (float64), against the exact values: E = e^{-σ²/2} sin μ + μ² + σ²."""
  with jax.enable_x64(True):
    mu, log_variance = 0.7, np.log(0.5)
    sigma2 = np.exp(log_variance)
    exact = np.array([np.exp(-sigma2 / 2) * np.cos(mu) + 2 * mu,
                      sigma2 * (-0.5 * np.exp(-sigma2 / 2) * np.sin(mu) + 1)])
    f = lambda z: jnp.sin(z) + z ** 2  # noqa: E731
    epsilon = jax.random.normal(jax.random.key(1), (1_000_000,), jnp.float64)
    pathwise = jax.grad(lambda t: jnp.mean(f(autoencoders.reparameterize(t[0], t[1], epsilon))))(
        jnp.array([mu, log_variance]))
    z = mu + np.sqrt(sigma2) * np.asarray(epsilon)
    score = np.array([np.mean(f(z) * (z - mu) / sigma2),
                      np.mean(f(z) * 0.5 * ((z - mu) ** 2 / sigma2 - 1))])
    np.testing.assert_allclose(pathwise, exact, atol=5e-3)  # pathwise: low variance
    np.testing.assert_allclose(score, exact, atol=3e-2)  # score function: ~10x the variance


def test_a_linear_autoencoders_optimum_spans_pcas_subspace():
  """min ‖X - (X W_e + b_e) W_d - b_d‖² by gradient descent (float64): the decoder's columns
  span the k leading principal components (the principal angles' cosines are 1)."""
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(6, 10))
    x = (rng.normal(size=(400, 6)) * [5, 4, 3, 1, 0.5, 0.2]) @ basis + rng.normal(size=10)
    images = np.clip((x - x.min()) / (x.max() - x.min()) * 255, 0, 255)  # pca reads x/255
    data = jnp.asarray(images / 255.0)
    k = 3
    params = {"we": jnp.asarray(rng.normal(size=(10, k)) * 0.1), "be": jnp.zeros(k),
              "wd": jnp.asarray(rng.normal(size=(k, 10)) * 0.1), "bd": jnp.zeros(10)}

    def loss(p):
      return jnp.mean(jnp.sum((data - ((data @ p["we"] + p["be"][None]) @ p["wd"]
                                       + p["bd"][None])) ** 2, -1))

    step = jax.jit(lambda p, s: optax.adam(1e-2).update(jax.grad(loss)(p), s, p))
    state = optax.adam(1e-2).init(params)
    for _ in range(6000):
      updates, state = step(params, state)
      params = optax.apply_updates(params, updates)
    _, components = pca.fit(images.astype(np.float64), k)
    learned, _ = np.linalg.qr(np.asarray(params["wd"]).T)
    cosines = np.linalg.svd(components.T @ learned, compute_uv=False)
    np.testing.assert_allclose(cosines, 1.0, atol=1e-4)


def test_the_classifier_score_of_known_distributions():
  one_hot = np.eye(10)
  assert generator_scores.classifier_score(one_hot[np.arange(5000) % 10]) == pytest.approx(10.0)
  assert generator_scores.classifier_score(one_hot[np.full(5000, 3)]) == pytest.approx(1.0)
  assert generator_scores.classifier_score(np.full((50, 10), 0.1)) == pytest.approx(1.0)
  halves = one_hot[np.arange(1000) % 2]  # confident, two classes: 2
  assert generator_scores.classifier_score(halves) == pytest.approx(2.0)
  assert generator_scores.class_shares(halves) == [0.5, 0.5] + [0.0] * 8


def test_the_frechet_distance_of_shifted_gaussians_is_the_shift_squared():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(20000, 4))
  b = rng.normal(size=(20000, 4)) * 2 + 1  # mean 1, σ 2: ‖1‖² + Tr(I + 4I - 2·2I) = 4 + 4
  d = generator_scores.frechet_distance(*generator_scores.feature_statistics(a),
                                        *generator_scores.feature_statistics(b))
  assert d == pytest.approx(8.0, rel=0.03)
  assert generator_scores.frechet_distance(*generator_scores.feature_statistics(a),
                                           *generator_scores.feature_statistics(a)) < 1e-9


def test_the_gan_step_is_a_discriminator_update_then_a_generator_update():
  """The objective's step against the same two updates written out, with SGD (whose update is
  linear in the gradient: float32 rounding stays ~1e-7; Adam's first step divides by |g|)."""
  config = TrainConfig(model="dcgan", optimizer="sgd", learning_rate=0.1, schedule="constant",
                       discriminator_learning_rate=0.05, latent_size=8, num_epochs=1,
                       validation_size=0).resolve()
  run = run_lib.make_run([config], (8, 8, 1), 10, 256)
  state = state_lib.member_state(run, config)
  images = jax.random.uniform(jax.random.key(3), (16, 8, 8, 1)) * 2 - 1
  labels = jnp.zeros(16, jnp.int32)
  got, sums = jax.jit(run.objective.train_step, static_argnums=3)(state, images, labels, None)

  model, params, stats = run.model, state.params, state.batch_stats
  key = jax.random.fold_in(state.key, state.step)
  z1 = jax.random.normal(jax.random.fold_in(key, 0), (16, 8))
  z2 = jax.random.normal(jax.random.fold_in(key, 1), (16, 8))

  def apply(p, s, method, x):
    out, new = model.apply({"params": p, "batch_stats": s}, x, train=True, method=method,
                           mutable=["batch_stats"])
    return out, new["batch_stats"]

  @jax.jit
  def by_hand(params, stats):
    """The two updates written out: D's on real and generated images, then G's."""
    fake, s = apply(params, stats, model.generate, z1)

    def d_loss(d):
      p = {**params, "discriminator": d}
      real, s2 = apply(p, s, model.discriminate, images)
      fake_logits, s2 = apply(p, s2, model.discriminate, jax.lax.stop_gradient(fake))
      return -jnp.mean(jnp.log(jax.nn.sigmoid(real)) + jnp.log(1 - jax.nn.sigmoid(fake_logits))), s2

    d_grads, s = jax.grad(d_loss, has_aux=True)(params["discriminator"])
    d_tx = optax.sgd(0.05)
    d_new = optax.apply_updates(params["discriminator"], d_tx.update(
        d_grads, d_tx.init(params["discriminator"]), params["discriminator"])[0])

    def g_loss(g):
      p = {"generator": g, "discriminator": d_new}
      samples, s2 = apply(p, s, model.generate, z2)
      logits, s2 = apply(p, s2, model.discriminate, samples)
      return -jnp.mean(jnp.log(jax.nn.sigmoid(logits))), s2

    g_grads, _ = jax.grad(g_loss, has_aux=True)(params["generator"])
    g_tx = optax.sgd(0.1)
    g_new = optax.apply_updates(params["generator"], g_tx.update(
        g_grads, g_tx.init(params["generator"]), params["generator"])[0])
    return {"discriminator": d_new, "generator": g_new}

  want_params = by_hand(params, stats)
  for got_leaf, want in zip(jax.tree.leaves(got.params), jax.tree.leaves(want_params)):
    np.testing.assert_allclose(got_leaf, want, rtol=1e-5, atol=1e-6)
  assert int(got.step) == 1 and float(sums["count"]) == 16
  assert isinstance(got.tx, adversarial.Optimizers)
