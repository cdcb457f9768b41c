r"""A grid of a learner's settings as one compiled program, against the same fits one by one.

    python -m scripts.learner_grid --dataset=mnist --train_size=10000 --archive_dir=../shared/data

Three grids, each timed both ways in the same run (compiling apart, every
program compiled ahead of time): k-NN with k ∈ {1, 3, 5, 7, 9} (one search
for the 9 nearest, five votes, against five searches), logistic regression
with 8 values of C (``vmap`` over C, against 8 fits), and k-means's 10
restarts (vmapped, against 10 single runs). Logistic regression's grid is one
program that runs its fits in turn (``lax.map``): vmapped, its L-BFGS loops
measured slower than the fits one after another. Prints the seconds and the
ratio, and checks that both ways give the same models; writes ``--output``
(JSON).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from data import errors
from data import files
from experiments import cli
from experiments import timing
from experiments.learning import tabular
from models.learners import kmeans
from models.learners import knn
from models.learners import logistic

KS = (1, 3, 5, 7, 9)
CS = tuple(float(c) for c in np.logspace(-3, 1, 8))

flags.DEFINE_enum("dataset", "mnist", list(tabular.IMAGE_DATASETS), "Image dataset.")
flags.DEFINE_integer("train_size", 10_000, "Fit on the first N training images.")
flags.DEFINE_string("output", "/tmp/perceptrax/learner_grid.json", "The figures, as JSON.")
FLAGS = flags.FLAGS


def _figures(grid: timing.Timed, alone: list[timing.Timed]) -> dict:
  return {"members": len(alone), "grid_seconds": grid.seconds,
          "grid_compile_seconds": grid.compile_seconds,
          "one_by_one_seconds": sum(a.seconds for a in alone),
          "one_by_one_compile_seconds": sum(a.compile_seconds for a in alone)}


def _knn(x, y, queries) -> dict:
  params = knn.fit(knn.Settings(num_classes=10), x, y)
  grid = timing.compile_and_run(lambda p, q: knn.predict_grid(p, q, KS), params, queries)
  alone = [timing.compile_and_run(
      knn.predict, params.replace(settings=params.settings.replace(k=k)), queries) for k in KS]
  assert all(np.array_equal(grid.out[i], a.out) for i, a in enumerate(alone))
  return _figures(grid, alone)


def _logistic(x, y) -> dict:
  settings = logistic.Settings(num_classes=10)
  # One program running the fits in turn (lax.map): vmapped, L-BFGS's loops took 4x as long
  # as the fits one after another (measured; docs/learners.md).
  grid = timing.compile_and_run(
      lambda cs: jax.lax.map(lambda c: logistic.fit(settings.replace(c=c), x, y), cs),
      jnp.asarray(CS, x.dtype))
  alone = [timing.compile_and_run(logistic.fit, settings.replace(c=c), x, y) for c in CS]
  largest = max(float(jnp.max(jnp.abs(grid.out.w[i] - a.out.w)) / jnp.max(jnp.abs(a.out.w)))
                for i, a in enumerate(alone))
  return {**_figures(grid, alone), "largest_relative_weight_difference": largest}


def _kmeans(x, y, key) -> dict:
  settings = kmeans.Settings()
  grid = timing.compile_and_run(kmeans.fit, settings, x, y, key)
  one = settings.replace(n_init=1)
  alone = [timing.compile_and_run(kmeans.fit, one, x, y, k)
           for k in jax.random.split(key, settings.n_init)]
  return {**_figures(grid, alone), "grid_inertia": float(grid.out.inertia),
          "best_one_by_one_inertia": min(float(a.out.inertia) for a in alone)}


def main(argv):
  del argv
  errors.check_integer("--train_size", FLAGS.train_size, 100, 60_000)
  data = tabular.load(FLAGS.dataset, FLAGS.archive_dir, FLAGS.tfds_data_dir, FLAGS.train_size)
  x, y, queries = (jnp.asarray(a) for a in (data.x_train, data.y_train, data.x_test))
  results = {"dataset": FLAGS.dataset, "train_size": FLAGS.train_size,
             "knn_k": _knn(x, y, queries), "logistic_c": _logistic(x, y),
             "kmeans_restarts": _kmeans(x, y, jax.random.key(0))}
  print(f"{FLAGS.dataset}, first {FLAGS.train_size} training images:")
  print("| grid | members | one program s | one by one s | ratio | compile s (program / one by one) |")
  print("|---|---:|---:|---:|---:|---:|")
  for name in ("knn_k", "logistic_c", "kmeans_restarts"):
    r = results[name]
    print(f"| {name} | {r['members']} | {r['grid_seconds']:.2f} | {r['one_by_one_seconds']:.2f} | "
          f"{r['one_by_one_seconds'] / r['grid_seconds']:.2f} | {r['grid_compile_seconds']:.2f} / "
          f"{r['one_by_one_compile_seconds']:.2f} |")
  folder = os.path.dirname(os.path.abspath(FLAGS.output))
  os.makedirs(folder, exist_ok=True)
  files.write_json(FLAGS.output, results)
  print(cli.written(folder, results=(os.path.basename(FLAGS.output),)))


if __name__ == "__main__":
  cli.run(main)
