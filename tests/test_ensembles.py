"""The random forest and gradient boosting: each piece against an independent computation, the
first boosting rounds against scikit-learn's, a forest against scikit-learn's, and refusals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.ensemble import RandomForestClassifier

from models.learners import binning
from models.learners import boosting
from models.learners import forest
from models.learners import tree


def _classes(n, seed=0, classes=3):
  x, y = make_classification(n, 12, n_informative=6, n_classes=classes, random_state=seed)
  return x.astype(np.float32), y.astype(np.int32)


def test_a_level_without_free_slots_leaves_its_nodes_unsplit():
  """Width 4: from depth 2 on, at most 4 nodes a level; the nodes past them stay leaves,
  counted, and every leaf still predicts its own training rows' majority."""
  x, y = _classes(400)
  params = jax.jit(lambda x, y: tree.fit(tree.Settings(max_depth=6, width=4, num_classes=3),
                                         x, y))(x, y)
  assert int(params.unsplit) > 0
  assert int(np.sum(params.split)) <= 1 + 2 + 4 * 4 // 2 * 2  # at most width / 2 split a level
  leaf = np.asarray(tree.leaves(params, x))
  predicted = np.asarray(tree.predict(params, x))
  for node in np.unique(leaf):
    counts = np.bincount(y[leaf == node], minlength=3)
    assert predicted[leaf == node][0] == np.argmax(counts)


def test_one_tree_on_every_row_and_feature_is_the_decision_tree():
  """No bootstrap, every feature at every split: the forest's one tree is ``tree.fit``'s."""
  x, y = _classes(300)
  settings = forest.Settings(num_trees=1, bootstrap=False, max_features=12, max_depth=6,
                             width=64, bins=256, num_classes=3)
  ours = jax.jit(lambda x, y, k: forest.fit(settings, x, y, k))(x, y, jax.random.key(0))
  alone = jax.jit(lambda x, y: tree.fit(forest.tree_settings(settings, 12), x, y))(x, y)
  for name in ("feature", "threshold", "split", "child", "value"):
    np.testing.assert_array_equal(getattr(ours.trees, name)[0], getattr(alone, name), name)


def test_the_vmapped_trees_are_the_trees_grown_one_by_one():
  """Five trees, two at a time (three groups, the last padded): each equals ``tree.grow`` run
  alone on its own draws and key."""
  x, y = _classes(300, seed=6)
  settings = forest.Settings(num_trees=5, trees_at_once=2, max_depth=5, width=16, bins=32,
                             num_classes=3)
  key = jax.random.key(11)
  params = jax.jit(lambda x, y, k: forest.fit(settings, x, y, k))(x, y, key)
  codes = binning.binned(binning.thresholds(x, 32), x)
  grow = jax.jit(lambda k, w: tree.grow(forest.tree_settings(settings, 12), jnp.asarray(x),
                                        codes, y, k, w))
  for t, tree_key in enumerate(jax.random.split(key, 6)[:5]):
    draw_key, grow_key = jax.random.split(tree_key)
    alone = grow(grow_key, forest._draws(draw_key, 300))
    for name in ("feature", "threshold", "split", "child", "value"):
      np.testing.assert_array_equal(getattr(params.trees, name)[t], getattr(alone, name),
                                    (t, name))


def test_the_bootstrap_draws_n_rows_and_leaves_about_a_third_out():
  """Counts sum to N; the rows never drawn are (1 − 1/N)^N ≈ e⁻¹ = 36.8% of them (N = 20 000:
  the standard deviation of that fraction is 0.34 points, the bound 1.5 point)."""
  counts = np.asarray(forest._draws(jax.random.key(3), 20_000))
  assert counts.sum() == 20_000
  assert abs(np.mean(counts == 0) - np.exp(-1)) < 0.015


def test_out_of_bag_votes_are_the_trees_that_left_each_row_out():
  """The out-of-bag accuracy recomputed from the trees themselves: each tree's draws
  recreated from its key, its class frequencies summed over the rows it never drew."""
  x, y = _classes(300, seed=1)
  settings = forest.Settings(num_trees=6, trees_at_once=4, max_depth=5, width=16, num_classes=3)
  key = jax.random.key(7)
  params = jax.jit(lambda x, y, k: forest.fit(settings, x, y, k))(x, y, key)
  keys = jax.random.split(key, 8)[:6]  # 2 groups of 4: the last 2 trees are dropped
  votes = np.zeros((300, 3))
  predict = jax.jit(tree.predict_values)
  for t in range(6):
    out = np.asarray(forest._draws(jax.random.split(keys[t])[0], 300)) == 0
    one = jax.tree.map(lambda a, t=t: a[t], params.trees)
    votes[out] += np.asarray(predict(one, x))[out]
  seen = votes.sum(axis=1) > 0
  expected = np.mean(np.argmax(votes[seen], axis=1) == y[seen])
  assert float(params.oob_score) == pytest.approx(expected, abs=1e-6)
  np.testing.assert_allclose(np.sum(params.importance), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_a_forest_scores_as_scikit_learns():
  """100 trees on 2 000 rows, 2 000 test rows: both accuracies within 2.5 points (about twice
  the spread of one forest's score between seeds, measured 0.8 point), and the out-of-bag
  estimates within 2.5 points of each other."""
  x, y = _classes(4000, seed=2)
  settings = forest.Settings(num_trees=100, width=256, num_classes=3)
  ours = jax.jit(lambda x, y, k: forest.fit(settings, x, y, k))(x[:2000], y[:2000],
                                                                 jax.random.key(0))
  theirs = RandomForestClassifier(100, max_depth=20, oob_score=True, random_state=0).fit(
      x[:2000], y[:2000])
  accuracy = np.mean(np.asarray(forest.predict(ours, x[2000:])) == y[2000:])
  assert abs(accuracy - theirs.score(x[2000:], y[2000:])) < 0.025
  assert abs(float(ours.oob_score) - theirs.oob_score_) < 0.025


def test_the_first_boosting_rounds_are_scikit_learns_in_regression():
  """Diabetes, 5 rounds: the predictions agree to float32 rounding (targets ~150)."""
  x, y = load_diabetes(return_X_y=True)
  x, y = x.astype(np.float32), y.astype(np.float32)
  settings = boosting.Settings(num_rounds=5, patience=0)
  params = jax.jit(lambda x, y, k: boosting.fit(settings, x, y, k))(x, y, jax.random.key(0))
  theirs = HistGradientBoostingRegressor(max_iter=5, early_stopping=False).fit(x, y)
  np.testing.assert_allclose(np.asarray(boosting.predict(params, x)), theirs.predict(x),
                             atol=1e-6 * np.abs(y).max() * 10)
  assert int(params.rounds) == 5


def test_the_first_boosting_rounds_are_scikit_learns_in_classification():
  """Three classes, 5 rounds of 31-leaf trees grown best leaf first (the budget binds: 30
  splits in every tree): the same class probabilities to 1e-5 (scikit-learn's raw scores
  start from log p − mean log p, ours from log p: a shift softmax is blind to). The features
  rounded to fewer than 255 values, so both bin them exactly (past that, each takes its own
  quantiles)."""
  x, y = _classes(3000, seed=3)
  x = np.round(x, 1)
  settings = boosting.Settings(num_rounds=5, patience=0, num_classes=3)
  params = jax.jit(lambda x, y, k: boosting.fit(settings, x, y, k))(x, y, jax.random.key(0))
  theirs = HistGradientBoostingClassifier(max_iter=5, early_stopping=False).fit(x, y)
  ours = np.asarray(jax.nn.softmax(boosting.raw_scores(params, x), axis=1))
  np.testing.assert_allclose(ours, theirs.predict_proba(x), atol=1e-5)
  np.testing.assert_array_equal(np.asarray(params.split).sum(axis=2), 30)


def test_a_first_round_stump_is_the_newton_step_written_out():
  """One round of two-leaf trees on 200 rows, in float64 by hand: F₀ = log p_k, g = p − y,
  h = p(1 − p); for each class the split of largest G_L²/H_L + G_R²/H_R − G²/H over every
  midpoint (each side 20 rows or more); each side's raw score moves by −η G/H."""
  rng = np.random.default_rng(7)
  x = np.round(rng.normal(size=(200, 3)), 1).astype(np.float32)
  y = ((x[:, 0] > 0.3).astype(int) + (x[:, 1] > 0.5)).astype(np.int32)
  settings = boosting.Settings(num_rounds=1, max_leaves=2, patience=0, num_classes=3)
  params = jax.jit(lambda x, y, k: boosting.fit(settings, x, y, k))(x, y, jax.random.key(0))
  ours = np.asarray(boosting.raw_scores(params, x), np.float64)
  x64, onehot = x.astype(np.float64), np.eye(3)[y]
  prior = onehot.mean(axis=0)
  p = np.broadcast_to(prior, (200, 3))
  g, h = p - onehot, p * (1 - p)
  for k in range(3):
    best = (-np.inf, None)
    for f in range(3):
      values = np.unique(x64[:, f])
      for low, high in zip(values[:-1], values[1:]):
        left = x64[:, f] <= (low + high) / 2
        if min(left.sum(), (~left).sum()) < 20:
          continue
        gain = (g[left, k].sum() ** 2 / h[left, k].sum() + g[~left, k].sum() ** 2
                / h[~left, k].sum() - g[:, k].sum() ** 2 / h[:, k].sum())
        if gain > best[0]:
          best = (gain, left)
    left = best[1]
    expected = np.log(prior[k]) + np.where(left, -0.1 * g[left, k].sum() / h[left, k].sum(),
                                           -0.1 * g[~left, k].sum() / h[~left, k].sum())
    np.testing.assert_allclose(ours[:, k], expected, rtol=1e-5, atol=1e-6)


def test_each_tree_keeps_to_the_leaf_budget():
  """Budget 6: every tree of every class makes 5 splits, and no more."""
  x, y = _classes(2000, seed=4)
  settings = boosting.Settings(num_rounds=4, max_leaves=6, patience=0, num_classes=3)
  params = jax.jit(lambda x, y, k: boosting.fit(settings, x, y, k))(x, y, jax.random.key(0))
  splits = np.asarray(params.split).sum(axis=2)  # (rounds, classes)
  np.testing.assert_array_equal(splits, 5)


def test_early_stopping_is_scikit_learns_rule():
  """``stops`` against scikit-learn's ``_should_stop`` written out (patience 3, tol 0.01)."""
  def sklearn_should_stop(scores, patience, tol):
    reference_position = patience + 1
    if len(scores) < reference_position:
      return False
    reference = scores[-reference_position] + tol
    return not any(score > reference for score in scores[-reference_position + 1:])

  rng = np.random.default_rng(0)
  for _ in range(50):
    scores = np.cumsum(rng.normal(0.01, 0.02, size=12))
    for m in range(12):
      ours = boosting.stops(jnp.asarray(np.pad(scores[:m + 1], (0, 11 - m),
                                               constant_values=np.nan)), m, 3, 0.01)
      assert bool(ours) == sklearn_should_stop(list(scores[:m + 1]), 3, 0.01), (scores, m)


def test_early_stopping_holds_out_rows_and_stops():
  """12 000 rows (past the 10 000 of early stopping): 1 200 held out, scores recorded before
  and after each round, and training stops by the rule before the 200 rounds."""
  x, y = _classes(12_000, seed=5)
  settings = boosting.Settings(num_rounds=200, learning_rate=0.5, max_leaves=4, patience=3,
                               tol=0.0, num_classes=3)
  assert boosting.validation_size(settings, 12_000) == 1200
  params = jax.jit(lambda x, y, k: boosting.fit(settings, x, y, k))(x, y, jax.random.key(0))
  m = int(params.rounds)
  scores = np.asarray(params.validation_scores)
  assert 3 <= m < 200 and np.all(np.isfinite(scores[:m + 1])) and np.all(np.isnan(scores[m + 1:]))
  assert bool(boosting.stops(jnp.asarray(scores), m, 3, 0.0))
  assert not any(bool(boosting.stops(jnp.asarray(scores), j, 3, 0.0)) for j in range(m))


@pytest.mark.parametrize("settings, rows, message", [
    (boosting.Settings(num_rounds=0), 100, "num_rounds must be 1 or more"),
    (boosting.Settings(max_leaves=1), 100, r"max_leaves must be in \[2, 4096\]"),
    (boosting.Settings(validation_fraction=0.0), 20_000, "needs validation_fraction > 0"),
    (boosting.Settings(), 30, "30 rows leave too few to split with min_samples_leaf=20"),
])
def test_impossible_boosting_settings_are_refused(settings, rows, message):
  with pytest.raises(ValueError, match=message):
    boosting.check(settings, rows)


def test_a_forest_past_the_memory_limit_is_refused():
  with pytest.raises(ValueError, match="100 trees of depth 20 hold 120 MiB of nodes, more "
                                       "than 100 MiB: fewer trees or a lower max_depth"):
    forest.check(forest.Settings(num_classes=10), 784, 100 * 2**20)
  with pytest.raises(ValueError, match="num_trees must be 1 or more"):
    forest.check(forest.Settings(num_trees=0, num_classes=10), 784, 2**40)
