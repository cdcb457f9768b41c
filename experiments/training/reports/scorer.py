"""The judge of generated images: the project's own classifier of the dataset, and its features.

``load(config)`` reads the classifier in ``config.scorer_workdir`` (default:
the README's main job, /tmp/perceptrax/mnist) when it is a ConvNet without
batch norm trained on the same dataset; otherwise it trains cnn_small for two
epochs on the dataset into ~/.cache/perceptrax/scorer/<dataset> once (about
a minute on 2 cores) and reads it from there later. ``Scorer.score`` gives
class probabilities p(y|x) and the penultimate layer's features (the last
hidden dense layer after its ReLU) of uint8 images, in chunks.
"""

import dataclasses
import functools
import os
from typing import NamedTuple

import flax.linen as nn
import jax
import numpy as np
from absl import logging

from data import datasets
from data.errors import UserError
from experiments.training.settings.config import TrainConfig
from experiments.training.storage import trained_model

DEFAULT_WORKDIR = "/tmp/perceptrax/mnist"
CACHE = os.path.join("~", ".cache", "perceptrax", "scorer")
CHUNK = 1000


class Scorer(NamedTuple):
  """A classifier's probabilities and penultimate features of uint8 images (N, H, W, C)."""

  where: str
  function: object  # jitted: uint8 chunk -> (probabilities (n, K), features (n, D))

  def score(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probabilities, features = [], []
    for start in range(0, len(images), CHUNK):
      p, f = self.function(images[start:start + CHUNK])
      probabilities.append(np.asarray(p))
      features.append(np.asarray(f))
    return np.concatenate(probabilities), np.concatenate(features)


def _usable(trained, dataset: str) -> bool:
  config = trained.config
  return (config.dataset == dataset and config.model in ("cnn", "cnn_small")
          and not config.batch_norm)


def _function(trained):
  """uint8 images -> (softmax probabilities, relu of the last hidden dense layer's output)."""
  mean, std = trained.pixel_scaling
  last_hidden = f"Dense_{len(trained.model.dense_sizes) - 1}"

  def score(variables, pixels):
    logits, state = trained.model.apply(
        variables, datasets.to_model_input(pixels, mean, std), train=False,
        capture_intermediates=lambda module, _: isinstance(module, nn.Dense),
        mutable=["intermediates"])
    features = state["intermediates"][last_hidden]["__call__"][0]
    return jax.nn.softmax(logits, -1), jax.nn.relu(features)

  return functools.partial(jax.jit(score), trained.variables)  # arguments, not folded constants


def load(config, train_classifier) -> Scorer:
  """The scorer of ``config.dataset`` (module docstring), trained when missing by
  ``train_classifier(config, workdir)`` (``train.train_and_evaluate``); UserError if it cannot
  be made."""
  workdir = config.scorer_workdir or DEFAULT_WORKDIR
  if os.path.isdir(os.path.join(workdir, "checkpoints")):
    try:
      trained = trained_model.load(workdir)
      if _usable(trained, config.dataset):
        return Scorer(workdir, _function(trained))
    except UserError as e:
      logging.info("the classifier in %s cannot score: %s", workdir, e)
  cache = os.path.expanduser(os.path.join(CACHE, config.dataset))
  if not os.path.exists(os.path.join(cache, "summary.json")):
    logging.info("training the %s classifier that scores generated images into %s (once)",
                 config.dataset, cache)
    judge = dataclasses.replace(
        TrainConfig(), dataset=config.dataset, model="cnn_small", num_epochs=2, plots=False,
        tensorboard=False, progress=config.progress, archive_dir=config.archive_dir,
        tfds_data_dir=config.tfds_data_dir).resolve()
    train_classifier(judge, cache)
  try:
    trained = trained_model.load(cache)
  except UserError as e:
    raise UserError(f"the scorer cached in {cache} cannot be read ({e}); delete that folder to "
                    "train it again") from None
  return Scorer(cache, _function(trained))
