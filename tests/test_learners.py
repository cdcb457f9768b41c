"""The course's other learners against scikit-learn's, in float64 where equality is expected.

Tolerances: the closed forms (naive Bayes, k-means from given centres) agree
to rounding, 1e-9 relative in float64; the iterative solvers agree to what
their stopping rules leave: L-BFGS run to max |∂J| ≤ 1e-10 and scikit-learn's
to 1e-12 (which its own ftol stops first) leave coefficients within 1e-5 relative; dual coordinate ascent to
a projected-gradient span of 1e-6 leaves the duality gap within 1e-6
relative; SMO stops at a KKT gap of 1e-3 (scikit-learn's), which bounds how
far its decision values may lie from LIBSVM's (1e-3 of their scale).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import cluster
from sklearn import linear_model
from sklearn import naive_bayes as sk_nb
from sklearn import neighbors
from sklearn import svm

from experiments.learning import fitting
from experiments.learning import tabular
from models import classic
from models.learners import kernel_svm
from models.learners import kmeans
from models.learners import knn
from models.learners import linear_svm
from models.learners import logistic
from models.learners import naive_bayes


def _classes(n=300, d=12, k=4, seed=0):
  """Continuous features (no tied distances) and labels from a noisy linear rule."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d))
  y = np.argmax(x @ rng.normal(size=(d, k)) + rng.gumbel(size=(n, k)), axis=1)
  return x, y


@pytest.fixture(autouse=True)
def float64():
  with jax.enable_x64(True):
    yield


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_knn_predicts_as_scikit_learn_in_small_chunks(weights):
  x, y = _classes()
  queries = np.concatenate([x[:5], _classes(seed=1)[0][:95]])  # 5 at distance 0 from a point
  params = knn.fit(knn.Settings(k=5, weights=weights, num_classes=4, memory_bytes=8 * 300 * 7),
                   jnp.asarray(x), jnp.asarray(y))
  theirs = neighbors.KNeighborsClassifier(5, weights=weights, algorithm="brute").fit(x, y)
  np.testing.assert_array_equal(jax.jit(knn.predict)(params, jnp.asarray(queries)),
                                theirs.predict(queries))
  target = x @ np.arange(12.0)
  params = knn.fit(knn.Settings(k=5, weights=weights), jnp.asarray(x), jnp.asarray(target))
  theirs = neighbors.KNeighborsRegressor(5, weights=weights, algorithm="brute").fit(x, target)
  np.testing.assert_allclose(knn.predict(params, jnp.asarray(queries)), theirs.predict(queries),
                             rtol=1e-12)


def test_knn_vote_ties_go_to_the_smallest_label():
  x = jnp.asarray([[0.0], [1.0], [-1.1], [5.0]])
  params = knn.fit(knn.Settings(k=2, num_classes=3), x, jnp.asarray([2, 1, 0, 0]))
  assert int(knn.predict(params, jnp.asarray([[0.1]]))[0]) == 1  # labels 2 and 1 tie: 1
  theirs = neighbors.KNeighborsClassifier(2, algorithm="brute").fit(np.asarray(x), [2, 1, 0, 0])
  assert theirs.predict([[0.1]])[0] == 1


def test_knn_grid_of_k_equals_each_k_alone():
  x, y = _classes()
  queries = jnp.asarray(_classes(seed=2)[0])
  params = knn.fit(knn.Settings(num_classes=4), jnp.asarray(x), jnp.asarray(y))
  ks = (1, 3, 5, 7, 9)
  grid = jax.jit(knn.predict_grid, static_argnums=2)(params, queries, ks)
  for row, k in zip(grid, ks):
    alone = knn.fit(knn.Settings(k=k, num_classes=4), jnp.asarray(x), jnp.asarray(y))
    np.testing.assert_array_equal(row, knn.predict(alone, queries))


@pytest.mark.parametrize("kind,twin", [
    ("gaussian", sk_nb.GaussianNB()),
    ("bernoulli", sk_nb.BernoulliNB(alpha=0.5, binarize=0.3)),
    ("multinomial", sk_nb.MultinomialNB(alpha=0.7)),
])
def test_naive_bayes_log_likelihoods_equal_scikit_learn(kind, twin):
  rng = np.random.default_rng(0)
  x, y = rng.integers(0, 8, size=(400, 30)) / 7.0, rng.integers(0, 5, size=400)
  queries = rng.integers(0, 8, size=(100, 30)) / 7.0
  settings = naive_bayes.Settings(kind=kind, num_classes=5, alpha=getattr(twin, "alpha", 1.0),
                                  binarize=getattr(twin, "binarize", 0.5) or 0.5)
  params = jax.jit(naive_bayes.fit)(settings, jnp.asarray(x), jnp.asarray(y))
  twin.fit(x, y)
  np.testing.assert_allclose(naive_bayes.joint_log_likelihood(params, jnp.asarray(queries)),
                             twin.predict_joint_log_proba(queries), rtol=1e-9)
  np.testing.assert_allclose(naive_bayes.predict_log_proba(params, jnp.asarray(queries)),
                             twin.predict_log_proba(queries), rtol=1e-9, atol=1e-12)
  np.testing.assert_array_equal(naive_bayes.predict(params, jnp.asarray(queries)),
                                twin.predict(queries))


def test_naive_bayes_grid_of_alpha_equals_each_alone():
  rng = np.random.default_rng(0)
  x, y = jnp.asarray(rng.integers(0, 8, size=(200, 10)) / 7.0), jnp.asarray(rng.integers(0, 3, 200))
  alphas = jnp.asarray([0.1, 1.0, 3.0])
  settings = naive_bayes.Settings(kind="multinomial", num_classes=3)
  grid = jax.jit(jax.vmap(lambda a: naive_bayes.fit(settings.replace(alpha=a), x, y)))(alphas)
  for i, a in enumerate([0.1, 1.0, 3.0]):
    alone = naive_bayes.fit(settings.replace(alpha=a), x, y)
    np.testing.assert_allclose(grid.theta[i], alone.theta, rtol=1e-12)


@pytest.mark.parametrize("num_classes", [4, 2])
def test_logistic_regression_reaches_scikit_learns_unique_minimizer(num_classes):
  x, y = _classes()
  y = y if num_classes == 4 else y % 2
  settings = logistic.Settings(c=0.5, num_classes=num_classes, tol=1e-10, max_iter=1000)
  params = jax.jit(logistic.fit)(settings, jnp.asarray(x), jnp.asarray(y))
  theirs = linear_model.LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(x, y)
  assert float(params.gradient) <= 1e-10
  scale = np.abs(theirs.coef_).max()
  np.testing.assert_allclose(params.w.T.reshape(theirs.coef_.shape), theirs.coef_, rtol=1e-5,
                             atol=1e-5 * scale)
  np.testing.assert_allclose(params.b, theirs.intercept_, atol=1e-5 * scale)
  np.testing.assert_allclose(logistic.predict_proba(params, jnp.asarray(x)),
                             theirs.predict_proba(x), atol=1e-6)


def test_logistic_grid_of_c_equals_each_alone():
  x, y = (jnp.asarray(a) for a in _classes(n=150))
  settings = logistic.Settings(num_classes=4, tol=1e-9, max_iter=500)
  cs = [0.01, 0.1, 1.0]
  grid = jax.jit(jax.vmap(lambda c: logistic.fit(settings.replace(c=c), x, y)))(jnp.asarray(cs))
  for i, c in enumerate(cs):
    alone = logistic.fit(settings.replace(c=c), x, y)
    np.testing.assert_allclose(grid.w[i], alone.w, rtol=1e-6, atol=1e-8)


def test_linear_svm_dual_objective_meets_scikit_learns_primal():
  x, y = _classes()
  settings = linear_svm.Settings(c=0.1, num_classes=4, tol=1e-6, max_iter=10_000)
  params = jax.jit(linear_svm.fit)(settings, jnp.asarray(x), jnp.asarray(y), jax.random.key(0))
  theirs = svm.LinearSVC(loss="hinge", C=0.1, tol=1e-8, max_iter=100_000).fit(x, y)
  their_w = jnp.asarray(np.concatenate([theirs.intercept_[None], theirs.coef_.T]))
  their_primal = linear_svm.primal_objective(settings, their_w, jnp.asarray(x), jnp.asarray(y))
  dual = linear_svm.dual_objective(params, jnp.asarray(y))
  primal = linear_svm.primal_objective(settings, params.w, jnp.asarray(x), jnp.asarray(y))
  assert int(params.passes) < 10_000
  np.testing.assert_array_less(dual, primal + 1e-12)  # weak duality: D ≤ P
  np.testing.assert_allclose(dual, their_primal, rtol=1e-6)
  np.testing.assert_array_equal(linear_svm.predict(params, jnp.asarray(x)), theirs.predict(x))


def test_linear_svm_regression_dual_meets_scikit_learns_primal():
  x, _ = _classes()
  target = x @ np.linspace(-2, 2, 12) + 10 + np.random.default_rng(3).normal(size=300)
  settings = linear_svm.Settings(c=1.0, epsilon=0.1, num_classes=0, tol=1e-7, max_iter=20_000)
  params = jax.jit(linear_svm.fit)(settings, jnp.asarray(x), jnp.asarray(target),
                                   jax.random.key(0))
  theirs = svm.LinearSVR(C=1.0, epsilon=0.1, tol=1e-10, max_iter=200_000).fit(x, target)
  their_w = jnp.asarray(np.concatenate([np.atleast_1d(theirs.intercept_), theirs.coef_])[:, None])
  their_primal = linear_svm.primal_objective(settings, their_w, jnp.asarray(x), jnp.asarray(target))
  np.testing.assert_allclose(linear_svm.dual_objective(params, jnp.asarray(target)), their_primal,
                             rtol=1e-6)


def test_linear_svm_grid_of_c_equals_each_alone():
  x, y = (jnp.asarray(a) for a in _classes(n=120))
  settings = linear_svm.Settings(num_classes=4, tol=1e-5, max_iter=2000)
  cs = [0.01, 0.1, 1.0]
  key = jax.random.key(1)
  grid = jax.jit(jax.vmap(lambda c: linear_svm.fit(settings.replace(c=c), x, y, key)))(
      jnp.asarray(cs))
  for i, c in enumerate(cs):
    alone = linear_svm.fit(settings.replace(c=c), x, y, key)
    # The grid runs until its slowest member stops; a member that stopped earlier keeps
    # stepping, so it ends at least as close to its optimum: compare the objectives.
    np.testing.assert_allclose(linear_svm.dual_objective(jax.tree.map(lambda a, i=i: a[i], grid), y),
                               linear_svm.dual_objective(alone, y), rtol=1e-5)


@pytest.mark.parametrize("kernel", ["rbf", "poly"])
def test_kernel_svm_decisions_match_libsvm_to_the_stopping_tolerance(kernel):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(200, 6))
  y = (np.sin(2 * x[:, 0]) + x[:, 1] ** 2 > 1).astype(int)
  settings = kernel_svm.Settings(c=10.0, kernel=kernel, coef0=1.0, num_classes=2,
                                 memory_bytes=8 * 200 * 16)  # 13 chunks of rows
  params = jax.jit(kernel_svm.fit)(settings, jnp.asarray(x), jnp.asarray(y))
  theirs = svm.SVC(C=10.0, kernel=kernel, coef0=1.0, gamma="scale").fit(x, y)
  assert float(params.gap[0]) <= 1e-3
  mine = np.asarray(kernel_svm.decision(params, jnp.asarray(x)))[:, 0]
  # Each solver stops within a KKT gap of 1e-3: decision values agree to about that gap
  # times the kernel's scale (polynomial kernel values reach tens here).
  scale = np.abs(theirs.decision_function(x)).max()
  np.testing.assert_allclose(mine, theirs.decision_function(x), atol=1e-3 * scale)
  support = kernel_svm.support_vectors(params)
  assert support.x.shape[0] == len(theirs.support_)
  np.testing.assert_allclose(kernel_svm.decision(support, jnp.asarray(x))[:, 0], mine, atol=1e-12)


def test_kernel_svm_one_vs_rest_separates_classes_as_libsvm_does():
  x, y = _classes(n=240, d=5, k=3)
  settings = kernel_svm.Settings(c=1.0, num_classes=3)
  params = jax.jit(kernel_svm.fit)(settings, jnp.asarray(x), jnp.asarray(y))
  theirs = svm.SVC(C=1.0).fit(x, y)  # one-vs-one: the same data, a different decomposition
  queries = _classes(n=240, d=5, k=3, seed=5)[0]
  agreement = np.mean(np.asarray(kernel_svm.predict(params, jnp.asarray(queries)))
                      == theirs.predict(queries))
  assert agreement >= 0.9
  assert np.all(np.asarray(params.gap) <= 1e-3)


def test_kmeans_from_the_same_centres_equals_scikit_learn():
  rng = np.random.default_rng(0)
  x = np.concatenate([rng.normal(size=(80, 5)) + 3 * rng.normal(size=5) for _ in range(6)])
  start = x[rng.choice(len(x), 6, replace=False)]
  centres, labels, inertia, steps = jax.jit(kmeans.lloyd, static_argnums=0)(
      kmeans.Settings(num_clusters=6), jnp.asarray(x), jnp.asarray(start))
  theirs = cluster.KMeans(6, init=start, n_init=1, algorithm="lloyd").fit(x)
  np.testing.assert_array_equal(labels, theirs.labels_)
  np.testing.assert_allclose(float(inertia), theirs.inertia_, rtol=1e-12)
  np.testing.assert_allclose(centres, theirs.cluster_centers_, rtol=1e-12, atol=1e-12)
  assert int(steps) == theirs.n_iter_


def test_kmeans_restarts_reach_scikit_learns_inertia_and_name_clusters():
  rng = np.random.default_rng(1)
  centres = 4 * rng.normal(size=(5, 4))
  y = np.repeat(np.arange(5), 60)
  x = centres[y] + rng.normal(size=(300, 4))
  settings = kmeans.Settings(num_clusters=5, num_classes=5)
  params = jax.jit(kmeans.fit)(settings, jnp.asarray(x), jnp.asarray(y), jax.random.key(0))
  theirs = cluster.KMeans(5, n_init=10, random_state=0).fit(x)
  assert params.restart_inertias.shape == (10,)
  assert float(params.inertia) <= theirs.inertia_ * (1 + 1e-12)
  assert float(params.inertia) == float(params.restart_inertias.min())
  assert np.mean(np.asarray(kmeans.predict(params, jnp.asarray(x))) == y) >= 0.95


def test_regression_on_diabetes_matches_scikit_learn_and_beats_the_mean():
  data = tabular.load("diabetes", None, None, None)
  assert (len(data.y_train), len(data.y_test)) == (353, 89)
  x, y, q = (jnp.asarray(a, jnp.float64) for a in (data.x_train, data.y_train, data.x_test))
  mine = knn.predict(knn.fit(knn.Settings(k=3), x, y), q)
  theirs = neighbors.KNeighborsRegressor(3, algorithm="brute").fit(
      np.asarray(x), np.asarray(y)).predict(np.asarray(q))
  assert fitting.score(data.y_test, mine, 0) == pytest.approx(
      fitting.score(data.y_test, theirs, 0), abs=1e-12)
  weights = classic.least_squares(data.x_train, data.y_train)
  baseline = fitting.score(data.y_test, classic.with_bias(jnp.asarray(data.x_test)) @ weights, 0)
  assert 0.3 < baseline < 0.7  # least squares explains about half of the variance
  assert 0.0 < fitting.score(data.y_test, mine, 0) < baseline


def test_r2_is_one_for_a_perfect_fit_and_zero_for_the_mean():
  y = np.array([1.0, 2.0, 4.0])
  assert fitting.score(y, y, 0) == 1.0
  assert fitting.score(y, np.full(3, y.mean()), 0) == pytest.approx(0.0)
  assert fitting.score([1, 2, 2], [1, 2, 0], 3) == pytest.approx(2 / 3)
