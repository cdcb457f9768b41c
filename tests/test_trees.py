"""The decision tree: its impurities by hand, its binning, its splits against a brute-force
search in float64, its trees against scikit-learn's, and its settings refused."""

import math

import jax
import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.tree import DecisionTreeClassifier
from sklearn.tree import DecisionTreeRegressor

from models.learners import binning
from models.learners import splits
from models.learners import tree


def test_gini_and_entropy_by_hand():
  """Class weights (3, 1): Gini 4 (1 − 9/16 − 1/16) = 1.5; entropy −(3 ln ¾ + ln ¼)."""
  stats = np.array([[3.0, 1.0], [2.0, 2.0], [4.0, 0.0]], np.float32)
  gini = splits.impurity_sum(tree.Settings(num_classes=2), stats)
  np.testing.assert_allclose(gini, [1.5, 2.0, 0.0], rtol=1e-6)
  entropy = splits.impurity_sum(tree.Settings(criterion="entropy", num_classes=2), stats)
  np.testing.assert_allclose(entropy, [-(3 * math.log(0.75) + math.log(0.25)),
                                       4 * math.log(2), 0.0], rtol=1e-6, atol=1e-6)
  # Squared error from (w, Σwy, Σwy²) of y = 1, 2, 6: Σ (y − 3)² = 14.
  np.testing.assert_allclose(splits.impurity_sum(tree.Settings(), np.array([3.0, 9.0, 41.0])),
                             14.0, rtol=1e-6)


def test_bins_are_exact_up_to_the_bin_count_and_quantiles_beyond():
  rng = np.random.default_rng(0)
  few = rng.integers(0, 5, size=(100, 1)).astype(np.float32) * 0.5
  edges = np.asarray(binning.thresholds(few, 8))[0]
  np.testing.assert_array_equal(edges[:4], [0.25, 0.75, 1.25, 1.75])
  assert np.all(np.isinf(edges[4:]))
  many = rng.normal(size=(1000, 2)).astype(np.float32)
  edges = np.asarray(binning.thresholds(many, 16))
  codes = np.asarray(binning.binned(edges, many))
  for f in range(2):
    counts = np.bincount(codes[:, f], minlength=16)
    assert counts.min() >= 55 and counts.max() <= 70  # quantiles: about 1000 / 16 each
    for b in range(15):  # bin ≤ b exactly when x ≤ edge b
      np.testing.assert_array_equal(codes[:, f] <= b, many[:, f] <= edges[f, b])


def _impurity64(y, criterion, num_classes):
  if criterion == "squared_error":
    return float(np.sum((y - y.mean()) ** 2)) if len(y) else 0.0
  counts = np.bincount(y, minlength=num_classes).astype(np.float64)
  if not len(y):
    return 0.0
  p = counts / counts.sum()
  if criterion == "gini":
    return len(y) * (1 - np.sum(p * p))
  return -len(y) * float(np.sum(p[p > 0] * np.log(p[p > 0])))


def _brute_force_tree(x, y, criterion, num_classes, min_leaf, max_depth):
  """{heap node: (feature, threshold)} by trying every midpoint of every feature in float64."""
  found = {}

  def grow(rows, node, depth):
    if depth == max_depth or _impurity64(y[rows], criterion, num_classes) <= 1e-12:
      return
    best = (np.inf, None, None)
    for f in range(x.shape[1]):
      values = np.unique(x[rows, f])
      for low, high in zip(values[:-1], values[1:]):
        left = rows[x[rows, f] <= low]
        right = rows[x[rows, f] > low]
        if min(len(left), len(right)) < min_leaf:
          continue
        score = (_impurity64(y[left], criterion, num_classes)
                 + _impurity64(y[right], criterion, num_classes))
        if score < best[0] - 1e-9 * abs(score):
          best = (score, f, (np.float64(low) + high) / 2)
    if best[1] is None:
      return
    found[node] = best[1:]
    grow(rows[x[rows, best[1]] <= best[2]], 2 * node + 1, depth + 1)
    grow(rows[x[rows, best[1]] > best[2]], 2 * node + 2, depth + 1)

  grow(np.arange(len(y)), 0, 0)
  return found


def _data(criterion, n, seed=1):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 6)).astype(np.float32)
  if criterion == "squared_error":
    return x, (3 * x[:, 0] + x[:, 1] ** 2 + rng.normal(size=n)).astype(np.float32), 0
  y = ((x[:, 0] + x[:, 1] ** 2 + 0.5 * rng.normal(size=n)) > 0.8) + (x[:, 2] > 1)
  return x, y.astype(np.int32), 3


@pytest.mark.parametrize("criterion, min_leaf, depth", [
    ("gini", 1, 5), ("entropy", 3, 6), ("squared_error", 5, 5)])
def test_every_split_is_the_brute_force_searchs(criterion, min_leaf, depth):
  """200 rows (fewer distinct values than bins, so the bins hold every threshold): the same
  feature and threshold at every node as the search over every midpoint in float64. (The
  regression leaves hold 5 or more rows: with 2, two features can cut off the same two rows,
  a tie float32 then breaks by rounding.)"""
  x, y, num_classes = _data(criterion, 200)
  settings = tree.Settings(criterion=criterion, max_depth=depth, min_samples_leaf=min_leaf,
                           num_classes=num_classes)
  params = jax.jit(lambda x, y: tree.fit(settings, x, y))(x, y)
  ours = {heap: (int(params.feature[i]), float(params.threshold[i]))
          for heap, i in _heap_order(params).items() if params.split[i]}
  theirs = _brute_force_tree(x.astype(np.float64), y, criterion, num_classes, min_leaf, depth)
  assert sorted(ours) == sorted(theirs) and len(ours) > 10
  for node, (feature, threshold) in theirs.items():
    assert ours[node][0] == feature, node
    assert ours[node][1] == pytest.approx(threshold, rel=1e-6, abs=1e-6), node


def _heap_order(params):
  """{heap number (children 2i + 1, 2i + 2): slot} of every node reached from the root."""
  order, todo = {}, [(0, 0)]
  while todo:
    heap, slot = todo.pop()
    order[heap] = slot
    if params.split[slot]:
      todo += [(2 * heap + 1, int(params.child[slot])), (2 * heap + 2, int(params.child[slot]) + 1)]
  return order


def _leaf_sets(leaf_of_row):
  return sorted(tuple(np.flatnonzero(leaf_of_row == leaf)) for leaf in np.unique(leaf_of_row))


@pytest.mark.parametrize("criterion", ["gini", "entropy", "squared_error"])
def test_the_tree_is_scikit_learns(criterion):
  """The same leaves (each holding the same training rows), the same predictions on new rows,
  and the same feature importances (to float32 rounding)."""
  x, y, num_classes = _data(criterion, 240, seed=2)
  x_new = np.random.default_rng(3).normal(size=(500, 6)).astype(np.float32)
  estimator = (DecisionTreeRegressor if criterion == "squared_error" else DecisionTreeClassifier)(
      criterion=criterion, max_depth=5, min_samples_leaf=5, random_state=0).fit(x, y)
  settings = tree.Settings(criterion=criterion, max_depth=5, min_samples_leaf=5,
                           num_classes=num_classes)
  params = jax.jit(lambda x, y: tree.fit(settings, x, y))(x, y)
  assert _leaf_sets(np.asarray(tree.leaves(params, x))) == _leaf_sets(estimator.apply(x))
  np.testing.assert_allclose(tree.predict(params, x_new), estimator.predict(x_new),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(params.importance, estimator.feature_importances_, atol=1e-5)


def test_diabetes_regression_scores_as_scikit_learns():
  """More distinct values than bins in some features (quantile bins): R² within 0.02."""
  data = load_diabetes()
  x, y = data.data.astype(np.float32), data.target.astype(np.float32)
  train, test = np.arange(len(y)) % 5 != 0, np.arange(len(y)) % 5 == 0
  settings = tree.Settings(max_depth=4)
  params = jax.jit(lambda x, y: tree.fit(settings, x, y))(x[train], y[train])
  theirs = DecisionTreeRegressor(max_depth=4, random_state=0).fit(x[train], y[train])

  def r2(prediction):
    return 1 - np.sum((y[test] - prediction) ** 2) / np.sum((y[test] - y[test].mean()) ** 2)

  assert abs(r2(np.asarray(tree.predict(params, x[test]))) - r2(theirs.predict(x[test]))) < 0.02


def test_max_features_draws_each_nodes_features():
  """max_features=1: each node splits on one drawn feature, so different keys grow different
  trees, and the same key the same tree."""
  x, y, _ = _data("gini", 200)
  settings = tree.Settings(max_depth=3, max_features=1, num_classes=3)
  fit = jax.jit(lambda key: tree.fit(settings, x, y, key).feature)
  a, b = fit(jax.random.key(0)), fit(jax.random.key(1))
  np.testing.assert_array_equal(a, fit(jax.random.key(0)))
  assert not np.array_equal(a, b)


def test_the_tree_prints_as_export_text():
  from sklearn.tree import export_text
  x, y, num_classes = _data("gini", 240, seed=2)
  estimator = DecisionTreeClassifier(max_depth=3, min_samples_leaf=5, random_state=0).fit(x, y)
  params = tree.fit(tree.Settings(max_depth=3, min_samples_leaf=5, num_classes=num_classes), x, y)
  assert tree.describe(params) == export_text(estimator, decimals=4)


@pytest.mark.parametrize("settings, message", [
    (tree.Settings(criterion="gini"), "criterion 'gini' does not fit regression"),
    (tree.Settings(criterion="squared_error", num_classes=3),
     "criterion 'squared_error' does not fit classification"),
    (tree.Settings(max_depth=65, num_classes=2), r"max_depth must be in \[1, 64\]"),
    (tree.Settings(max_features=7, num_classes=2), r"max_features must be in \[0, 6\]"),
    (tree.Settings(max_depth=21, num_classes=2), "makes 4194303 node slots, more than 2097152"),
    (tree.Settings(max_depth=64, width=2**16, num_classes=2), "more than 2097152"),
])
def test_impossible_settings_are_refused(settings, message):
  with pytest.raises(ValueError, match=message):
    tree.check(settings, 6)


@pytest.mark.parametrize("shape, axis", [((3, 256, 2), 1), ((5, 32), 1), ((7, 3), 0)])
def test_cumulative_sums_are_cumsums(shape, axis):
  """Blocks of 16 (256, 32 bins) or one block (7): integers, so exactly."""
  x = np.random.default_rng(0).integers(0, 100, size=shape).astype(np.float32)
  np.testing.assert_array_equal(binning.cumulative(x, axis), np.cumsum(x, axis=axis))
