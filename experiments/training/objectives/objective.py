"""What a model is trained for: the one thing the engine asks of a classifier, an autoencoder,
a VAE or a GAN, and which the loop, checkpoints, sweeps and processes never look inside.

An ``Objective`` is a small object of pure functions and a few names:

  metrics        what each split reports, "loss" first (``{split}_{metric}`` in a
                 run's rows), and ``lower_is_better`` among them;
  pixel_scaling  images are (x/255 - mean) / std with this (mean, std), or None:
                 the config's (x/255, or standardized);
  train_step     one compiled update of a member's state on a batch, and the
                 batch's sums (``steps.gradient_step`` for objectives with one loss);
  outputs        what evaluation keeps of each example (a classifier's logits);
  sums           a split's sums from those outputs (``metrics`` divides them once);
  divergence     why a row shows a model no longer usable, or None;
  test_report    the kept model's test-split report for summary.json, or None;
  epoch_metrics  each member's figures of an epoch beyond the splits' (a GAN's
                 sample scores), and ``hooks``, its own observers;
  finish         the end of a run: the summary's own fields and figures.

Every objective is written for one member (no member axis); ``programs.py``
vmaps it over the K members of a run. ``OBJECTIVES`` names them; a model's
objective is ``networks.objective(model)``.
"""

import math

import jax
import numpy as np


class Objective:
  """The defaults: one network, one optimizer, images x/255 (or standardized)."""

  name = ""
  metrics: tuple[str, ...] = ("loss",)
  lower_is_better = frozenset({"loss"})
  pixel_scaling: tuple[float, float] | None = None
  random_outputs = False  # its evaluation outputs draw random numbers (a key per chunk)

  def optimizer(self, run, member):
    return run.optimizer(member)

  def prepare(self, config) -> None:
    """What the objective needs before a run trains (a GAN's scorer), made once."""
    del config

  def epoch_metrics(self, run, variables, data) -> list[dict]:
    """Each member's figures beyond the splits' metrics, added to its row of the epoch."""
    del variables, data
    return [{} for _ in range(run.size)]

  def hooks(self, directory: str | None) -> list:
    """The objective's own observers of the loop (a GAN's sample grid every epoch)."""
    del directory
    return []

  def train_step(self, state, images, labels, chunk_size):
    raise NotImplementedError

  def outputs(self, apply_fn, variables, images, key):
    raise NotImplementedError

  def sums(self, outputs, labels, mask):
    raise NotImplementedError

  def metrics_of(self, sums) -> dict[str, float]:
    """One member's metrics from its sums on the host: each sum over ``count``, in float64."""
    count = float(sums["count"])
    return {name: float(sums[name]) / count for name in self.metrics}

  def divergence(self, row: dict, num_classes: int) -> str | None:
    """A loss that is NaN or infinite (the first such, by name)."""
    del num_classes
    return non_finite(row)

  def test_report(self, outputs, labels, class_names) -> dict | None:
    del outputs, labels, class_names
    return None

  def finish(self, run, loop, data, workdir: str | None, plots: bool) -> tuple[dict, list]:
    """A single model's end of run (its ``loop.Loop``): the summary's own fields and the
    paths of the figures written into ``workdir``."""
    del run, loop, data, workdir, plots
    return {}, []


def non_finite(row: dict) -> str | None:
  """Why ``row`` has a loss that is NaN or infinite ("train loss nan"), or None."""
  for key, value in row.items():
    if key.endswith("_loss") and not math.isfinite(value):
      return f"{key.replace('_', ' ')} {value}"
  return None


def as_numpy(tree):
  return jax.tree.map(np.asarray, tree)
