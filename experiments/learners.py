r"""The course's other learners, fitted on MNIST, Fashion-MNIST or diabetes, beside scikit-learn's.

    python -m experiments.learners --learner=knn --dataset=mnist --archive_dir=../shared/data
    python -m experiments.learners --learner=kernel_svm --compare=sklearn --archive_dir=../shared/data
    python -m experiments.learners --learner=linear_svm --dataset=diabetes --c=100 --max_iter=1000
    python -m experiments.learners --learner=tree --max_depth=10 --compare=sklearn --archive_dir=../shared/data
    python -m experiments.learners --learner=forest --compare=sklearn --archive_dir=../shared/data
    python -m experiments.learners --learner=boosting --compare=lightgbm --archive_dir=../shared/data

Learners: knn, gaussian_nb, bernoulli_nb, multinomial_nb, logistic, linear_svm,
kernel_svm, kmeans, tree, forest, boosting (``models/learners/``). A setting's flag has its Settings
field's name; defaults are scikit-learn's. Writes summary.json (the test
accuracy or R², seconds to compile, fit and predict, the parameter count)
and figures (the tree also tree.txt, as scikit-learn's export_text prints it);
``--compare=sklearn`` fits scikit-learn's same learner in the
same process and adds its accuracy, its seconds and the largest differences
(``--compare=lightgbm``: LightGBM's, for boosting).
"""

import os

import jax
from absl import flags
from absl import logging

from data import errors
from data import files
from data.errors import UserError
from experiments import cli
from experiments.learning import catalogue
from experiments.learning import fitting
from experiments.learning import tabular
from models.learners import boosting
from models.learners import forest
from models.learners import kernel_svm
from models.learners import tree

DATASETS = errors.Registry("dataset", {
    "mnist": "handwritten digits", "fashion_mnist": "clothing images",
    "diabetes": "scikit-learn's diabetes progression (regression)"})
MIB = 2**20

flags.DEFINE_string("learner", "knn", " | ".join(catalogue.LEARNERS))
flags.DEFINE_string("dataset", "mnist", " | ".join(DATASETS))
flags.DEFINE_integer("train_size", None, "Fit on the first N training examples (default: all; "
                     f"kernel_svm {catalogue.LEARNERS.get('kernel_svm').image_train_size}).")
flags.DEFINE_integer("seed", 0, "Seeds k-means++, the linear SVM's visiting order and diabetes' split.")
flags.DEFINE_string("workdir", "/tmp/perceptrax/learners", "Output directory.")
flags.DEFINE_multi_enum("compare", [], list(fitting.LIBRARIES), "Also fit scikit-learn's "
                        "same learner, and/or LightGBM's (boosting; pip install -e "
                        "'.[lightgbm]'); repeat the flag for both.")
flags.DEFINE_integer("chunk_mib", 256, "knn, kernel_svm, tree, forest: MiB of distances, kernel values or histograms held "
                     "per chunk of queries.")
flags.DEFINE_integer("kernel_matrix_mib", 2048, "kernel_svm: the most MiB the N x N training "
                     "kernel matrix may take (float32).")
# The learners' settings: each flag is its Settings field; unset, the learner's default.
flags.DEFINE_integer("k", None, "knn: neighbours that vote (default 3).")
flags.DEFINE_enum("weights", None, ["uniform", "distance"], "knn: vote weights (default uniform).")
flags.DEFINE_float("var_smoothing", None, "gaussian_nb: ε / max variance (default 1e-9).")
flags.DEFINE_float("alpha", None, "bernoulli_nb, multinomial_nb: additive smoothing (default 1).")
flags.DEFINE_float("binarize", None, "bernoulli_nb: a pixel is on above this (default 0.5).")
flags.DEFINE_float("c", None, "logistic (default 1), linear_svm (0.1), kernel_svm (10): the "
                   "inverse penalty C.")
flags.DEFINE_float("epsilon", None, "linear_svm regression: the loss's insensitive zone (default 0).")
flags.DEFINE_enum("kernel", None, ["rbf", "poly"], "kernel_svm: the kernel (default rbf).")
flags.DEFINE_float("gamma", None, "kernel_svm: γ (default: 1 / (D Var(x)), scikit-learn's 'scale').")
flags.DEFINE_integer("degree", None, "kernel_svm poly: the degree (default 3).")
flags.DEFINE_float("coef0", None, "kernel_svm poly: r in (γ a·b + r)^d (default 0).")
flags.DEFINE_integer("num_clusters", None, "kmeans: clusters (default 10).")
flags.DEFINE_integer("n_init", None, "kmeans: restarts, vmapped (default 10).")
flags.DEFINE_float("tol", None, "logistic, linear_svm, kernel_svm, kmeans: the stopping "
                   "tolerance (defaults 1e-4, 1e-4, 1e-3, 1e-4).")
flags.DEFINE_integer("max_iter", None, "logistic (default 100 steps), linear_svm (100 passes), "
                     "kernel_svm (1e6 SMO steps), kmeans (300): the most iterations.")
flags.DEFINE_enum("criterion", None, ["gini", "entropy", "squared_error"], "tree: the impurity "
                  "(default gini, squared_error for regression).")
flags.DEFINE_integer("max_depth", None, "tree (default 10), forest (20), boosting (0: none): the "
                     "deepest level; at most 64, and 2^21 node slots.")
flags.DEFINE_integer("width", None, "tree (default 0: 2^max_depth, complete), forest (2048): the "
                     "most nodes a level holds; nodes that would split past it stay leaves.")
flags.DEFINE_integer("min_samples_leaf", None, "tree, forest (default 1), boosting (20): the "
                     "fewest examples in a leaf.")
flags.DEFINE_integer("max_features", None, "tree (default 0: all), forest (0: the square root "
                     "of the feature count): features drawn at each node.")
flags.DEFINE_integer("num_trees", None, "forest: trees (default 100).")
flags.DEFINE_integer("bins", None, "tree (default 256), forest (32), boosting (256): each feature's "
                     "histogram bins, at most 256.")
flags.DEFINE_integer("num_rounds", None, "boosting: rounds of trees, one per class (default 100).")
flags.DEFINE_float("learning_rate", None, "boosting: the shrinkage η of each tree (default 0.1).")
flags.DEFINE_integer("max_leaves", None, "boosting: each tree's most leaves (default 31).")
flags.DEFINE_float("l2", None, "boosting: λ, the L2 penalty on the leaf values (default 0).")
flags.DEFINE_float("validation_fraction", None, "boosting: rows held out for early stopping "
                   "(default 0.1).")
flags.DEFINE_integer("patience", None, "boosting: stop after this many rounds without a better "
                     "validation score (default 10; 0: train every round on every row).")
FLAGS = flags.FLAGS

_CHECKS = {  # each setting's valid range: (low, high, low_open)
    "k": (1, errors.MAX_COUNT), "n_init": (1, 1000), "num_clusters": (1, errors.MAX_COUNT),
    "degree": (1, 10), "max_iter": (1, errors.MAX_COUNT),
    "var_smoothing": (0.0, 1.0, False), "alpha": (0.0, 1e30, False), "binarize": (-1e30, 1e30, False),
    "c": (0.0, 1e30, True), "epsilon": (0.0, 1e30, False), "gamma": (0.0, 1e30, True),
    "coef0": (-1e30, 1e30, False), "tol": (0.0, 1e30, True),
    "max_depth": (0, tree.MAX_DEPTH), "min_samples_leaf": (1, errors.MAX_COUNT),
    "max_features": (0, errors.MAX_COUNT), "width": (0, tree.MAX_NODES),
    "num_trees": (1, 100_000), "bins": (2, 256), "num_rounds": (1, 100_000),
    "learning_rate": (0.0, 1e30, True), "max_leaves": (2, 4096), "l2": (0.0, 1e30, False),
    "validation_fraction": (0.0, 0.99, False), "patience": (0, 100_000),
}


def given_settings(name: str) -> dict:
  """The settings flags the user set, checked: each must be one of this learner's."""
  learner = catalogue.LEARNERS.get(name)
  given = {field: FLAGS[field].value for field in catalogue.SETTINGS if FLAGS[field].present}
  for field, value in given.items():
    if field not in learner.settings:
      takers = [n for n, other in catalogue.LEARNERS.items() if field in other.settings]
      raise UserError(f"--{field} is a setting of {', '.join(takers)}, not of {name} (which "
                      f"takes {', '.join('--' + s for s in learner.settings) or 'none'})")
    low, high, *open_low = _CHECKS.get(field, (None, None))
    if isinstance(value, int) and not open_low:
      errors.check_integer(f"--{field}", value, low, high)
    elif low is not None:
      errors.check_number(f"--{field}", value, low, high, low_open=open_low[0])
  return given


def check_flags() -> tuple[str, str, dict]:
  """(learner, dataset, given settings), each checked before any data is loaded."""
  name = catalogue.LEARNERS.check(FLAGS.learner)
  dataset = DATASETS.check(FLAGS.dataset)
  given = given_settings(name)
  learner = catalogue.LEARNERS.get(name)
  if dataset in tabular.REGRESSION_DATASETS and not learner.regression:
    regressors = [n for n, other in catalogue.LEARNERS.items() if other.regression]
    raise UserError(f"{name} does not regress; {dataset} is regression (learners that regress: "
                    f"{', '.join(regressors)})")
  if dataset not in tabular.REGRESSION_DATASETS and "epsilon" in given:
    raise UserError("--epsilon is linear_svm's regression setting: use it with --dataset=diabetes")
  if "lightgbm" in FLAGS.compare and learner.lightgbm is None:
    takers = [n for n, other in catalogue.LEARNERS.items() if other.lightgbm is not None]
    raise UserError(f"--compare=lightgbm compares {', '.join(takers)}, not {name}")
  if "lightgbm" in FLAGS.compare:
    try:
      import lightgbm  # noqa: F401
    except ImportError:
      raise UserError("--compare=lightgbm needs LightGBM: pip install -e '.[lightgbm]'") from None
  for flag in ("chunk_mib", "kernel_matrix_mib"):
    errors.check_integer(f"--{flag}", FLAGS[flag].value, 1, 2**30)
  if FLAGS.train_size is not None:
    errors.check_integer("--train_size", FLAGS.train_size, 1, errors.MAX_COUNT)
  errors.check_integer("--seed", FLAGS.seed, 0, errors.MAX_SEED)
  return name, dataset, given


def check_sizes(name: str, settings, num_train: int, num_features: int) -> None:
  """The limits that need the training set's size, before any fitting."""
  if name == "knn" and settings.k > num_train:
    raise UserError(f"--k={settings.k} is more than the {num_train} training examples")
  if name == "kmeans" and settings.num_clusters > num_train:
    raise UserError(f"--num_clusters={settings.num_clusters} is more than the {num_train} "
                    "training examples")
  try:
    if name == "tree":
      tree.check(settings, num_features)
    if name == "forest":
      forest.check(settings, num_features, physical_memory() // 2)
    if name == "boosting":
      boosting.check(settings, num_train)
  except ValueError as e:
    raise UserError(f"{name}: {e}") from None
  if name == "kernel_svm" and kernel_svm.kernel_bytes(num_train) > FLAGS.kernel_matrix_mib * MIB:
    raise UserError(
        f"the kernel matrix of {num_train} training examples takes "
        f"{kernel_svm.kernel_bytes(num_train) / MIB:.0f} MiB, more than --kernel_matrix_mib="
        f"{FLAGS.kernel_matrix_mib}: fit on fewer with --train_size, or raise the limit")


def physical_memory() -> int:
  """This machine's memory in bytes."""
  return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _report(name: str, dataset: str, data, result: dict) -> None:
  score = fitting.score_name(data.num_classes)
  shown = (f"{100 * result[score]:.2f}%" if data.num_classes else f"R² {result[score]:.4f}")
  print(f"{name} on {dataset}: {len(data.y_train)} train / {len(data.y_test)} test; "
        f"test {shown}; fit {result['fit_seconds']:.2f} s, predict "
        f"{result['predict_seconds']:.2f} s (compile {result['compile_seconds']:.2f} s)")
  for library, title in (("sklearn", "scikit-learn"), ("lightgbm", "LightGBM")):
    if f"{library}_{score}" not in result:
      continue
    theirs = result[f"{library}_{score}"]
    ours_time = result["fit_seconds"] + result["predict_seconds"]
    their_time = result[f"{library}_fit_seconds"] + result[f"{library}_predict_seconds"]
    print(f"{title}: test {100 * theirs:.2f}%" if data.num_classes else
          f"{title}: test R² {theirs:.4f}", end="")
    print(f"; fit {result[f'{library}_fit_seconds']:.2f} s, predict "
          f"{result[f'{library}_predict_seconds']:.2f} s: ours {their_time / ours_time:.2f}x as fast")
    for warning in result[f"{library}_warnings"]:
      print(f"{title} warned: {warning}")


def main(argv):
  del argv
  name, dataset, given = check_flags()
  if "memory_bytes" in catalogue.LEARNERS.get(name).module.Settings.__dataclass_fields__:
    given["memory_bytes"] = FLAGS.chunk_mib * MIB
  train_size = FLAGS.train_size
  if train_size is None and dataset in tabular.IMAGE_DATASETS:
    train_size = catalogue.LEARNERS.get(name).image_train_size
  data = tabular.load(dataset, FLAGS.archive_dir, FLAGS.tfds_data_dir, train_size, FLAGS.seed)
  settings = catalogue.settings_of(name, given, data.num_classes)
  check_sizes(name, settings, len(data.y_train), data.x_train.shape[1])
  logging.info("fitting %s on %d examples", name, len(data.y_train))
  params, result, predictions = fitting.fit_and_score(
      name, settings, data, jax.random.key(FLAGS.seed), compare=tuple(FLAGS.compare))
  summary = {"learner": name, "dataset": dataset, "num_train": len(data.y_train),
             "num_test": len(data.y_test), "seed": FLAGS.seed,
             "settings": vars(settings), **result}
  _report(name, dataset, data, result)
  from experiments.learning import figures  # matplotlib: not before a flag is refused
  os.makedirs(FLAGS.workdir, exist_ok=True)
  drawn = figures.draw(name, dataset, params, data, predictions, FLAGS.workdir)
  results = ["summary.json"]
  text = catalogue.LEARNERS.get(name).text
  if text is not None:
    files.write_text(os.path.join(FLAGS.workdir, f"{name}.txt"), text(params, data.image_shape))
    results.append(f"{name}.txt")
  files.write_json(os.path.join(FLAGS.workdir, "summary.json"), summary)
  print(cli.written(FLAGS.workdir, drawn, results))


if __name__ == "__main__":
  cli.run(main)
