r"""Classify image files with a model trained by experiments.mnist.

    python -m scripts.predict --workdir=/tmp/perceptrax/mnist digit.png other.png

Reads the workdir's config.json and its latest checkpoint (the best epoch's
model under early stopping). Each image is converted to the training data's
format: grayscale (or RGB for 3-channel datasets), resized to the training
images' size (28x28 for MNIST) with bilinear interpolation, scaled to x/255
and standardized with the training statistics when the run was. MNIST digits
are light on a dark background; pass --invert for dark digits on light paper.
Prints one line per image: its path, the class name and its probability.
A file that cannot be classified gets one error line and the exit status is 1,
but the other images are still classified.
"""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from PIL import Image
from PIL import UnidentifiedImageError

from data import datasets
from experiments import checkpoints as checkpoints_lib
from experiments import cli
from experiments import config as config_lib
from models import networks

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/perceptrax/mnist", "A workdir written by experiments.mnist.")
flags.DEFINE_boolean("invert", False, "Invert the images (x -> 255 - x) before classifying.")


def load_model(workdir: str):
  """The workdir's model, its saved variables, the record and the config; ValueError if unusable."""
  config_path = os.path.join(workdir, "config.json")
  if not os.path.exists(config_path):
    raise ValueError(f"no trained model in {workdir}: config.json is missing")
  config = config_lib.load_config(config_path)
  try:
    variables, record = checkpoints_lib.Checkpoints(workdir, create=False).restore_model()
  except FileNotFoundError as e:
    raise ValueError(str(e)) from e
  model = networks.create_model(config.model, datasets.NUM_CLASSES[config.dataset],
                                **config.model_kwargs())
  input_shape = tuple(record["input_shape"])
  expected = jax.eval_shape(lambda: networks.init_variables(model, jax.random.key(0), input_shape))
  if not _same_shapes(variables, expected):
    raise ValueError(
        f"the checkpoint in {workdir} does not fit the {config.model} model of its "
        "config.json: the parameter names or shapes differ")
  return model, variables, record, config


def _same_shapes(variables, expected) -> bool:
  flat, tree = jax.tree.flatten(variables)
  expected_flat, expected_tree = jax.tree.flatten(expected)
  return tree == expected_tree and all(
      np.shape(a) == b.shape for a, b in zip(flat, expected_flat))


def load_image(path: str, input_shape: tuple[int, ...], invert: bool) -> np.ndarray:
  """The image at ``path`` as uint8 (H, W, C) in the training data's format."""
  height, width, channels = input_shape
  with Image.open(path) as image:
    image = image.convert("L" if channels == 1 else "RGB").resize(
        (width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, np.uint8).reshape(height, width, channels)
  return 255 - pixels if invert else pixels


def main(argv):
  paths = argv[1:]
  if not paths:
    raise ValueError("give one or more image files to classify")
  model, variables, record, config = load_model(FLAGS.workdir)
  class_names = datasets.CLASS_NAMES[config.dataset]
  input_shape = tuple(record["input_shape"])
  images, readable, failures = [], [], 0
  for path in paths:
    try:
      images.append(load_image(path, input_shape, FLAGS.invert))
      readable.append(path)
    except FileNotFoundError:
      print(f"{path}: error: no such file", file=sys.stderr)
      failures += 1
    except (UnidentifiedImageError, OSError, ValueError) as e:
      print(f"{path}: error: not a readable image ({type(e).__name__})", file=sys.stderr)
      failures += 1
  if readable:
    inputs = datasets.to_model_input(np.stack(images), record["pixel_mean"], record["pixel_std"])
    logits = model.apply(variables, jnp.asarray(inputs), train=False)
    probabilities = np.asarray(jax.nn.softmax(logits, axis=-1))
    for path, p in zip(readable, probabilities):
      k = int(np.argmax(p))
      print(f"{path}: {class_names[k]} ({p[k]:.4f})")
  if failures:
    sys.exit(1)


if __name__ == "__main__":
  cli.run(main)
