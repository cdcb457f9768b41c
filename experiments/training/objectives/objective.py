"""What a model is trained for: the math the loop asks of a classifier, an autoencoder, a VAE
or a GAN, and which the loop, checkpoints, sweeps and processes never look inside.

An ``Objective`` is a small object of pure functions and two values:

  metrics        what each split reports, "loss" first (``{split}_{metric}`` in a
                 run's rows);
  pixel_scaling  images are (x/255 - mean) / std with this (mean, std), or None:
                 the config's (x/255, or standardized);
  optimizer      a member's optimizer (a GAN's: one per network);
  train_step     one compiled update of a member's state on a batch, and the
                 batch's sums (``OneLoss``: the one gradient step on one loss);
  outputs        what evaluation keeps of each example (a classifier's logits);
  sums           a split's sums from those outputs, "count" among them
                 (``metrics_of`` divides them once);
  divergence     why a row shows a model no longer usable, or None;
  test_report    the kept model's test-split report for summary.json, or None.

Every objective is written for one member (no member axis); ``loop/programs.py``
vmaps it over the K members of a run. What a run reports beyond its metrics (a
generator's scores, figures) is ``experiments/training/reports/``'s.
"""

import math

from experiments.training.objectives import gradient_step


class Objective:
  """The defaults: one network, one optimizer, images x/255 (or standardized)."""

  metrics: tuple[str, ...] = ("loss",)
  pixel_scaling: tuple[float, float] | None = None

  def optimizer(self, run, member):
    return run.optimizer(member)

  def train_step(self, state, images, labels, chunk_size):
    raise NotImplementedError

  def outputs(self, apply_fn, variables, images, key):
    raise NotImplementedError

  def sums(self, outputs, labels, mask=None) -> dict:
    raise NotImplementedError

  def divergence(self, row: dict, num_classes: int) -> str | None:
    """A loss that is NaN or infinite (the first such, by name)."""
    del num_classes
    return non_finite(row)

  def test_report(self, outputs, labels, class_names) -> dict | None:
    del outputs, labels, class_names
    return None


class OneLoss(Objective):
  """An objective of one network trained on one loss by the one gradient step.

  The network's output on a batch becomes the per-example outputs evaluation
  keeps (``_evaluated``); their ``sums`` hold the loss summed over the batch,
  and the step descends on Σ_n ℓ_n / B. Evaluation runs the same network in
  evaluation mode, so a split's metrics and a batch's are one computation.
  """

  def _rngs(self, key, train: bool) -> dict:
    """The network's random streams besides dropout's: none."""
    del key, train
    return {}

  def _evaluated(self, network_output, images):
    """What evaluation keeps of the network's output: the output itself."""
    del images
    return network_output

  def train_step(self, state, images, labels, chunk_size):
    batch_size = labels.shape[0]

    def loss(params, x, y, mask, key):
      out, batch_stats = gradient_step.apply_train(state, params, x, key,
                                                   **self._rngs(key, train=True))
      sums = self.sums(self._evaluated(out, x), y, mask)
      return sums["loss"] / batch_size, (sums, batch_stats)

    return gradient_step.gradient_step(loss, state, images, labels, chunk_size)

  def outputs(self, apply_fn, variables, images, key):
    return self._evaluated(apply_fn(variables, images, train=False,
                                    **self._rngs(key, train=False)), images)


def metrics_of(objective: Objective, sums) -> dict[str, float]:
  """One member's metrics from its sums on the host: each sum over ``count``, in float64."""
  count = float(sums["count"])
  return {name: float(sums[name]) / count for name in objective.metrics}


def non_finite(row: dict) -> str | None:
  """Why ``row`` has a loss that is NaN or infinite ("train loss nan"), or None."""
  for key, value in row.items():
    if key.endswith("_loss") and not math.isfinite(value):
      return f"{key.replace('_', ' ')} {value}"
  return None
