r"""Train a classifier on MNIST or Fashion-MNIST.

    python -m experiments.mnist --optimizer=adam --archive_dir=../shared/data

Defaults: the classic CNN with Adam (learning rate 1e-3 with cosine decay),
batch 128, 10 epochs, 5000 validation images carved from train.
Writes config.json, metrics.jsonl, summary.json (with per-class test
metrics), Orbax checkpoints and PNG figures to --workdir. Rerunning with a
--workdir that holds a checkpoint resumes that run.
"""

import time

_STARTED = time.perf_counter()  # before the heavy imports, for seconds_to_first_step

import dataclasses  # pylint: disable=g-import-not-at-top,wrong-import-position

from absl import flags  # pylint: disable=wrong-import-position
from absl import logging  # pylint: disable=wrong-import-position

from experiments import cli  # pylint: disable=wrong-import-position
from experiments import config as config_lib  # pylint: disable=wrong-import-position
from experiments import train  # pylint: disable=wrong-import-position
from experiments import train_flags  # pylint: disable=wrong-import-position

_DEFAULTS = config_lib.TrainConfig()

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/perceptrax/mnist", "Output directory.")
flags.DEFINE_string("optimizer", _DEFAULTS.optimizer,
                    "sgd | momentum | adagrad | adadelta | rmsprop | adam")
flags.DEFINE_float("learning_rate", None,
                   "(Peak) step size α; default: the optimizer table's for the form.")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seeds initialization, dropout, shuffling, split.")
flags.DEFINE_integer("patience", _DEFAULTS.patience,
                     "Early stopping: stop after this many epochs without a lower validation "
                     "loss and keep the best epoch's model (0: train all epochs).")
flags.DEFINE_boolean("checkpoint_every_epoch", _DEFAULTS.checkpoint_every_epoch,
                     "Save a checkpoint after every epoch (default: at the end only).")
flags.DEFINE_boolean("plots", _DEFAULTS.plots,
                     "Write PNG figures: training curves, confusion matrix, weight histograms, "
                     "first-layer weights, saliency maps, misclassified images.")


def main(argv):
  if len(argv) > 1:
    raise config_lib.ConfigError(f"unexpected arguments: {' '.join(argv[1:])}")
  config = train_flags.train_config(
      optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate, seed=FLAGS.seed,
      patience=FLAGS.patience, checkpoint_every_epoch=FLAGS.checkpoint_every_epoch,
      plots=FLAGS.plots)
  cli.enable_compilation_cache(FLAGS.compilation_cache_dir)
  logging.info("config: %s", dataclasses.asdict(config))
  summary = train.train_and_evaluate(config, FLAGS.workdir, started_at=_STARTED)
  logging.info(
      "test accuracy %.4f, test loss %.4f (model of epoch %d); summary in %s/summary.json",
      summary["test_accuracy"], summary["test_loss"], summary["epoch"], FLAGS.workdir,
  )


if __name__ == "__main__":
  cli.run(main)
