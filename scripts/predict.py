r"""Classify image files with a model trained by experiments.mnist.

    python -m scripts.predict --workdir=/tmp/perceptrax/mnist digit.png other.png

Reads the workdir's latest checkpoint: the model's settings and its
variables (the best epoch's under early stopping; --member picks a fold's). Each image is converted to the training data's
format: grayscale (or RGB for 3-channel datasets), resized to the training
images' size (28x28 for MNIST) with bilinear interpolation, scaled to x/255
and standardized with the training statistics when the run was. MNIST digits
are light on a dark background: with --invert=auto (the default) a grayscale
image whose border is lighter than mid-gray (dark ink on light paper) is
inverted first, x -> 255 - x, and its line says so; --invert=true / false forces it.
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
from experiments import cli
from experiments.training import checkpoints as checkpoints_lib
from experiments.training import config as config_lib
from experiments.training import run as run_lib
from models import networks
from models.registry import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/perceptrax/mnist", "A workdir written by experiments.mnist.")
flags.DEFINE_integer("member", 0, "Which model of a --folds workdir classifies (its fold).")
flags.DEFINE_enum("invert", "auto", ["auto", "true", "false"],
                  "Invert the images (x -> 255 - x) before classifying; auto: grayscale images "
                  "with a light border (dark on light, unlike MNIST).")


def load_model(workdir: str, member: int = 0):
  """The workdir's model, a member's saved variables, the record and the member's config.

  The model is rebuilt from the settings saved in the checkpoint itself.
  UserError if there is no checkpoint or it does not fit its settings.
  """
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    raise UserError(f"no trained model in {workdir}: it has no checkpoints")
  try:
    stacked, record = checkpoints_lib.Checkpoints(workdir).restore_model()
  except FileNotFoundError as e:
    raise UserError(str(e)) from e
  config_lib.check_integer("member", member, 0, len(record["members"]) - 1)
  config = config_lib.from_json(record["members"][member])
  variables = jax.tree.map(lambda a: a[member], stacked)
  model = run_lib.make_model(config, len(record["class_names"]))
  input_shape = tuple(record["input_shape"])
  expected = jax.eval_shape(lambda: networks.init_variables(model, jax.random.key(0), input_shape))
  if not _same_shapes(variables, expected):
    raise UserError(
        f"the checkpoint in {workdir} does not fit the {config.model} model it was saved "
        "with: the parameter names or shapes differ")
  return model, variables, record, config


def _same_shapes(variables, expected) -> bool:
  flat, tree = jax.tree.flatten(variables)
  expected_flat, expected_tree = jax.tree.flatten(expected)
  return tree == expected_tree and all(
      np.shape(a) == b.shape for a, b in zip(flat, expected_flat))


def light_background(pixels: np.ndarray) -> bool:
  """Whether the mean of an (H, W, C) uint8 image's outermost rows and columns exceeds 127.5."""
  border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
  return float(border.mean()) > 127.5


def load_image(path: str, input_shape: tuple[int, ...], invert: str) -> tuple[np.ndarray, bool]:
  """The image at ``path`` as uint8 (H, W, C) in the training data's format; whether inverted."""
  height, width, channels = input_shape
  with Image.open(path) as image:
    image = image.convert("L" if channels == 1 else "RGB").resize(
        (width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, np.uint8).reshape(height, width, channels)
  inverted = invert == "true" or (invert == "auto" and channels == 1 and light_background(pixels))
  return (255 - pixels if inverted else pixels), inverted


def main(argv):
  paths = argv[1:]
  if not paths:
    raise UserError("give one or more image files to classify")
  config_lib.check_integer("member", FLAGS.member, 0, config_lib.MAX_COUNT)
  model, variables, record, _ = load_model(FLAGS.workdir, FLAGS.member)
  class_names = record["class_names"]
  input_shape = tuple(record["input_shape"])
  images, readable, inverted, failures = [], [], [], 0
  for path in paths:
    try:
      pixels, was_inverted = load_image(path, input_shape, FLAGS.invert)
      images.append(pixels)
      readable.append(path)
      inverted.append(was_inverted)
    except FileNotFoundError:
      print(f"{path}: error: no such file", file=sys.stderr)
      failures += 1
    except (UnidentifiedImageError, OSError, ValueError) as e:
      print(f"{path}: error: not a readable image ({type(e).__name__})", file=sys.stderr)
      failures += 1
  if readable:
    inputs = datasets.to_model_input(np.stack(images), *record["pixel_scaling"][FLAGS.member])
    logits = model.apply(variables, jnp.asarray(inputs), train=False)
    probabilities = np.asarray(jax.nn.softmax(logits, axis=-1))
    for path, p, was_inverted in zip(readable, probabilities, inverted):
      k = int(np.argmax(p))
      note = " [inverted: light background]" if was_inverted and FLAGS.invert == "auto" else ""
      print(f"{path}: {class_names[k]} ({p[k]:.4f}){note}")
  if failures:
    sys.exit(1)


if __name__ == "__main__":
  cli.run(main, takes_arguments=True)
