r"""Train a classifier on MNIST or Fashion-MNIST.

    python -m experiments.mnist --optimizer=adam --archive_dir=../shared/data
    python -m experiments.mnist --model=mlp --folds=5 --num_epochs=3 --archive_dir=../shared/data

Defaults: the classic CNN with Adam (learning rate 1e-3 with cosine decay),
batch 128, 10 epochs, 5000 validation images carved from train: 99.34% test
accuracy in about 5 minutes on 2 CPU cores (README).
``--folds=k`` trains k models together instead, each validating on its own
fold, and reports the cross-validated mean ± std. Writes config.json,
metrics.jsonl, summary.json (with per-class test metrics), Orbax checkpoints
and PNG figures to --workdir; rerunning with a --workdir that holds a
checkpoint resumes that run.
"""

import time

_STARTED = time.perf_counter()  # before the heavy imports, for seconds_to_first_step

from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from experiments import cli  # noqa: E402
from experiments import training_command  # noqa: E402
from experiments.training import train  # noqa: E402

training_command.define_workdir("/tmp/perceptrax/mnist")
flags.adopt_module_key_flags(training_command)
FLAGS = flags.FLAGS


def main(argv):
  del argv
  config = training_command.config_from_flags("experiments.mnist")
  summary = train.train_and_evaluate(config, FLAGS.workdir, started_at=_STARTED)
  if config.folds:
    cv = summary["cross_validation"]
    logging.info("%d-fold validation accuracy %s; %s", config.folds,
                 "diverged" if cv["validation_accuracy_mean"] is None else
                 f"{cv['validation_accuracy_mean']:.4f} ± {cv['validation_accuracy_std']:.4f}",
                 cli.written(FLAGS.workdir, summary["figures"]))
  else:
    logging.info("test accuracy %.4f, test loss %.4f (model of epoch %d); %s",
                 summary["test_accuracy"], summary["test_loss"], summary["epoch"],
                 cli.written(FLAGS.workdir, summary["figures"]))


if __name__ == "__main__":
  cli.run(main, help_text=lambda: training_command.help_text("experiments.mnist", __doc__))
