"""The best split of each node, found on histograms of its rows' binned features.

A node's histogram sums its rows' statistics per (feature, bin); the running
sums over the bins (``binning.cumulative``) give the left side of every split
"bin ≤ b", the node's total minus it the right. Two scores choose among them:
    CART (``tree.py``, ``forest.py``), the children's impurity, lowest best:
      Gini:          Σ_children N_c (1 − Σ_k p_ck²),
      entropy:       Σ_children −N_c Σ_k p_ck log p_ck,
      squared error: Σ_children Σ_{i∈c} (y_i − ȳ_c)²,
    Newton (``boosting.py``), the gain on (g, h) sums, highest best:
      G_L² / (H_L + λ) + G_R² / (H_R + λ) − G² / (H + λ),
among the splits that leave each child ``min_samples_leaf`` rows (and, for
Newton, a Hessian of ``min_hessian``); the lowest feature, then the lowest
bin, among equal scores. ``settings`` is the tree's or boosting's Settings.

A tree's level sums all its nodes' histograms in one pass, a chunk of
features at a time; boosting sums one node's (the smaller child's) from its
rows gathered into the smallest of N/2, N/4, … rows that holds them.
"""

import jax
import jax.numpy as jnp

from models.learners import binning

COPIES = 8  # partial histograms per feature (``histograms``)
FLAT_ROWS = 4096  # up to these rows, a histogram is one sum over every (row, feature)
MIN_BUCKET = 512  # the fewest rows a smaller child's histogram is summed over


def count(settings, stats) -> jax.Array:
  """The weight of each set of statistics (…, K)."""
  return jnp.sum(stats, axis=-1) if settings.num_classes else stats[..., 0]


def criterion(settings) -> str:
  """The criterion, its default resolved: Gini for classification, squared error for regression."""
  return settings.criterion or ("gini" if settings.num_classes else "squared_error")


def impurity_sum(settings, stats) -> jax.Array:
  """N · impurity of each set of statistics (…, K) (module docstring)."""
  if not settings.num_classes:
    n, s, s2 = stats[..., 0], stats[..., 1], stats[..., 2]
    return s2 - jnp.where(n > 0, s * s / jnp.maximum(n, 1e-30), 0.0)
  n = count(settings, stats)
  if criterion(settings) == "entropy":
    plogp = jnp.where(stats > 0, stats * jnp.log(jnp.maximum(stats, 1e-30)), 0.0)
    return n * jnp.log(jnp.maximum(n, 1e-30)) - jnp.sum(plogp, axis=-1)
  return n - jnp.where(n > 0, jnp.sum(stats * stats, axis=-1) / jnp.maximum(n, 1e-30), 0.0)


def _chunk_size(settings, level_nodes: int, num_samples: int, num_features: int,
                k: int) -> int:
  """Features per histogram chunk, so that what a chunk holds stays within memory_bytes: its
  histogram of (nodes, chunk, bins, K) float32s with the running sums, the right sides and
  the scores made from it (5 such), or the (N, chunk) indices and weights that fill it."""
  per_feature = max(5 * level_nodes * settings.bins * k, 4 * num_samples) * 4
  return max(1, min(num_features, settings.memory_bytes // per_feature))


def level_histogram(settings, part, stats, local, level_nodes: int) -> jax.Array:
  """(level_nodes, chunk, bins, K): the samples' statistics summed per (node, feature, bin);
  ``part`` (N, chunk) the samples' bins of a chunk of features, ``local`` their nodes (samples
  of no node: level_nodes, dropped)."""
  chunk, k = part.shape[1], stats.shape[1]
  segments = level_nodes * chunk * settings.bins
  ids = (local[:, None] * chunk + jnp.arange(chunk)[None, :]) * settings.bins + part
  ids = jnp.where(local[:, None] < level_nodes, ids, segments)
  if settings.num_classes:  # one weight per sample: its class in the index
    labels = jnp.argmax(stats, axis=1)
    weight = jnp.sum(stats, axis=1)
    flat = jax.ops.segment_sum(jnp.broadcast_to(weight[:, None], ids.shape).ravel(),
                               (ids * k + labels[:, None]).ravel(), segments * k)
    return flat.reshape(level_nodes, chunk, settings.bins, k)
  values = jnp.broadcast_to(stats[:, None, :], ids.shape + (k,)).reshape(-1, k)
  return jax.ops.segment_sum(values, ids.ravel(), segments).reshape(
      level_nodes, chunk, settings.bins, k)


def impurity_scores(settings, histogram, totals) -> jax.Array:
  """(nodes, chunk, bins): the children's impurity of each split "bin ≤ b" (module
  docstring); +inf where a child would hold fewer than min_samples_leaf."""
  left = binning.cumulative(histogram, axis=2)  # x ≤ threshold of bin b
  right = totals[:, None, None, :] - left
  left_n = count(settings, left)
  right_n = count(settings, totals)[:, None, None] - left_n
  if settings.num_classes:
    score = impurity_sum(settings, left) + impurity_sum(settings, right)
  else:  # Σwy² is the node's whatever the split: only the means' terms, less rounding
    means = lambda t: jnp.where(t[..., 0] > 0, t[..., 1] ** 2 / jnp.maximum(t[..., 0], 1e-30),  # noqa: E731
                                0.0)
    score = totals[:, None, None, 2] - means(left) - means(right)
  ok = (left_n >= settings.min_samples_leaf) & (right_n >= settings.min_samples_leaf)
  return jnp.where(ok, score, jnp.inf)


def best_impurity_splits(settings, codes, stats, local, totals, chosen, level_nodes):
  """Each node's best (children's impurity, feature, bin) at one level (module docstring).

  ``local`` (N,) each sample's node among the level's (level_nodes where none);
  ``chosen`` (level_nodes, m) the features each node may split on, lowest first, or None: all.
  """
  n, d = codes.shape
  m = d if chosen is None else chosen.shape[1]
  k = stats.shape[1]
  chunk = _chunk_size(settings, level_nodes, n, m, k)
  chunks = -(-m // chunk)
  pad = chunks * chunk - m
  if chosen is None:
    codes = jnp.pad(codes, ((0, 0), (0, pad)))  # padded features: one bin, never a split
  else:
    chosen = jnp.pad(chosen, ((0, 0), (0, pad)), constant_values=-1)
    rows = chosen[jnp.minimum(local, level_nodes - 1)]  # (N, m + pad) each sample's node's

  def one_chunk(first):
    if chosen is None:
      part = jax.lax.dynamic_slice_in_dim(codes, first, chunk, axis=1).astype(jnp.int32)
      valid = first + jnp.arange(chunk) < d
      feature_of = lambda j: first + j  # noqa: E731
    else:
      which = jax.lax.dynamic_slice_in_dim(rows, first, chunk, axis=1)
      part = jnp.take_along_axis(codes, jnp.maximum(which, 0), axis=1).astype(jnp.int32)
      part = jnp.where(which >= 0, part, 0)
      columns = jax.lax.dynamic_slice_in_dim(chosen, first, chunk, axis=1)  # (L, chunk)
      valid = columns >= 0
      feature_of = lambda j: columns[jnp.arange(level_nodes), j]  # noqa: E731
    histogram = level_histogram(settings, part, stats, local, level_nodes)
    score = impurity_scores(settings, histogram, totals)
    ok = jnp.broadcast_to(valid, (level_nodes, chunk))[:, :, None]
    score = jnp.where(ok, score, jnp.inf).reshape(level_nodes, -1)
    best = jnp.argmin(score, axis=1)
    return (score[jnp.arange(level_nodes), best], feature_of(best // settings.bins),
            best % settings.bins)

  scores, features, bins = jax.lax.map(one_chunk, jnp.arange(chunks) * chunk)  # (chunks, L)
  which = jnp.argmin(scores, axis=0)  # the first chunk among equals: the lowest feature
  pick = lambda a: a[which, jnp.arange(level_nodes)]  # noqa: E731
  return pick(scores), pick(features), pick(bins)


def histograms(codes, stats, slot, slots: int, bins: int) -> jax.Array:
  """(D, slots, bins, S): Σ stats (N, S) over the rows of each (feature, slot, bin); rows with
  slot ``slots`` dropped. Up to FLAT_ROWS rows, one sum over every (row, feature); past
  them, each feature's sum on its own (``lax.map``: its sums stay in cache), row i adding
  into copy i mod COPIES, the copies summed after: consecutive rows in one bin then seldom
  wait on each other's sums (3x faster on MNIST's root)."""
  n, d = codes.shape
  if n <= FLAT_ROWS:
    ids = (jnp.arange(d)[None, :] * (slots + 1) + slot[:, None]) * bins + codes.astype(jnp.int32)
    sums = jax.ops.segment_sum(jnp.broadcast_to(stats[:, None, :], (n, d, stats.shape[1])).reshape(
        n * d, -1), ids.ravel(), d * (slots + 1) * bins)
    return sums.reshape(d, slots + 1, bins, -1)[:, :slots]
  lane = (jnp.arange(n) % COPIES) * ((slots + 1) * bins)

  def one(column):
    sums = jax.ops.segment_sum(stats, lane + slot * bins + column.astype(jnp.int32),
                               COPIES * (slots + 1) * bins)
    return sums.reshape(COPIES, slots + 1, bins, -1)[:, :slots].sum(axis=0)

  return jax.lax.map(one, codes.T)


def best_gain_splits(settings, histogram, totals):
  """Each node's (gain, feature, bin) of its best split (module docstring); gain −inf where
  none is allowed. ``histogram`` (D, W, B, 3) of (g, h, count); ``totals`` (W, 3)."""
  left = binning.cumulative(histogram, axis=2)
  right = totals[None, :, None, :] - left
  score = lambda s: s[..., 0] ** 2 / jnp.maximum(s[..., 1] + settings.l2, 1e-30)  # noqa: E731
  gain = score(left) + score(right) - score(totals)[None, :, None]
  ok = ((left[..., 2] >= settings.min_samples_leaf) & (right[..., 2] >= settings.min_samples_leaf)
        & (left[..., 1] >= settings.min_hessian) & (right[..., 1] >= settings.min_hessian))
  gain = jnp.where(ok, gain, -jnp.inf)
  best_bin = jnp.argmax(gain, axis=2)  # (D, W): each feature's best bin, the lowest among equals
  best_gain = jnp.max(gain, axis=2)
  best_feature = jnp.argmax(best_gain, axis=0)  # the lowest feature among equals
  nodes = jnp.arange(gain.shape[1])
  return best_gain[best_feature, nodes], best_feature, best_bin[best_feature, nodes]


def bucket_sizes(n: int) -> list[int]:
  """The row counts a smaller child is gathered into: N/2, N/4, … down to MIN_BUCKET."""
  sizes = [max(n // 2, 1)]
  while sizes[-1] // 2 >= MIN_BUCKET:
    sizes.append(sizes[-1] // 2)
  return sizes


def gathered(bins: int, codes, stats, size: int, rows_mask) -> jax.Array:
  """(D, bins, 3): the histogram of the rows of ``rows_mask``, gathered into ``size`` slots."""
  n = codes.shape[0]
  rows = jnp.nonzero(rows_mask, size=size, fill_value=n)[0]
  slot = (rows == n).astype(jnp.int32)  # the padding: slot 1, dropped
  rows = jnp.minimum(rows, n - 1)
  return histograms(codes[rows], stats[rows], slot, 1, bins)[:, 0]
