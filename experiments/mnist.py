r"""Train a classifier on MNIST or Fashion-MNIST.

    python -m experiments.mnist --optimizer=adam --archive_dir=../shared/data

Defaults: the classic CNN with Adam (learning rate 1e-3 with cosine decay),
batch 128, 10 epochs, 5000 validation images carved from train.
Writes config.json, metrics.jsonl and summary.json to --workdir.
"""

import time

_STARTED = time.perf_counter()  # before the heavy imports, for seconds_to_first_step

import dataclasses  # pylint: disable=g-import-not-at-top,wrong-import-position

from absl import flags  # pylint: disable=wrong-import-position
from absl import logging  # pylint: disable=wrong-import-position

from experiments import cli  # pylint: disable=wrong-import-position
from experiments import config as config_lib  # pylint: disable=wrong-import-position
from experiments import train  # pylint: disable=wrong-import-position

_DEFAULTS = config_lib.TrainConfig()

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/perceptrax/mnist", "Output directory.")
flags.DEFINE_string("dataset", _DEFAULTS.dataset, "mnist | fashion_mnist | cifar10")
flags.DEFINE_string("model", _DEFAULTS.model, "mlp | cnn | cnn_small")
flags.DEFINE_string("optimizer", _DEFAULTS.optimizer,
                    "sgd | momentum | adagrad | adadelta | rmsprop | adam")
flags.DEFINE_string("optimizer_form", _DEFAULTS.optimizer_form,
                    "optax (Optax's alias) | textbook (the course's exact rule); see README.")
flags.DEFINE_float("learning_rate", None,
                   "(Peak) step size α; default: the optimizer table's for the form.")
flags.DEFINE_float("momentum", None, "γ of momentum; default 0.9.")
flags.DEFINE_float("b1", None, "β1: Adam's first-moment decay, textbook Adadelta's D decay.")
flags.DEFINE_float("b2", None, "β2: second-moment decay of rmsprop, adam, adadelta (Optax's ρ).")
flags.DEFINE_float("eps", None, "ε of adagrad, adadelta, rmsprop, adam; see README for where.")
flags.DEFINE_float("initial_accumulator", None, "Adagrad's G_0; default 0.1 optax, 0 textbook.")
flags.DEFINE_float("clip_norm", None, "Clip gradients to this global norm (default: no clipping).")
flags.DEFINE_string("schedule", _DEFAULTS.schedule,
                    "Learning rate over training: constant | step (x step_decay_rate at 1/2 and "
                    "3/4 of training) | cosine (decay to 0) | warmup_cosine (linear warmup, cosine).")
flags.DEFINE_float("warmup_epochs", _DEFAULTS.warmup_epochs, "Warmup length for warmup_cosine.")
flags.DEFINE_float("step_decay_rate", _DEFAULTS.step_decay_rate, "Factor of the step schedule.")
flags.DEFINE_string("gd_mode", _DEFAULTS.gd_mode,
                    "minibatch (--batch_size per update) | stochastic (one example per update) | "
                    "full_batch (all training examples per update).")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Examples per update in minibatch mode.")
flags.DEFINE_integer("num_epochs", _DEFAULTS.num_epochs, "Passes over the training split.")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seeds initialization, dropout, shuffling, split.")
flags.DEFINE_integer("validation_size", _DEFAULTS.validation_size,
                     "Training images held out for validation (0: none).")
flags.DEFINE_boolean("standardize", _DEFAULTS.standardize,
                     "Standardize pixels with the training mean and std (else x/255).")
flags.DEFINE_list("hidden_sizes", [str(h) for h in _DEFAULTS.hidden_sizes],
                  "MLP hidden layer widths.")
flags.DEFINE_string("activation", _DEFAULTS.activation, "MLP activation function.")
flags.DEFINE_float("dropout_rate", _DEFAULTS.dropout_rate, "CNN dropout rate.")
flags.DEFINE_boolean("progress", True, "Show a progress bar per epoch.")


def main(argv):
  if len(argv) > 1:
    raise config_lib.ConfigError(f"unexpected arguments: {' '.join(argv[1:])}")
  try:
    hidden_sizes = tuple(int(h) for h in FLAGS.hidden_sizes)
  except ValueError as e:
    raise config_lib.ConfigError(
        f"hidden_sizes must be integers, got {','.join(FLAGS.hidden_sizes)}") from e
  config = config_lib.TrainConfig(
      dataset=FLAGS.dataset,
      model=FLAGS.model,
      optimizer=FLAGS.optimizer,
      optimizer_form=FLAGS.optimizer_form,
      learning_rate=FLAGS.learning_rate,
      momentum=FLAGS.momentum,
      b1=FLAGS.b1,
      b2=FLAGS.b2,
      eps=FLAGS.eps,
      initial_accumulator=FLAGS.initial_accumulator,
      clip_norm=FLAGS.clip_norm,
      schedule=FLAGS.schedule,
      warmup_epochs=FLAGS.warmup_epochs,
      step_decay_rate=FLAGS.step_decay_rate,
      gd_mode=FLAGS.gd_mode,
      batch_size=FLAGS.batch_size,
      num_epochs=FLAGS.num_epochs,
      seed=FLAGS.seed,
      validation_size=FLAGS.validation_size,
      standardize=FLAGS.standardize,
      hidden_sizes=hidden_sizes,
      activation=FLAGS.activation,
      dropout_rate=FLAGS.dropout_rate,
      archive_dir=FLAGS.archive_dir,
      tfds_data_dir=FLAGS.tfds_data_dir,
      progress=FLAGS.progress,
  ).validate()
  cli.enable_compilation_cache(FLAGS.compilation_cache_dir)
  logging.info("config: %s", dataclasses.asdict(config))
  summary = train.train_and_evaluate(config, FLAGS.workdir, started_at=_STARTED)
  logging.info(
      "test accuracy %.4f, test loss %.4f; %.0f train images/s; summary in %s/summary.json",
      summary["test_accuracy"], summary["test_loss"], summary["train_images_per_second"],
      FLAGS.workdir,
  )


if __name__ == "__main__":
  cli.run(main)
