r"""The table that helps choose a model: every learner of the course on one split, side by side.

    python -m scripts.model_table --dataset=mnist --archive_dir=../shared/data

Fits, on the same training split of the dataset, the course's learners in
course order: the perceptron and least squares (one node per class,
``models/classic.py``), k-NN, the three naive Bayes, logistic regression,
the linear and kernel SVMs, k-means, the decision tree, the random forest
and gradient boosting (``models/learners/``, each beside
scikit-learn's same learner unless ``--compare=none``; boosting beside
LightGBM's too with ``--compare=lightgbm``), then softmax
regression, the MLP, the CNN and the LSTM, trained by ``experiments.mnist``
for ``--epochs`` (or read from ``--from_workdirs=mlp=DIR,...``); with
``--keep_rows``, the rows of learners not in ``--learners`` are kept from the
dataset's JSON. Writes the
dataset's section of ``--output`` (Markdown: test accuracy, seconds to fit,
seconds to predict 10 000 images, parameters, and scikit-learn's figures
beside; the other datasets' sections are kept) with ``model_choice_DATASET.json``
and ``model_choice_DATASET.png`` (accuracy against fit time, log scale) beside it.
"""

import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from absl import logging

from data import datasets
from data import errors
from data import files
from data.errors import UserError
from experiments import cli
from experiments import timing
from experiments.learning import catalogue
from experiments.learning import fitting
from experiments.learning import tabular
from experiments.training.outputs import plots
from experiments.training.storage import trained_model
from models import classic

SINGLE_LAYER = ("perceptron", "least_squares")
NETWORKS = {  # name: experiments.mnist's flags
    "softmax": ["--model=mlp", "--hidden_sizes=none"], "mlp": ["--model=mlp"],
    "cnn": ["--model=cnn"], "lstm": ["--model=lstm"]}
PER_IMAGES = 10_000  # predict seconds are stated per this many images

flags.DEFINE_enum("dataset", "mnist", list(tabular.IMAGE_DATASETS), "Image dataset.")
flags.DEFINE_list("learners", list(SINGLE_LAYER) + list(catalogue.LEARNERS) + list(NETWORKS),
                  "Which rows, in course order.")
flags.DEFINE_integer("train_size", None, "Fit on the first N training images (default: all; "
                     f"kernel_svm at most {catalogue.LEARNERS.get('kernel_svm').image_train_size}).")
flags.DEFINE_integer("epochs", 2, "Epochs of each network's short budget.")
flags.DEFINE_integer("perceptron_passes", 10, "Passes of the perceptron over the training set.")
flags.DEFINE_multi_enum("compare", ["sklearn"], [*fitting.LIBRARIES, "none"],
                        "Fit scikit-learn's twins too (and LightGBM's, for boosting: repeat "
                        "the flag), or none.")
flags.DEFINE_list("from_workdirs", [], "name=WORKDIR of networks already trained: read, not trained.")
flags.DEFINE_string("workdir", "/tmp/perceptrax/model_table", "Where the networks train (in DATASET/NETWORK).")
flags.DEFINE_string("output", "docs/model_choice.md", "The Markdown table; .json and .png beside.")
flags.DEFINE_bool("keep_rows", False, "Keep the rows of the learners not in --learners from the "
                  "dataset's JSON already beside --output (to refit some rows only).")
FLAGS = flags.FLAGS


def _single_layer(name: str, data: tabular.Tabular) -> dict:
  """The perceptron (c = 1) or least squares, one node per class, the largest sum wins."""
  x, x_test = jnp.asarray(data.x_train), jnp.asarray(data.x_test)
  d = jax.nn.one_hot(data.y_train, data.num_classes)
  if name == "least_squares":  # a host computation in float64 (models/classic.py)
    start = time.perf_counter()
    weights = jnp.asarray(classic.least_squares(data.x_train, np.asarray(d)), jnp.float32)
    fit_seconds = time.perf_counter() - start
  else:
    fit = timing.compile_and_run(
        lambda x, d: classic.perceptron(x, d, 1.0, max_passes=FLAGS.perceptron_passes).weights,
        x, d)
    weights, fit_seconds = fit.out, fit.seconds
  predict = timing.compile_and_run(
      lambda w, x: jnp.argmax(classic.with_bias(x) @ w, axis=1), weights, x_test)
  return {"test_accuracy": fitting.score(data.y_test, predict.out, data.num_classes),
          "fit_seconds": fit_seconds, "predict_seconds": predict.seconds,
          "num_parameters": int(weights.size)}


def _learner(name: str, data: tabular.Tabular) -> dict:
  learner = catalogue.LEARNERS.get(name)
  most = learner.image_train_size
  if most is not None and len(data.y_train) > most:
    data = data._replace(x_train=data.x_train[:most], y_train=data.y_train[:most])
  settings = catalogue.settings_of(name, {}, data.num_classes)
  compare = tuple(library for library in FLAGS.compare
                  if library == "sklearn" or (library == "lightgbm" and learner.lightgbm))
  _, result, _ = fitting.fit_and_score(name, settings, data, jax.random.key(0), compare=compare)
  return {**result, "num_train": len(data.y_train)}


def _network(name: str, workdir: str | None) -> dict:
  """A network's figures from its workdir, trained there first unless given."""
  if workdir is None:
    workdir = os.path.join(FLAGS.workdir, FLAGS.dataset, name)  # a dataset's own checkpoints
    command = [sys.executable, "-m", "experiments.mnist", *NETWORKS[name],
               f"--dataset={FLAGS.dataset}", f"--num_epochs={FLAGS.epochs}",
               f"--workdir={workdir}", "--validation_size=0", "--plots=false"]
    command += [f"--train_size={FLAGS.train_size}"] if FLAGS.train_size else []
    command += [f"--{f}={FLAGS[f].value}" for f in ("archive_dir", "tfds_data_dir")
                if FLAGS[f].value]
    logging.info("training %s: %s", name, " ".join(command[1:]))
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
      said = (result.stderr.strip().splitlines() or ["no output"])[-1]
      raise UserError(f"training {name} failed ({said}): {' '.join(command[1:])}")
  summary = files.read_json(os.path.join(workdir, "summary.json"))
  trained = trained_model.load_classifier(workdir)
  arrays = datasets.load_arrays(FLAGS.dataset, FLAGS.archive_dir, FLAGS.tfds_data_dir)
  num_train = summary["train_size"] or len(arrays["train_labels"]) - summary["validation_size"]
  predict = timing.compile_and_run(trained_model.probability_function(trained),
                                   jnp.asarray(arrays["test_images"]))
  return {"test_accuracy": summary["test_accuracy"], "fit_seconds": summary["train_seconds"],
          "predict_seconds": predict.seconds, "num_parameters": summary["num_params"],
          "num_train": num_train, "workdir": workdir,
          "epochs": summary["epochs_trained"]}


def _markdown(rows: list[dict]) -> str:
  def cell(row, key, scale=1.0, digits=2):
    value = row.get(key)
    return "" if value is None else f"{scale * value:.{digits}f}"

  lines = [
      f"| learner | train images | test acc % | fit s | predict s / {PER_IMAGES:,} | parameters "
      "| scikit-learn acc % | scikit-learn fit s | scikit-learn predict s | ours x as fast |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for row in rows:
    ours = row["fit_seconds"] + row["predict_seconds"]
    theirs = row.get("sklearn_fit_seconds", 0) + row.get("sklearn_predict_seconds", 0)
    lines.append(
        f"| {row['learner']} | {row['num_train']:,} | {cell(row, 'test_accuracy', 100)} | "
        f"{cell(row, 'fit_seconds')} | {cell(row, 'predict_seconds')} | "
        f"{row['num_parameters']:,} | {cell(row, 'sklearn_test_accuracy', 100)} | "
        f"{cell(row, 'sklearn_fit_seconds')} | {cell(row, 'sklearn_predict_seconds')} | "
        f"{f'{theirs / ours:.1f}' if theirs else ''} |")
  return "\n".join(lines)


def _write_section(path: str, dataset: str, table: str) -> None:
  """The dataset's section of ``path`` replaced (added if absent; the file made if missing)."""
  markers = files.generated_section(f"{dataset} table", "scripts.model_table")
  text = "# Choosing a model\n" if not os.path.exists(path) else open(path, encoding="utf-8").read()
  if markers[0] not in text:
    text = text.rstrip("\n") + f"\n\n## {dataset}\n\n{markers[0]}\n{markers[1]}\n"
  files.write_text(path, files.replace_section(text, markers, table))


def _figure(rows: list[dict], path: str, dataset: str) -> None:
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7, 4.8))
  for row in rows:
    ax.scatter(row["fit_seconds"], 100 * row["test_accuracy"], color="tab:blue")
    ax.annotate(row["learner"], (row["fit_seconds"], 100 * row["test_accuracy"]), fontsize=8,
                xytext=(4, 3), textcoords="offset points")
  ax.set(xscale="log", xlabel="fit seconds (log scale)", ylabel="test accuracy (%)",
         title=f"{dataset}: accuracy against training time")
  ax.grid(alpha=0.3)
  plots.save(fig, path)


def _check_flags() -> dict[str, str]:
  known = list(SINGLE_LAYER) + list(catalogue.LEARNERS) + list(NETWORKS)
  for name in FLAGS.learners:
    if name not in known:
      raise UserError(f"unknown learner {name!r} in --learners; choose from {', '.join(known)}")
  given = {}
  for entry in FLAGS.from_workdirs:
    name, _, workdir = entry.partition("=")
    if name not in NETWORKS or not workdir:
      raise UserError(f"--from_workdirs takes NETWORK=WORKDIR with NETWORK one of "
                      f"{', '.join(NETWORKS)}, got {entry!r}")
    errors.check_folder(f"--from_workdirs {name}", workdir)
    given[name] = workdir
  errors.check_integer("--epochs", FLAGS.epochs, 1, 1000)
  errors.check_integer("--perceptron_passes", FLAGS.perceptron_passes, 1, errors.MAX_COUNT)
  if FLAGS.train_size is not None:
    errors.check_integer("--train_size", FLAGS.train_size, 10, 60_000)
  return given


def _saved_rows(path: str) -> list[dict]:
  """The rows of the table's JSON at ``path`` (none if it does not exist); UserError if it
  is damaged or holds no rows of known learners."""
  if not os.path.exists(path):
    return []
  saved = files.read_json(path)
  order = list(SINGLE_LAYER) + list(catalogue.LEARNERS) + list(NETWORKS)
  if not isinstance(saved, dict) or not isinstance(saved.get("rows"), list) or not all(
      isinstance(row, dict) and row.get("learner") in order for row in saved["rows"]):
    raise UserError(f"{path} holds no table rows; delete it or run without --keep_rows")
  return saved["rows"]


def _merged(kept: list[dict], rows: list[dict]) -> list[dict]:
  """The kept rows with this run's in place of theirs, in course order."""
  by_name = {row["learner"]: row for row in kept}
  by_name.update({row["learner"]: row for row in rows})
  order = list(SINGLE_LAYER) + list(catalogue.LEARNERS) + list(NETWORKS)
  return sorted(by_name.values(), key=lambda row: order.index(row["learner"]))


def main(argv):
  del argv
  given = _check_flags()
  stem = f"{os.path.splitext(FLAGS.output)[0]}_{FLAGS.dataset}"
  kept = _saved_rows(f"{stem}.json") if FLAGS.keep_rows else []  # before any fitting
  data = tabular.load(FLAGS.dataset, FLAGS.archive_dir, FLAGS.tfds_data_dir, FLAGS.train_size)
  rows = []
  for name in FLAGS.learners:
    logging.info("fitting %s", name)
    if name in SINGLE_LAYER:
      row = {**_single_layer(name, data), "num_train": len(data.y_train)}
    elif name in NETWORKS:
      row = _network(name, given.get(name))
    else:
      row = _learner(name, data)
    row["predict_seconds"] *= PER_IMAGES / len(data.y_test)
    rows.append({"learner": name, **row})
    logging.info("%s: test accuracy %.2f%%, fit %.2f s", name, 100 * row["test_accuracy"],
                 row["fit_seconds"])
  rows = _merged(kept, rows)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  _write_section(FLAGS.output, FLAGS.dataset, _markdown(rows))
  files.write_json(f"{stem}.json", {"dataset": FLAGS.dataset, "rows": rows})
  _figure(rows, f"{stem}.png", FLAGS.dataset)
  print(_markdown(rows))
  print(cli.written(os.path.dirname(os.path.abspath(FLAGS.output)),
                    [os.path.basename(f"{stem}.png")],
                    (os.path.basename(FLAGS.output), os.path.basename(f"{stem}.json"))))


if __name__ == "__main__":
  cli.run(main)
