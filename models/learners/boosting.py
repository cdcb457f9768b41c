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

A tree grows level by level: at each level the nodes whose best split gains
more than 0, each child keeping ``min_samples_leaf`` rows and a Hessian of
``min_hessian``, split in order of gain while the tree has fewer than
``max_leaves`` leaves, ``max_depth`` levels at most. (scikit-learn's
HistGradientBoosting and LightGBM grow leaf by leaf, best gain first, to
the same leaf budget.) A level's histograms: the smaller child of each
split summed from its own rows (at most N/2 rows over the level, gathered
into N/2 slots), its sibling as the parent's histogram minus it. Each
feature's histogram is summed on its own (``lax.map``), so that the sums
stay in cache.

Early stopping, on more than 10 000 rows (scikit-learn's "auto"): a
``validation_fraction`` of the rows, drawn at random, is held out and scored
after every round (accuracy, or −mean squared error);
training stops when none of the last ``patience`` rounds beats the score
``patience`` rounds before by more than ``tol`` (scikit-learn's rule).

Memory: a level's histograms, D · max_leaves · bins · 3 float32s, twice
(the parents' and the children's; 77 MB each on MNIST); the trees,
num_rounds · K · Σ_l min(2^l, max_leaves) nodes of 5 numbers.
"""

import math

import flax.struct
import jax
import jax.numpy as jnp

from models.learners import binning

COPIES = 8  # partial histograms per feature (``_histograms``)
EARLY_STOPPING_ROWS = 10_000  # early stopping on more rows than this (scikit-learn's "auto")


@flax.struct.dataclass
class Settings:
  num_rounds: int = flax.struct.field(pytree_node=False, default=100)
  learning_rate: float = 0.1
  max_leaves: int = flax.struct.field(pytree_node=False, default=31)
  max_depth: int = flax.struct.field(pytree_node=False, default=12)
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


def _histograms(codes, stats, slot, slots: int, bins: int) -> jax.Array:
  """(D, slots, bins, S): Σ stats (N, S) over the rows of each (feature, slot, bin); rows with
  slot ``slots`` dropped. Row i adds into copy i mod COPIES, the copies summed after:
  consecutive rows in one bin then seldom wait on each other's sums (3x faster on MNIST)."""
  copies = COPIES
  lane = (jnp.arange(codes.shape[0]) % copies) * ((slots + 1) * bins)

  def one(column):
    sums = jax.ops.segment_sum(stats, lane + slot * bins + column.astype(jnp.int32),
                               copies * (slots + 1) * bins)
    return sums.reshape(copies, slots + 1, bins, -1)[:, :slots].sum(axis=0)

  return jax.lax.map(one, codes.T)


def _best_splits(settings: Settings, histogram, totals):
  """Each node's (gain, feature, bin) of its best split (module docstring); gain −inf where
  none is allowed. ``histogram`` (D, W, B, 3) of (g, h, count); ``totals`` (W, 3)."""
  left = jnp.cumsum(histogram, axis=2)
  right = totals[None, :, None, :] - left
  score = lambda s: s[..., 0] ** 2 / jnp.maximum(s[..., 1] + settings.l2, 1e-30)  # noqa: E731
  gain = score(left) + score(right) - score(totals)[None, :, None]
  ok = ((left[..., 2] >= settings.min_samples_leaf) & (right[..., 2] >= settings.min_samples_leaf)
        & (left[..., 1] >= settings.min_hessian) & (right[..., 1] >= settings.min_hessian))
  gain = jnp.where(ok, gain, -jnp.inf)
  d, w, b = gain.shape
  flat = jnp.moveaxis(gain, 1, 0).reshape(w, d * b)  # feature-major: the lowest feature first
  best = jnp.argmax(flat, axis=1)
  return flat[jnp.arange(w), best], best // b, best % b


def level_widths(settings: Settings) -> list[int]:
  """W_l = min(2^l, max_leaves): the node slots of each level l = 0 … max_depth."""
  return [min(2**level, settings.max_leaves) for level in range(settings.max_depth + 1)]


def num_nodes(settings: Settings) -> int:
  return sum(level_widths(settings))


def _grow(settings: Settings, codes, edges, g, h, root):
  """One Newton tree on (g, h): its node arrays and each training row's leaf value. ``root``
  (D, 1, bins, 3): the root's histogram (one sum over the rows serves every class's tree).

  The levels narrower than max_leaves are unrolled, each at its own width; the rest are one
  ``while_loop`` at width max_leaves, until a level splits no node.
  """
  n, d = codes.shape
  widths = level_widths(settings)
  starts = [sum(widths[:level]) for level in range(len(widths))]
  nodes = sum(widths)
  stats = jnp.stack([g, h, jnp.ones_like(g)], axis=1)
  half = n // 2

  def weight(totals):
    return -settings.learning_rate * totals[..., 0] / jnp.maximum(totals[..., 1] + settings.l2,
                                                                  1e-30)

  def level_step(level, first, width: int, next_width: int, s):
    """Splits the level's nodes (slots first … first + width − 1); the children's histograms."""
    totals = jnp.sum(s["histogram"][0], axis=1)  # (width, 3): each row is in one bin of feature 0
    value = jax.lax.dynamic_update_slice_in_dim(s["value"], weight(totals), first, axis=0)
    gain, best_feature, best_bin = _best_splits(settings, s["histogram"], totals)
    candidate = (gain > 0) & (totals[:, 2] > 0) & (next_width > 0)
    order = jnp.argsort(jnp.where(candidate, -gain, jnp.inf))  # best gain first (stable)
    by_gain = jnp.zeros(width, jnp.int32).at[order].set(jnp.arange(width))
    splits = candidate & (by_gain < settings.max_leaves - s["leaves"])
    rank = jnp.cumsum(splits) - 1  # children 2·rank, 2·rank + 1 of the next level
    ids = first + jnp.arange(width)
    out = dict(s, value=value, grows=jnp.any(splits), leaves=s["leaves"] + jnp.sum(splits),
               feature=s["feature"].at[ids].set(jnp.where(splits, best_feature, 0)),
               threshold=s["threshold"].at[ids].set(jnp.where(
                   splits, edges[best_feature, jnp.minimum(best_bin, edges.shape[1] - 1)],
                   jnp.inf)),
               split=s["split"].at[ids].set(splits),
               child=s["child"].at[ids].set(jnp.where(splits, first + width + 2 * rank, 0)))
    if not next_width:
      return out
    local = s["local"]  # the rows move
    row_slot = jnp.minimum(local, width - 1)
    moving = (local < width) & splits[row_slot]
    right = codes[jnp.arange(n), best_feature[row_slot]] > best_bin[row_slot]
    out["local"] = jnp.where(moving, 2 * rank[row_slot] + right, next_width)
    out["node"] = jnp.where(moving, first + width + out["local"], s["node"])
    # the children's histograms: the smaller from its rows, the other by subtraction
    parents = next_width // 2
    left_count = jnp.cumsum(s["histogram"][best_feature, jnp.arange(width), :, 2], axis=1)[
        jnp.arange(width), best_bin]
    small_right = left_count > totals[:, 2] - left_count  # (width,) the smaller child's side
    rows = jnp.nonzero(moving & (right == small_right[row_slot]), size=half, fill_value=n)[0]
    small_slot = jnp.where(rows < n, rank[row_slot][jnp.minimum(rows, n - 1)], parents)
    rows = jnp.minimum(rows, n - 1)
    small = _histograms(codes[rows], stats[rows], small_slot, parents, settings.bins)
    parent_of_rank = jnp.zeros(parents, jnp.int32).at[jnp.where(splits, rank, parents)].set(
        jnp.arange(width), mode="drop")
    slot = jnp.arange(next_width)
    r = jnp.minimum(slot // 2, parents - 1)
    is_small = (slot % 2 == 1) == small_right[parent_of_rank[r]]
    sibling = s["histogram"][:, parent_of_rank[r]] - small[:, r]
    used = slot < 2 * jnp.sum(splits)
    out["histogram"] = jnp.where(used[None, :, None, None], jnp.where(
        is_small[None, :, None, None], small[:, r], sibling), 0.0)
    return out

  s = dict(grows=jnp.bool_(True), leaves=jnp.int32(1),
           histogram=root,
           local=jnp.zeros(n, jnp.int32),  # each row's slot in its level; the level's width: none
           node=jnp.zeros(n, jnp.int32),  # each row's node
           feature=jnp.zeros(nodes, jnp.int32), threshold=jnp.full(nodes, jnp.inf, jnp.float32),
           split=jnp.zeros(nodes, bool), child=jnp.zeros(nodes, jnp.int32),
           value=jnp.zeros(nodes, jnp.float32))
  last = settings.max_depth
  steady = next((level for level in range(last + 1) if widths[level] == widths[last]), last)
  for level in range(steady):
    next_width = widths[level + 1]

    def step(s, level=level, next_width=next_width):
      return level_step(level, starts[level], widths[level], next_width, s)

    def skip(s, next_width=next_width):
      return dict(s, local=jnp.full(n, next_width, jnp.int32),
                  histogram=jnp.zeros((d, next_width) + s["histogram"].shape[2:]))

    s = jax.lax.cond(s["grows"], step, skip, s)
  width = widths[last]

  def loop_step(carry):
    level, s = carry
    return level + 1, level_step(level, starts[steady] + (level - steady) * width, width, width, s)

  level, s = jax.lax.while_loop(lambda c: c[1]["grows"] & (c[0] < last), loop_step,
                                (jnp.int32(steady), s))
  s = jax.lax.cond(s["grows"], lambda s: level_step(last, starts[last], width, 0, s),
                   lambda s: s, s)
  tree = {name: s[name] for name in ("feature", "threshold", "split", "child", "value")}
  return tree, s["value"][s["node"]]


def _leaf_values(tree, x, depth: int):
  """(N,) the value of each row's leaf in one tree."""
  node = jnp.zeros(x.shape[0], jnp.int32)
  for _ in range(depth):
    go_right = x[jnp.arange(x.shape[0]), tree["feature"][node]] > tree["threshold"][node]
    node = jnp.where(tree["split"][node], tree["child"][node] + go_right, node)
  return tree["value"][node]


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
    both = _histograms(codes, jnp.concatenate([g, h, jnp.ones_like(g[:, :1])], axis=1),
                       jnp.zeros(len(g), jnp.int32), 1, settings.bins)
    roots = jnp.stack([both[..., :k], both[..., k:2 * k],
                       jnp.broadcast_to(both[..., -1:], both.shape[:3] + (k,))], axis=-1)
    grown, fitted = jax.lax.map(lambda args: _grow(settings, codes, edges, *args),
                                (g.T, h.T, jnp.moveaxis(roots, 3, 0)))
    trees = {name: trees[name].at[m].set(grown[name]) for name in trees}
    raw = raw + fitted.T
    depth = settings.max_depth
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
    values = jax.vmap(lambda t: _leaf_values(t, x, settings.max_depth), out_axes=1)(round_trees)
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
  if not 1 <= settings.max_depth <= 64:
    raise ValueError(f"max_depth must be in [1, 64], got {settings.max_depth}")
  if not 0 <= settings.validation_fraction < 1:
    raise ValueError(f"validation_fraction must be in [0, 1), got {settings.validation_fraction}")
  if (settings.patience and num_samples > EARLY_STOPPING_ROWS
      and validation_size(settings, num_samples) < 1):
    raise ValueError("early stopping (patience > 0) needs validation_fraction > 0")
  if num_samples - validation_size(settings, num_samples) < 2 * settings.min_samples_leaf:
    raise ValueError(f"{num_samples} rows leave too few to split with min_samples_leaf="
                     f"{settings.min_samples_leaf:g}")
