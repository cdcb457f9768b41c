"""A decision tree (CART), grown level by level on histograms of binned features.

Binning (``binning.py``): each feature's bin edges are the midpoints of its
distinct training values (of its quantiles beyond ``bins`` of them), so on
MNIST's pixels 256 bins hold every split scikit-learn's exact search could
make. A split chosen on the bins then takes scikit-learn's threshold: halfway
between the node's largest value that goes left and smallest that goes right.

Growth: the nodes are arrays, a level's after the previous level's: level l
has W_l = min(2^l, width, N) slots (``width`` 0: 2^max_depth, a complete tree), and
a node that splits takes the next two free slots of the level below (its
``child`` and child + 1), in order; where a level's slots run out, the nodes
that would split past them stay leaves (``unsplit`` counts them). At each level every node's
statistics per (feature, bin) are summed in one histogram (class weights for
classification; weight, Σwy and Σwy² for regression) and each node takes the
split that minimises its children's impurity (Gini, entropy or squared error;
the formulas, the ties and ``min_samples_leaf`` in ``splits.py``). A pure node,
or one no split can divide, is a leaf. ``max_features`` draws, at each node,
the features it may split on (a forest's randomness).

Memory: the level's histogram holds nodes × features × bins × K float32s
(K the classes, or 3), built ``chunk`` features at a time so that a chunk,
with the running sums and scores made from it (5 × nodes × chunk × bins × K
× 4 bytes) or the (N, chunk) indices that fill it, holds at most
``memory_bytes``; the node arrays Σ_l W_l (4 + K) numbers.

Prediction walks the node arrays from the root, one level per step: class
weights (the most probable class; ties to the lowest) or the mean target.
"""

import functools

import flax.struct
import jax
import jax.numpy as jnp

from models.learners import binning
from models.learners import splits

EPSILON = 1e-7  # an impurity at or below it is pure
MAX_DEPTH = 64
MAX_NODES = 2**21  # node slots: a complete tree of depth 20


@flax.struct.dataclass
class Settings:
  # gini or entropy (classification), squared_error (regression); "": gini or squared_error
  criterion: str = flax.struct.field(pytree_node=False, default="")
  max_depth: int = flax.struct.field(pytree_node=False, default=10)
  min_samples_leaf: float = 1.0
  max_features: int = flax.struct.field(pytree_node=False, default=0)  # 0: all
  width: int = flax.struct.field(pytree_node=False, default=0)  # a level's most nodes; 0: 2^max_depth
  bins: int = flax.struct.field(pytree_node=False, default=256)
  memory_bytes: int = flax.struct.field(pytree_node=False, default=256 * 2**20)  # per chunk
  num_classes: int = flax.struct.field(pytree_node=False, default=0)  # 0: regression


@flax.struct.dataclass
class Params:
  settings: Settings
  feature: jax.Array  # (nodes,) int32 the feature a node tests
  threshold: jax.Array  # (nodes,) float32: left when x[feature] ≤ threshold
  split: jax.Array  # (nodes,) bool: whether the node splits (else a leaf, or no node)
  child: jax.Array  # (nodes,) int32 the left child's slot; the right child's is the next
  value: jax.Array  # (nodes, K) class weights, or (weight, Σwy, Σwy²)
  importance: jax.Array  # (D,) the impurity decrease of each feature's splits, weighted
  offset: jax.Array  # regression: the weighted mean target the values are centred on
  unsplit: jax.Array  # the nodes left leaves because their level had no free slots


def level_widths(settings: Settings, num_samples: int = 2**62) -> list[int]:
  """W_l, the slots of each level l = 0 … max_depth (module docstring); no level holds more
  nodes than there are samples."""
  width = min(settings.width or 2**settings.max_depth, num_samples)
  return [min(2**level, width) for level in range(settings.max_depth + 1)]


def num_nodes(settings: Settings, num_samples: int = 2**62) -> int:
  return sum(level_widths(settings, num_samples))


@flax.struct.dataclass
class _Grown:
  """The node arrays while a tree grows (``Params``'s), and each sample's node."""
  feature: jax.Array
  threshold: jax.Array
  split: jax.Array
  child: jax.Array
  value: jax.Array
  importance: jax.Array
  unsplit: jax.Array
  node: jax.Array


def _stats(settings: Settings, y, weight) -> jax.Array:
  """(N, K): class weights (one-hot · w), or (w, wy, wy²) of y centred on its weighted mean."""
  if settings.num_classes:
    return jax.nn.one_hot(y, settings.num_classes) * weight[:, None]
  return jnp.stack([weight, weight * y, weight * y * y], axis=1)


def _midpoints(values, moves, right, local, level_nodes) -> jax.Array:
  """Each split's threshold: halfway between the largest value of the node's samples that go
  left and the smallest that goes right (scikit-learn's; the lower one where the halfway
  point rounds up to the higher)."""
  low = jax.ops.segment_max(jnp.where(moves & ~right, values, -jnp.inf), local, level_nodes + 1)
  high = jax.ops.segment_min(jnp.where(moves & right, values, jnp.inf), local, level_nodes + 1)
  low, high = low[:level_nodes], high[:level_nodes]
  middle = low / 2 + high / 2
  return jnp.where(middle >= high, low, middle)


def fit(settings: Settings, x, y, key=None, weight=None) -> Params:
  """The tree of ``settings`` on (x (N, D), y); ``weight`` (N,) the samples' counts (1)."""
  x = jnp.asarray(x, jnp.float32)
  edges = binning.thresholds(x, settings.bins)
  return grow(settings, x, binning.binned(edges, x), y, key, weight)


def _level(settings: Settings, x, codes, stats, key, level, first, level_nodes: int,
           next_width: int, grown: _Grown) -> _Grown:
  """Splits level ``level``'s nodes (slots first … first + level_nodes − 1) into the next
  level's ``next_width`` slots (0: the last level, whose nodes only take their values)."""
  n, d = x.shape
  local = grown.node - first  # in [0, level_nodes) for the samples still descending
  inside = (local >= 0) & (local < level_nodes)
  local = jnp.where(inside, local, level_nodes)
  totals = jax.ops.segment_sum(stats, local, level_nodes + 1)[:level_nodes]
  value = jax.lax.dynamic_update_slice_in_dim(grown.value, totals, first, axis=0)
  if not next_width:
    return grown.replace(value=value)
  parent = splits.impurity_sum(settings, totals)
  counts = splits.count(settings, totals)
  if settings.num_classes:
    pure = jnp.max(totals, axis=1) >= counts
  else:
    pure = parent <= EPSILON * jnp.maximum(totals[:, 2], 1e-30)
  chosen = None
  if settings.max_features and settings.max_features < d:  # a draw without replacement
    draws = jax.random.uniform(jax.random.fold_in(key, level), (level_nodes, d))
    chosen = jnp.sort(jax.lax.top_k(draws, settings.max_features)[1], axis=1)
  score, best_feature, best_bin = splits.best_impurity_splits(settings, codes, stats, local,
                                                               totals, chosen, level_nodes)
  grows = ~pure & (counts > 0) & jnp.isfinite(score)
  rank = jnp.cumsum(grows) - 1  # the splitting nodes' order: their children's slots
  fits = grows & (2 * rank + 1 < next_width)
  ids = first + jnp.arange(level_nodes)
  feature = grown.feature.at[ids].set(jnp.where(fits, best_feature, 0))
  split = grown.split.at[ids].set(fits)
  child = grown.child.at[ids].set(jnp.where(fits, first + level_nodes + 2 * rank, 0))
  node = grown.node
  right = codes[jnp.arange(n), feature[node]].astype(jnp.int32) > best_bin[
      jnp.minimum(local, level_nodes - 1)]
  moves = inside & split[node]
  threshold = grown.threshold.at[ids].set(jnp.where(fits, _midpoints(
      x[jnp.arange(n), feature[node]], moves, right, local, level_nodes), jnp.inf))
  return _Grown(feature, threshold, split, child, value,
                grown.importance.at[best_feature].add(jnp.where(fits, parent - score, 0.0)),
                grown.unsplit + jnp.sum(grows & ~fits),
                jnp.where(moves, child[node] + right, node))


def grow(settings: Settings, x, codes, y, key=None, weight=None) -> Params:
  """``fit`` on features already binned: ``codes`` (N, D) their bins (a forest bins once).

  The levels of equal width past the first full one are one ``fori_loop``: compiled once.
  """
  n, d = x.shape
  key = jax.random.key(0) if key is None else key
  weight = jnp.ones(n, jnp.float32) if weight is None else weight.astype(jnp.float32)
  offset = jnp.float32(0.0)
  if not settings.num_classes:  # centred: Σwy² − (Σwy)²/N then loses less to rounding
    y = y.astype(jnp.float32)
    offset = jnp.sum(weight * y) / jnp.sum(weight)
    y = y - offset
  stats = _stats(settings, y, weight)
  k = stats.shape[1]
  widths = level_widths(settings, n)
  starts = [sum(widths[:level]) for level in range(len(widths))]
  nodes = sum(widths)
  grown = _Grown(feature=jnp.zeros(nodes, jnp.int32),
                 threshold=jnp.full(nodes, jnp.inf, jnp.float32), split=jnp.zeros(nodes, bool),
                 child=jnp.zeros(nodes, jnp.int32), value=jnp.zeros((nodes, k), jnp.float32),
                 importance=jnp.zeros(d, jnp.float32), unsplit=jnp.int32(0),
                 node=jnp.zeros(n, jnp.int32))

  last = settings.max_depth
  steady = next((level for level in range(last) if widths[level] == widths[last]), last)
  step = functools.partial(_level, settings, x, codes, stats, key)
  for level in range(steady):
    grown = step(level, starts[level], widths[level], widths[level + 1], grown)
  width = widths[last]
  grown = jax.lax.fori_loop(steady, last, lambda level, grown: step(
      level, starts[steady] + (level - steady) * width, width, width, grown), grown)
  grown = step(last, starts[last], width, 0, grown)
  total = jnp.sum(grown.importance)
  importance = jnp.where(total > 0, grown.importance / jnp.maximum(total, 1e-30), grown.importance)
  return Params(settings, grown.feature, grown.threshold, grown.split, grown.child, grown.value,
                importance, offset, grown.unsplit)


def walk(feature, threshold, split, child, x, depth: int) -> jax.Array:
  """(N,) the node each row of x ends in, ``depth`` steps from the root of node arrays (a
  split node's rows go to child when x[feature] ≤ threshold, else child + 1)."""
  node = jnp.zeros(x.shape[0], jnp.int32)
  for _ in range(depth):
    go_right = x[jnp.arange(x.shape[0]), feature[node]] > threshold[node]
    node = jnp.where(split[node], child[node] + go_right, node)
  return node


def leaves(params: Params, x) -> jax.Array:
  """(N,) the node each row of x ends in."""
  return walk(params.feature, params.threshold, params.split, params.child,
              jnp.asarray(x, jnp.float32), params.settings.max_depth)


def predict_values(params: Params, x) -> jax.Array:
  """(N, C) class probabilities, or (N,) the mean target of each row's leaf."""
  value = params.value[leaves(params, x)]
  if params.settings.num_classes:
    return value / jnp.maximum(jnp.sum(value, axis=1, keepdims=True), 1e-30)
  return value[:, 1] / jnp.maximum(value[:, 0], 1e-30) + params.offset


def predict(params: Params, x) -> jax.Array:
  """The most probable class (ties to the lowest), or the mean target."""
  values = predict_values(params, x)
  if params.settings.num_classes:
    return jnp.argmax(values, axis=1).astype(jnp.int32)
  return values


def describe(params: Params, feature_names=None, decimals: int = 4) -> str:
  """The tree as text, as scikit-learn's export_text prints it."""
  import numpy as np
  feature, threshold = np.asarray(params.feature), np.asarray(params.threshold)
  split, value, child = np.asarray(params.split), np.asarray(params.value), np.asarray(params.child)
  names = feature_names or [f"feature_{i}" for i in range(int(feature.max()) + 1)]
  lines = []

  def leaf(i):
    v = value[i]
    if params.settings.num_classes:
      return f"class: {int(np.argmax(v))}"
    return f"value: [{v[1] / max(v[0], 1e-30) + float(params.offset):.{decimals}f}]"

  def walk(i, depth):
    indent = "|   " * depth + "|--- "
    if not split[i]:
      lines.append(indent + leaf(i))
      return
    name, t = names[feature[i]], threshold[i]
    lines.append(f"{indent}{name} <= {t:.{decimals}f}")
    walk(child[i], depth + 1)
    lines.append(f"{indent}{name} >  {t:.{decimals}f}")
    walk(child[i] + 1, depth + 1)

  walk(0, 0)
  return "\n".join(lines) + "\n"


def check(settings: Settings, num_features: int) -> None:
  """ValueError (one line) for settings no tree can take."""
  if splits.criterion(settings) not in (("gini", "entropy") if settings.num_classes else
                                 ("squared_error",)):
    raise ValueError(f"criterion {settings.criterion!r} does not fit "
                     f"{'classification' if settings.num_classes else 'regression'}")
  if not 1 <= settings.max_depth <= MAX_DEPTH:
    raise ValueError(f"max_depth must be in [1, {MAX_DEPTH}], got {settings.max_depth}")
  if settings.width < 0:
    raise ValueError(f"width must be 0 (a complete tree) or more, got {settings.width}")
  if num_nodes(settings) > MAX_NODES:
    raise ValueError(f"max_depth={settings.max_depth} with width={settings.width} makes "
                     f"{num_nodes(settings)} node slots, more than {MAX_NODES}: lower either")
  if not 0 <= settings.max_features <= num_features:
    raise ValueError(f"max_features must be in [0, {num_features}], got {settings.max_features}")
  if not 2 <= settings.bins <= 256:
    raise ValueError(f"bins must be in [2, 256], got {settings.bins}")
