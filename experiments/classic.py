r"""Single-layer learning rules on logic gates, blobs, MNIST and Fashion-MNIST.

    python -m experiments.classic --algorithm=perceptron --dataset=and
    python -m experiments.classic --algorithm=lms --dataset=mnist --classes=0,1 --archive_dir=../shared/data
    python -m experiments.classic --algorithm=lms --dataset=mnist --classes=0,1,2,3,4,5,6,7,8,9 --c=0.0005,0.001,0.002

Several step sizes (``--c=a,b,c``) train at once: the rule is ``jax.vmap``ped
over c inside one compiled program. Two classes train one output node
(target 1 for the second class); more classes train one node per class
(one-vs-rest 0/1 targets, prediction = the node with the largest sum).
Writes summary.json (one entry per c) and, for 2-D datasets, decision.png.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from data import datasets
from data import errors
from data import files
from data import toy
from data.errors import UserError
from experiments import cli
from models import classic

ALGORITHMS = errors.Registry("algorithm", {
    "perceptron": "Rosenblatt's perceptron", "lms": "sequential MSE (LMS, Widrow-Hoff)",
    "sdm": "steepest descent on the whole sample", "least_squares": "closed-form least squares"})
DATASETS = errors.Registry("dataset", {
    "and": "logic gate", "or": "logic gate", "xor": "logic gate", "blobs": "2-D Gaussian blobs",
    "mnist": "image classes", "fashion_mnist": "image classes"})
IMAGE_DATASETS = ("mnist", "fashion_mnist")
# Default step sizes. LMS is stable for c < 2 / ||x||² and SDM for c < 2 / λ_max(XᵀX / N);
# both are ~100 for MNIST's 784 pixels in [0, 1] and ~1-3 for the 2-D datasets.
DEFAULT_C = {
    "perceptron": {"toy": 1.0, "image": 1.0},
    "lms": {"toy": 0.1, "image": 0.002},
    "sdm": {"toy": 0.5, "image": 0.01},
}

flags.DEFINE_string("algorithm", "perceptron", " | ".join(ALGORITHMS))
flags.DEFINE_string("dataset", "and", " | ".join(DATASETS))
flags.DEFINE_list("classes", ["0", "1"], "Classes to use (image datasets), in label order.")
flags.DEFINE_list("c", None, "Step size(s) c, trained together with vmap. Default (2-D / images): "
                  + ", ".join(f"{k} {v['toy']} / {v['image']}" for k, v in DEFAULT_C.items()))
flags.DEFINE_integer("max_passes", 100, "Most passes over the sample.")
flags.DEFINE_float("tolerance", 1e-4, "lms/sdm stop when no weight moves more than this in a pass.")
flags.DEFINE_integer("seed", 0, "Seeds the blobs and the order of the observations.")
flags.DEFINE_integer("num_examples", 200, "Points per split for --dataset=blobs.")
flags.DEFINE_string("workdir", "/tmp/perceptrax/classic", "Output directory.")
FLAGS = flags.FLAGS


def load(dataset: str, classes: list[int], seed: int, num_examples: int):
  """Returns (train, test) Splits with flat float32 inputs and labels 0..K-1."""
  if dataset in toy.GATES:
    split = toy.logic_gate(dataset)
    return split, split
  if dataset == "blobs":
    return toy.blobs(num_examples, seed), toy.blobs(num_examples, seed + 1)
  arrays = datasets.load_arrays(dataset, FLAGS.archive_dir, FLAGS.tfds_data_dir)

  def select(split):
    labels = arrays[f"{split}_labels"]
    keep = np.isin(labels, classes)
    relabel = np.zeros(max(classes) + 1, np.int32)
    relabel[classes] = np.arange(len(classes))
    images = datasets.to_model_input(arrays[f"{split}_images"][keep]).reshape(int(keep.sum()), -1)
    return toy.Split(images, relabel[labels[keep]])

  return select("train"), select("test")


def targets(labels: np.ndarray, num_classes: int) -> jnp.ndarray:
  """0/1 targets: (N,) for two classes (1 = second class), one-hot (N, K) for more."""
  if num_classes == 2:
    return jnp.asarray(labels, jnp.float32)
  return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)


def fit(algorithm: str, x, d, cs, tolerance: float, max_passes: int):
  """Trains one model per step size in ``cs`` with ``jax.vmap``; returns a batched FitResult.

  The data are the compiled program's arguments, not constants it closes over, which XLA
  would fold at compile time (seconds, and alarms on the console, for MNIST).
  """
  if algorithm == "least_squares":
    w = classic.least_squares(x, d)
    one = classic.FitResult(w, jnp.int32(0), jnp.int32(0), jnp.bool_(True))
    return jax.tree.map(lambda a: a[None], one)
  rule = {
      "perceptron": lambda x, d, c: classic.perceptron(x, d, c, max_passes=max_passes),
      "lms": lambda x, d, c: classic.lms(x, d, c, tol=tolerance, max_passes=max_passes),
      "sdm": lambda x, d, c: classic.steepest_descent(x, d, c, tol=tolerance,
                                                      max_passes=max_passes),
  }[algorithm]
  return jax.jit(jax.vmap(rule, in_axes=(None, None, 0)))(
      jnp.asarray(x), jnp.asarray(d), jnp.asarray(cs, jnp.float32))


def plot_decision(path: str, x, labels, weights, cs, threshold: float, title: str):
  """Scatter of the 2-D points and each learned line w_0 + w_1 x_1 + w_2 x_2 = threshold."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(5, 5))
  for label, marker in ((0, "o"), (1, "s")):
    pts = x[labels == label]
    ax.scatter(pts[:, 0], pts[:, 1], marker=marker, label=f"class {label}", alpha=0.7)
  lo, hi = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
  xs = np.linspace(lo[0], hi[0], 100)
  for w, c in zip(weights, cs):
    w0, w1, w2 = (float(v) for v in w)
    if abs(w2) > 1e-12:
      ax.plot(xs, (threshold - w0 - w1 * xs) / w2, label=f"c = {c}" if c else "decision line")
    elif abs(w1) > 1e-12:
      ax.axvline((threshold - w0) / w1, label=f"c = {c}" if c else "decision line")
  ax.set_xlim(lo[0], hi[0])
  ax.set_ylim(lo[1], hi[1])
  ax.set_xlabel("x1")
  ax.set_ylabel("x2")
  ax.set_title(title)
  ax.legend(fontsize=8)
  files.write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=100,
                                                     bbox_inches="tight"))
  plt.close(fig)


def gate_note(gate: str, accuracy: float) -> str:
  """Why a gate was not learned, decided by the perceptron convergence theorem.

  The perceptron stops after finitely many mistakes exactly when the data is
  linearly separable; on these four points it does within a few passes.
  """
  split = toy.logic_gate(gate)
  separable = bool(classic.perceptron(
      jnp.asarray(split.images), jnp.asarray(split.labels, jnp.float32), 1.0, max_passes=1000
  ).converged)
  rows = f"{round(4 * accuracy)}/4 rows right"
  if separable:
    return (f"{gate} is linearly separable but was not learned within --max_passes "
            f"({rows}): raise --max_passes or c")
  return (f"{gate} is not linearly separable (a separate check: the perceptron, c = 1, still "
          f"errs after 1000 passes over its 4 points, where separable gates converge within "
          f"a few): no single-layer rule can learn it ({rows})")


def _parse_flags():
  ALGORITHMS.get(FLAGS.algorithm)
  DATASETS.get(FLAGS.dataset)
  try:
    classes = [int(c) for c in FLAGS.classes]
    kind = "image" if FLAGS.dataset in IMAGE_DATASETS else "toy"
    cs = [float(c) for c in FLAGS.c] if FLAGS.c else [DEFAULT_C.get(FLAGS.algorithm, {}).get(kind)]
  except ValueError as e:
    raise UserError(f"--classes must be integers and --c numbers: {e}") from e
  if FLAGS.dataset in IMAGE_DATASETS and (
      len(classes) < 2 or len(set(classes)) != len(classes) or not all(0 <= c < 10 for c in classes)
  ):
    raise UserError(f"--classes must be 2 to 10 distinct labels in 0..9, got {FLAGS.classes}")
  if FLAGS.algorithm != "least_squares":
    for c in cs:
      errors.check_number("c", c, low=0.0, low_open=True)
  errors.check_integer("max_passes", FLAGS.max_passes, 1, errors.MAX_COUNT)
  errors.check_number("tolerance", FLAGS.tolerance, low=0.0)
  errors.check_integer("seed", FLAGS.seed, 0, errors.MAX_SEED)
  errors.check_integer("num_examples", FLAGS.num_examples, 2, errors.MAX_COUNT)
  if FLAGS.dataset not in IMAGE_DATASETS:
    classes = [0, 1]
  return classes, cs


def _runs_table(runs: list[dict]) -> str:
  """The runs as Markdown; least squares is a closed form: no step size, passes or updates."""
  if FLAGS.algorithm == "least_squares":
    return "\n".join(["| solution | train acc | test acc |", "|---|---:|---:|"] + [
        f"| closed form | {r['train_accuracy']:.4f} | {r['test_accuracy']:.4f} |" for r in runs])
  return "\n".join(["| c | train acc | test acc | passes | updates | converged |",
                    "|---|---:|---:|---:|---:|---|"] + [
      f"| {r['c']} | {r['train_accuracy']:.4f} | {r['test_accuracy']:.4f} | {r['passes']} | "
      f"{r['updates']} | {r['converged']} |" for r in runs])


def main(argv):
  del argv
  classes, cs = _parse_flags()
  train, test = load(FLAGS.dataset, classes, FLAGS.seed, FLAGS.num_examples)
  order = np.random.default_rng(FLAGS.seed).permutation(len(train.labels))
  x, labels = jnp.asarray(train.images[order]), train.labels[order]
  result = fit(FLAGS.algorithm, x, targets(labels, len(classes)), cs, FLAGS.tolerance,
               FLAGS.max_passes)
  # The perceptron's output is 1 if s > 0; the MSE rules fit 0/1 targets, so
  # their output is read as 1 if s > 0.5.
  threshold = 0.0 if FLAGS.algorithm == "perceptron" else 0.5
  cs_shown = cs if FLAGS.algorithm != "least_squares" else [None]

  runs = []
  for i, c in enumerate(cs_shown):
    w = result.weights[i]
    runs.append({
        "c": c,
        "train_accuracy": float(np.mean(np.asarray(classic.predict(w, x, threshold)) == labels)),
        "test_accuracy": float(np.mean(
            np.asarray(classic.predict(w, jnp.asarray(test.images), threshold)) == test.labels)),
        "passes": int(result.passes[i]),
        "updates": int(result.updates[i]),
        "converged": bool(result.converged[i]),
    })
  best = max(runs, key=lambda r: r["train_accuracy"])
  summary = {
      "algorithm": FLAGS.algorithm, "dataset": FLAGS.dataset, "classes": classes,
      "num_train": int(len(labels)), "num_test": int(len(test.labels)),
      "max_passes": FLAGS.max_passes, "tolerance": FLAGS.tolerance, "seed": FLAGS.seed,
      "selected_on": "train_accuracy", **best, "runs": runs,
  }

  print(f"{FLAGS.algorithm} on {FLAGS.dataset} (classes {classes}): "
        f"{len(labels)} train / {len(test.labels)} test observations")
  print(_runs_table(runs))
  if FLAGS.dataset in toy.GATES:
    w = result.weights[runs.index(best)]
    outputs = np.asarray(classic.predict(w, jnp.asarray(toy.INPUTS), threshold))
    print(f"\nlearned truth table ({FLAGS.dataset}):\n x1 x2 | target  output")
    for (a, b), target, out in zip(toy.INPUTS.astype(int), toy.GATES[FLAGS.dataset], outputs):
      print(f"  {a}  {b} |   {target}       {out}")
    if best["train_accuracy"] < 1.0:
      summary["note"] = gate_note(FLAGS.dataset, best["train_accuracy"])
      print(summary["note"])

  os.makedirs(FLAGS.workdir, exist_ok=True)
  figures = []
  if train.images.shape[1] == 2:
    plot_decision(os.path.join(FLAGS.workdir, "decision.png"), np.asarray(x), labels,
                  np.asarray(result.weights), cs_shown, threshold,
                  f"{FLAGS.algorithm} on {FLAGS.dataset}")
    figures.append("decision.png")
  files.write_json(os.path.join(FLAGS.workdir, "summary.json"), summary)
  print(f"\n{cli.written(FLAGS.workdir, figures)}")


if __name__ == "__main__":
  cli.run(main)
