"""A trained model read from a workdir: its network, variables and what predicting needs.

Reading changes nothing in the workdir: the checkpoints are opened read-only
and no lock is taken, so predicting or exporting while a run writes the same
workdir never disturbs it (a checkpoint being replaced meanwhile fails its
digest and the next newest is used).
"""

import os
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np
from absl import logging
from flax import linen as nn

from data import datasets
from data import errors
from data import files
from data.errors import UserError
from experiments.training.settings import config as config_lib
from experiments.training.settings import model_settings
from experiments.training.settings.config import TrainConfig
from experiments.training.storage import checkpoints as checkpoints_lib
from models import networks


class TrainedModel(NamedTuple):
  """One member of a trained run, ready to predict."""

  model: nn.Module
  variables: dict  # {"params"[, "batch_stats"]}: the kept epoch's
  config: TrainConfig  # the member's resolved settings
  class_names: tuple[str, ...]
  input_shape: tuple[int, int, int]  # (H, W, C)
  pixel_scaling: tuple[float, float]  # (mean, std) of datasets.to_model_input
  test_metrics: dict | None  # of the finished run, else None


def load(workdir: str, member: int = 0) -> TrainedModel:
  """The workdir's model ``member`` (a fold of a --folds run), rebuilt from its saved settings.

  A sweep's workdir (with its ``sweep.json``) gives its selected
  configuration's first model, from the run that trained it. UserError if
  there is no checkpoint or it does not fit its settings.
  """
  selected = _sweep_selection(workdir)
  if selected is not None:
    run, member, configuration = selected
    logging.info("%s is a sweep: using its selected configuration (%s), model %d of %s",
                 workdir, configuration, member, run)
    return load(os.path.join(workdir, run), member)
  try:
    stacked, manifest = checkpoints_lib.Checkpoints(workdir, read_only=True).restore_model()
  except FileNotFoundError:
    raise UserError(f"no trained model in {workdir}: it has no checkpoints") from None
  errors.check_integer("member", member, 0, len(manifest["members"]) - 1)
  config = config_lib.from_json(manifest["members"][member])
  variables = jax.tree.map(lambda a: a[member], stacked)
  input_shape = tuple(manifest["input_shape"])
  model = model_settings.make_model(config, len(manifest["class_names"]), input_shape)
  expected = jax.eval_shape(lambda: networks.init_variables(model, jax.random.key(0), input_shape))
  if not _same_shapes(variables, expected):
    raise UserError(
        f"the checkpoint in {workdir} does not fit the {config.model} model it was saved "
        "with: the parameter names or shapes differ")
  test_metrics = manifest["test_metrics"][member] if manifest.get("test_metrics") else None
  return TrainedModel(model, variables, config, tuple(manifest["class_names"]), input_shape,
                      tuple(manifest["pixel_scaling"][member]), test_metrics)


def load_classifier(workdir: str, member: int = 0) -> TrainedModel:
  """``load``'s model, refused in one line unless it is a classifier: only classifiers are
  predicted with, exported and served."""
  trained = load(workdir, member)
  objective = model_settings.objective_of(trained.config.model)
  if objective != "classification":
    raise UserError(f"{workdir} holds a {trained.config.model} model (trained for {objective}), "
                    "not a classifier: only experiments.mnist's classifiers are exported, served "
                    "and predicted with")
  return trained


def _sweep_selection(workdir: str) -> tuple[str, int, str] | None:
  """(run directory, member, configuration) of a sweep's selected model; None if not a sweep."""
  path = os.path.join(workdir, "sweep.json")
  if os.path.isdir(os.path.join(workdir, "checkpoints")) or not os.path.exists(path):
    return None
  sweep = files.read_json(path)
  try:
    configuration = sweep["selected"]["configuration"]
    row = next(r for r in sweep["runs"] if r["configuration"] == configuration)
    return row["run"], row["member"], configuration
  except (KeyError, TypeError, StopIteration):
    raise UserError(f"{path} names no selected model that can be found; point --workdir at "
                    "one of its runs/<group>-<run>/ folders") from None


def _same_shapes(variables, expected) -> bool:
  flat, tree = jax.tree.flatten(variables)
  expected_flat, expected_tree = jax.tree.flatten(expected)
  return tree == expected_tree and all(
      np.shape(a) == b.shape for a, b in zip(flat, expected_flat))


def probability_function(trained: TrainedModel) -> Callable[[jax.Array], jax.Array]:
  """uint8 images (N, H, W, C) -> class probabilities softmax(f((x/255 - mean) / std)), float32.

  The variables and the pixel scaling are constants of the function: what
  ``scripts.predict`` runs and what ``scripts.export`` serializes.
  """
  variables, (mean, std) = trained.variables, trained.pixel_scaling

  def probabilities(pixels):
    logits = trained.model.apply(variables, datasets.to_model_input(pixels, mean, std),
                                 train=False)
    return jax.nn.softmax(logits, axis=-1)

  return probabilities
