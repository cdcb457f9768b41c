"""Gradient boosting: Newton trees on histograms of binned features (softmax or squared error).

Raw scores start at the intercept-only model, F₀ = log p_k (the class
frequencies; the mean target for regression). Each round m computes, for
each row i and class k, the loss's gradient and Hessian in F,
    softmax:        g_ik = p_ik − [y_i = k],  h_ik = p_ik (1 − p_ik),  p_i = softmax(F_i),
    squared error:  g_i = F_i − y_i,          h_i = 1,
and fits one tree per class to them by the second-order expansion of the
loss: a node's rows are best moved by w = −G / (H + λ) (G, H their sums, λ
``l2``), and a split gains
    G_L² / (H_L + λ) + G_R² / (H_R + λ) − G² / (H + λ).
Then F_k += η w_leaf(x) (η ``learning_rate``). Prediction: argmax_k F_k(x),
or F(x) for regression.

A tree grows leaf by leaf, as scikit-learn's HistGradientBoosting and
LightGBM grow theirs: the leaf whose best split gains most is split next,
while some split gains more than 0 (each child keeping ``min_samples_leaf``
rows and a Hessian of ``min_hessian``) and the tree has fewer than
``max_leaves`` leaves; no leaf deeper than ``max_depth`` (0: no limit). Each
node keeps its histogram of (g, h, 1) per feature and bin; a split sums the
smaller child's from its own rows (``splits.gathered``: ``lax.switch`` picks
a program per bucket of rows) and takes its sibling's as the parent's minus it.

Early stopping, on more than 10 000 rows (scikit-learn's "auto"): a
``validation_fraction`` of the rows, drawn at random, is held out and scored
after every round (accuracy, or −mean squared error);
training stops when none of the last ``patience`` rounds beats the score
``patience`` rounds before by more than ``tol`` (scikit-learn's rule).

Memory: the nodes' histograms, (2 max_leaves − 1) · D · bins · 3 float32s
(147 MB on MNIST: one slot per node, so that a split writes its two children
in one slice, in place); the trees, num_rounds · K · (2 max_leaves − 1)
nodes of 5 numbers.
"""

import functools
import math

import flax.struct
import jax
import jax.numpy as jnp

from models.learners import binning
from models.learners import splits
from models.learners import tree

EARLY_STOPPING_ROWS = 10_000  # early stopping on more rows than this (scikit-learn's "auto")


@flax.struct.dataclass
class Settings:
  num_rounds: int = flax.struct.field(pytree_node=False, default=100)
  learning_rate: float = 0.1
  max_leaves: int = flax.struct.field(pytree_node=False, default=31)
  max_depth: int = flax.struct.field(pytree_node=False, default=0)  # 0: no limit
  min_samples_leaf: float = 20.0
  l2: float = 0.0
  min_hessian: float = 1e-3
  bins: int = flax.struct.field(pytree_node=False, default=256)
  validation_fraction: float = flax.struct.field(pytree_node=False, default=0.1)
  patience: int = flax.struct.field(pytree_node=False, default=10)  # 0: no early stopping
  tol: float = 1e-7
  num_classes: int = flax.struct.field(pytree_node=False, default=0)  # 0: regression


@flax.struct.dataclass
class Params:
  settings: Settings
  baseline: jax.Array  # (K,) F₀
  feature: jax.Array  # (rounds, K, nodes) int32
  threshold: jax.Array  # (rounds, K, nodes) float32: left when x[feature] ≤ threshold
  split: jax.Array  # (rounds, K, nodes) bool
  child: jax.Array  # (rounds, K, nodes) int32 the left child's slot; the right child's next
  value: jax.Array  # (rounds, K, nodes) η w of each node
  rounds: jax.Array  # the rounds trained (the rest of the arrays unused)
  validation_scores: jax.Array  # (rounds + 1,) before and after each round; nan past the end


def trees_per_round(settings: Settings) -> int:
  return settings.num_classes if settings.num_classes else 1


def validation_size(settings: Settings, n: int) -> int:
  """The rows held out: none without early stopping, which (as scikit-learn's "auto") needs
  ``patience`` and more than EARLY_STOPPING_ROWS rows."""
  early = settings.patience and n > EARLY_STOPPING_ROWS
  return math.ceil(settings.validation_fraction * n) if early else 0


def depth_limit(settings: Settings) -> int:
  """The deepest a leaf may be: ``max_depth``, or with 0 the deepest max_leaves allow."""
  return settings.max_depth or settings.max_leaves - 1


def num_nodes(settings: Settings) -> int:
  return 2 * settings.max_leaves - 1


def _weight(settings: Settings, totals) -> jax.Array:
  """η w = −η G / (H + λ) of each node's (G, H, count)."""
  return -settings.learning_rate * totals[..., 0] / jnp.maximum(totals[..., 1] + settings.l2,
                                                                1e-30)


def _best(settings: Settings, histograms, depth):
  """(gain, feature, bin, totals) of each of the (D, W, bins, 3) histograms' nodes; gain −inf
  at the depth limit."""
  totals = jnp.sum(histograms[0], axis=1)  # every row is in one bin of feature 0
  gain, feature, bin_ = splits.best_gain_splits(settings, histograms, totals)
  return jnp.where(depth < depth_limit(settings), gain, -jnp.inf), feature, bin_, totals


def _split(settings: Settings, codes, edges, stats, s: dict) -> dict:
  """``_grow``'s state after splitting the leaf of the highest gain: its children's nodes,
  rows, histograms (the smaller's summed, the other's subtracted) and best splits."""
  sizes = splits.bucket_sizes(codes.shape[0])
  i = s["leaves"] - 1  # the split's number
  slot = jnp.argmax(s["gain"])
  parent, f, b = s["leaf_node"][slot], s["best_feature"][slot], s["best_bin"][slot]
  left = 2 * i + 1
  in_parent = s["row_node"] == parent
  right_side = codes[:, f] > b
  parent_histogram = s["histogram"][parent]
  left_count = jnp.sum(jnp.where(jnp.arange(settings.bins) <= b, parent_histogram[f, :, 2], 0))
  total = jnp.sum(parent_histogram[0, :, 2])
  small_right = left_count > total - left_count
  which = jnp.sum(jnp.asarray(sizes) >= jnp.minimum(left_count, total - left_count)) - 1
  small = jax.lax.switch(  # in the smallest bucket that holds the smaller child's rows
      which, [functools.partial(splits.gathered, settings.bins, codes, stats, size)
              for size in sizes],
      in_parent & (right_side == small_right))
  big = parent_histogram - small
  children = jnp.stack([jnp.where(small_right, big, small), jnp.where(small_right, small, big)])
  depth = s["depth"][parent] + 1
  gain, feature, bin_, totals = _best(settings, jnp.moveaxis(children, 0, 1), depth)
  new = s["leaves"]  # the right child's leaf slot
  pair = lambda a, values: a.at[slot].set(values[0]).at[new].set(values[1])  # noqa: E731
  return dict(
      leaves=s["leaves"] + 1,
      histogram=jax.lax.dynamic_update_slice_in_dim(s["histogram"], children, left, axis=0),
      gain=pair(s["gain"], gain), best_feature=pair(s["best_feature"], feature),
      best_bin=pair(s["best_bin"], bin_), leaf_node=pair(s["leaf_node"], (left, left + 1)),
      depth=s["depth"].at[left].set(depth).at[left + 1].set(depth),
      row_node=jnp.where(in_parent, left + right_side, s["row_node"]),
      feature=s["feature"].at[parent].set(f),
      threshold=s["threshold"].at[parent].set(edges[f, jnp.minimum(b, edges.shape[1] - 1)]),
      split=s["split"].at[parent].set(True), child=s["child"].at[parent].set(left),
      value=s["value"].at[left].set(_weight(settings, totals[0])).at[left + 1].set(
          _weight(settings, totals[1])))


def _grow(settings: Settings, codes, edges, g, h, root):
  """One Newton tree on (g, h), leaf by leaf: its node arrays and each training row's leaf
  value. ``root`` (D, bins, 3): the root's histogram (one sum over the rows serves every
  class's tree). Nodes are numbered as they are made: the i-th split makes 2i + 1 and 2i + 2;
  each node's histogram has its own slot, so that a split writes its children's in one slice.
  """
  n, d = codes.shape
  leaves, nodes = settings.max_leaves, num_nodes(settings)
  stats = jnp.stack([g, h, jnp.ones_like(g)], axis=1)
  gain, feature, bin_, totals = _best(settings, root[:, None], 0)
  s = dict(
      leaves=jnp.int32(1),
      histogram=jnp.zeros((nodes, d, settings.bins, 3)).at[0].set(root),
      gain=jnp.full(leaves, -jnp.inf).at[0].set(gain[0]),  # of each leaf slot's best split
      best_feature=jnp.zeros(leaves, jnp.int32).at[0].set(feature[0]),
      best_bin=jnp.zeros(leaves, jnp.int32).at[0].set(bin_[0]),
      leaf_node=jnp.zeros(leaves, jnp.int32),  # the node in each leaf slot
      depth=jnp.zeros(nodes, jnp.int32), row_node=jnp.zeros(n, jnp.int32),
      feature=jnp.zeros(nodes, jnp.int32), threshold=jnp.full(nodes, jnp.inf, jnp.float32),
      split=jnp.zeros(nodes, bool), child=jnp.zeros(nodes, jnp.int32),
      value=jnp.zeros(nodes, jnp.float32).at[0].set(_weight(settings, totals[0])))
  s = jax.lax.while_loop(lambda s: (s["leaves"] < leaves) & (jnp.max(s["gain"]) > 0),
                         functools.partial(_split, settings, codes, edges, stats), s)
  nodes_grown = {name: s[name] for name in ("feature", "threshold", "split", "child", "value")}
  return nodes_grown, s["value"][s["row_node"]]


def _leaf_values(nodes, x, depth: int):
  """(N,) the value of each row's leaf in one tree (``nodes``: its arrays by name)."""
  return nodes["value"][tree.walk(nodes["feature"], nodes["threshold"], nodes["split"],
                                  nodes["child"], x, depth)]


def _gradients(settings: Settings, raw, y):
  """(g, h), each (N, K): the loss's first and second derivatives in the raw scores."""
  if settings.num_classes:
    p = jax.nn.softmax(raw, axis=1)
    return p - jax.nn.one_hot(y, settings.num_classes), p * (1 - p)
  return raw - y[:, None], jnp.ones_like(raw)


def _score(settings: Settings, raw, y):
  """Accuracy, or −mean squared error."""
  if settings.num_classes:
    return jnp.mean(jnp.argmax(raw, axis=1) == y)
  return -jnp.mean((raw[:, 0] - y) ** 2)


def stops(scores, m, patience: int, tol) -> jax.Array:
  """Whether training stops after round m: none of the scores after rounds m − patience + 1
  … m beats round m − patience's by more than tol (``scores[j]``: after round j, 0 before any)."""
  rounds = jnp.arange(scores.shape[0])
  reference = scores[jnp.maximum(m - patience, 0)] + tol
  later = (rounds > m - patience) & (rounds <= m)
  return (m >= patience) & ~jnp.any(later & (scores > reference))


def fit(settings: Settings, x, y, key) -> Params:
  """The boosted trees of ``settings`` on (x (N, D), y) (module docstring)."""
  x = jnp.asarray(x, jnp.float32)
  if not settings.num_classes:
    y = y.astype(jnp.float32)
  n_val = validation_size(settings, x.shape[0])
  order = jax.random.permutation(key, x.shape[0])
  x_val, y_val = x[order[:n_val]], y[order[:n_val]]
  x, y = x[order[n_val:]], y[order[n_val:]]
  edges = binning.thresholds(x, settings.bins)
  codes = binning.binned(edges, x)
  k = trees_per_round(settings)
  if settings.num_classes:
    frequency = jnp.mean(jax.nn.one_hot(y, k), axis=0)
    baseline = jnp.log(jnp.clip(frequency, 1e-7, 1 - 1e-7))
  else:
    baseline = jnp.mean(y)[None]
  rounds, nodes = settings.num_rounds, num_nodes(settings)
  raw = jnp.broadcast_to(baseline, (x.shape[0], k))
  raw_val = jnp.broadcast_to(baseline, (n_val, k))
  scores = jnp.full(rounds + 1, jnp.nan).at[0].set(_score(settings, raw_val, y_val))
  empty = lambda dtype, fill=0: jnp.full((rounds, k, nodes), fill, dtype)  # noqa: E731
  trees = dict(feature=empty(jnp.int32), threshold=empty(jnp.float32, jnp.inf),
               split=empty(bool), child=empty(jnp.int32), value=empty(jnp.float32))

  def one_round(state):
    m, raw, raw_val, scores, trees = state
    g, h = _gradients(settings, raw, y)
    both = splits.histograms(codes, jnp.concatenate([g, h, jnp.ones_like(g[:, :1])], axis=1),
                       jnp.zeros(len(g), jnp.int32), 1, settings.bins)
    roots = jnp.stack([both[:, 0, :, :k], both[:, 0, :, k:2 * k],
                       jnp.broadcast_to(both[:, 0, :, -1:], both.shape[::2] + (k,))], axis=-1)
    grown, fitted = jax.lax.map(lambda args: _grow(settings, codes, edges, *args),
                                (g.T, h.T, jnp.moveaxis(roots, 2, 0)))
    trees = {name: trees[name].at[m].set(grown[name]) for name in trees}
    raw = raw + fitted.T
    depth = depth_limit(settings)
    raw_val = raw_val + jax.vmap(lambda t: _leaf_values(t, x_val, depth), out_axes=1)(grown)
    scores = scores.at[m + 1].set(_score(settings, raw_val, y_val))
    return m + 1, raw, raw_val, scores, trees

  def going(state):
    m, _, _, scores, _ = state
    return (m < rounds) & ~stops(scores, m, settings.patience, settings.tol) if n_val else (
        m < rounds)

  m, raw, raw_val, scores, trees = jax.lax.while_loop(
      going, one_round, (jnp.int32(0), raw, raw_val, scores, trees))
  return Params(settings, baseline, rounds=m, validation_scores=scores, **trees)


def raw_scores(params: Params, x) -> jax.Array:
  """(N, K) F(x): the baseline plus every trained round's trees."""
  x = jnp.asarray(x, jnp.float32)
  settings = params.settings
  trees = {name: getattr(params, name) for name in ("feature", "threshold", "split", "child",
                                                    "value")}

  def one_round(raw, round_trees_and_index):
    round_trees, m = round_trees_and_index
    values = jax.vmap(lambda t: _leaf_values(t, x, depth_limit(settings)), out_axes=1)(
        round_trees)
    return raw + jnp.where(m < params.rounds, values, 0.0), None

  start = jnp.broadcast_to(params.baseline, (x.shape[0], trees_per_round(settings)))
  raw, _ = jax.lax.scan(one_round, start, (trees, jnp.arange(settings.num_rounds)))
  return raw


def predict(params: Params, x) -> jax.Array:
  """The class of the highest raw score (ties to the lowest), or F(x)."""
  raw = raw_scores(params, x)
  if params.settings.num_classes:
    return jnp.argmax(raw, axis=1).astype(jnp.int32)
  return raw[:, 0]


def check(settings: Settings, num_samples: int) -> None:
  """ValueError (one line) for settings no boosting can take."""
  if settings.num_rounds < 1:
    raise ValueError(f"num_rounds must be 1 or more, got {settings.num_rounds}")
  if not 2 <= settings.max_leaves <= 4096:
    raise ValueError(f"max_leaves must be in [2, 4096], got {settings.max_leaves}")
  if not 0 <= settings.max_depth <= 64:
    raise ValueError(f"max_depth must be in [0, 64] (0: no limit), got {settings.max_depth}")
  if not 0 <= settings.validation_fraction < 1:
    raise ValueError(f"validation_fraction must be in [0, 1), got {settings.validation_fraction}")
  if (settings.patience and num_samples > EARLY_STOPPING_ROWS
      and validation_size(settings, num_samples) < 1):
    raise ValueError("early stopping (patience > 0) needs validation_fraction > 0")
  if num_samples - validation_size(settings, num_samples) < 2 * settings.min_samples_leaf:
    raise ValueError(f"{num_samples} rows leave too few to split with min_samples_leaf="
                     f"{settings.min_samples_leaf:g}")
