r"""Train a generative adversarial network (DCGAN) to draw digits.

    python -m experiments.gan --archive_dir=../shared/data
    python -m experiments.gan --num_epochs=5 --latent_size=64 --discriminator_learning_rate=1e-4

The generator draws 28x28 images from noise z ~ N(0, I) (--latent_size,
default 100) through transposed convolutions; the discriminator tells them
from the dataset's through strided convolutions (``models/gan.py``). Each
step updates the discriminator, then the generator on the non-saturating
loss, each with its own optimizer from the table: --optimizer and
--learning_rate for the generator, --discriminator_optimizer and
--discriminator_learning_rate for the discriminator (defaults: Adam,
α = 2e-4, β1 = 0.5, as DCGAN; batch 64, 20 epochs: about 30 minutes on 2
CPU cores). Every epoch logs both losses, D(x) and D(G(z)), and scores
1000 samples of a fixed noise batch with the dataset's classifier
(--scorer_workdir); the end of the run scores 10 000 (summary.json:
classifier_score beside real_classifier_score, class_shares,
frechet_distance). samples_epoch_<e>.png show the digits forming. Writes the
same workdir outputs as experiments.mnist and resumes the same way.
"""

import time

_STARTED = time.perf_counter()

from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from experiments import cli  # noqa: E402
from experiments import training_command  # noqa: E402
from experiments.training import train  # noqa: E402

training_command.define_workdir("/tmp/perceptrax/gan")
flags.adopt_module_key_flags(training_command)
FLAGS = flags.FLAGS
FLAGS.set_default("model", "dcgan")
FLAGS.set_default("learning_rate", 2e-4)
FLAGS.set_default("b1", 0.5)
FLAGS.set_default("schedule", "constant")
FLAGS.set_default("batch_size", 64)  # twice 128's updates per epoch, the same cost per image
FLAGS.set_default("num_epochs", 20)


def main(argv):
  del argv
  config = training_command.config_from_flags("experiments.gan")
  summary = train.train_and_evaluate(config, FLAGS.workdir, started_at=_STARTED)
  logging.info("classifier score %.3f of 10 000 samples (real test images: %.3f), Fréchet "
               "distance %.2f; %s", summary["classifier_score"], summary["real_classifier_score"],
               summary["frechet_distance"], cli.written(FLAGS.workdir, summary["figures"]))


if __name__ == "__main__":
  cli.run(main, help_text=lambda: training_command.help_text("experiments.gan", __doc__))
