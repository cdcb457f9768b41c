r"""Classify image files with a model trained by experiments.mnist.

    python -m scripts.predict --workdir=/tmp/perceptrax/mnist digit.png other.png

Reads the workdir's latest checkpoint without changing anything there (a run
may still be writing it): the model's settings and its variables (the best
epoch's under early stopping; --member picks a fold's). Each image is
converted to the training data's format by ``experiments/serving/images.py``
(every Pillow mode, transparency composited, EXIF orientation applied, at most
4096x4096 pixels) and scaled as in training. MNIST digits are light on a dark
background: with --invert=auto (the default) dark ink on light paper is
inverted first, x -> 255 - x, and its line says so; --invert=true / false
forces it. A grayscale image of another size than the model's (a photo, a
scan, a large drawing) is framed as MNIST's digits were made: the ink's
bounding box scaled into 20x20 and centred by its mass in 28x28 (--noframe:
only resized, bilinear). Prints one line per image, in argument order: its
path, the class name and its probability ("[low confidence]" below 0.5), or
an error line on stderr for a file that cannot be classified (not an image,
not a regular file: exit status 1, the other images still classified).
"""

import sys

import jax
import numpy as np
from absl import flags

from data import errors
from data.errors import UserError
from experiments import cli
from experiments.serving import images as images_lib
from experiments.training.storage import trained_model

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/perceptrax/mnist", "A workdir written by experiments.mnist.")
flags.DEFINE_integer("member", 0, "Which model of a --folds workdir classifies (its fold).")
flags.DEFINE_enum("invert", "auto", ["auto", "true", "false"],
                  "Invert the images (x -> 255 - x) before classifying; auto: grayscale images "
                  "of dark ink on light paper (unlike MNIST).")
flags.DEFINE_boolean("frame", True, "Frame a grayscale image that is not the model's size as "
                     "MNIST's digits were made (the ink's bounding box scaled into 20x20, centred "
                     "by its mass in 28x28); --noframe only resizes it.")


def main(argv):
  paths = argv[1:]
  if not paths:
    raise UserError("give one or more image files to classify")
  errors.check_integer("member", FLAGS.member, 0, errors.MAX_COUNT)
  trained = trained_model.load_classifier(FLAGS.workdir, FLAGS.member)
  decoded = {}
  for path in paths:
    try:
      decoded[path] = images_lib.read_file(path, trained.input_shape, FLAGS.invert, FLAGS.frame)
    except images_lib.ImageError as e:
      decoded[path] = e
  good = [p for p in paths if not isinstance(decoded[p], Exception)]
  probabilities = {}
  if good:
    batch = np.stack([decoded[p][0] for p in good])
    predicted = np.asarray(jax.jit(trained_model.probability_function(trained))(batch))
    probabilities = dict(zip(good, predicted))
  for path in paths:  # in argument order, results and errors alike
    if path not in probabilities:
      print(f"{path}: error: {decoded[path]}", file=sys.stderr, flush=True)
      continue
    p, k = probabilities[path], int(np.argmax(probabilities[path]))
    notes = [note for note, applies in (
        ("inverted: dark ink on light paper", decoded[path][1] and FLAGS.invert == "auto"),
        ("low confidence", p[k] < images_lib.LOW_CONFIDENCE)) if applies]
    print(f"{path}: {trained.class_names[k]} ({p[k]:.4f})"
          + "".join(f" [{note}]" for note in notes), flush=True)
  if len(good) < len(paths):
    sys.exit(1)


if __name__ == "__main__":
  cli.run(main, takes_arguments=True)
