"""What a run reports beyond its metrics, by its objective: each epoch's extra figures, its own
hooks, and at the end the summary's own fields and figures.

  classification  the per-class test table in the log; the classifier's figures
                  (``outputs/report.py``);
  reconstruction  the test MSE per pixel beside PCA's with as many components as
                  the code (a linear autoencoder can at best equal it); reconstructions
                  and curves;
  elbo            the test -ELBO and the samples' scores; samples, reconstructions,
                  a 2-D latent space and the decoded manifold;
  adversarial     the samples' scores; samples and the scores' curves.

The generative ones score samples with the dataset's classifier every epoch and
draw a grid of samples after every epoch (``generation.py``); ``make`` loads (or,
once, trains) that classifier before the run (``scorer.py``).
"""

from absl import logging

from experiments.training.outputs import report
from experiments.training.processes import sharding
from experiments.training.reports import generation
from experiments.training.reports import scorer
from experiments.training.settings import model_settings
from models import pca


class Report:
  """Nothing beyond the metrics."""

  epoch_metrics = None  # (run, variables, data) -> each member's extra figures of an epoch

  def hooks(self, directory: str | None) -> list:
    del directory
    return []

  def finish(self, run, result, data, workdir: str | None, plots: bool) -> tuple[dict, list]:
    """A single model's end of run (``result``: its final ``Loop``): the summary's own fields
    and the paths of the figures written into ``workdir`` (None: this process writes none)."""
    del run, result, data, workdir, plots
    return {}, []


class ClassificationReport(Report):

  def finish(self, run, result, data, workdir, plots) -> tuple[dict, list]:
    test_metrics = result.test_metrics[0]
    logging.info("test metrics of the model of epoch %d:\n%s", result.records[0].best_epoch,
                 report.per_class_table(test_metrics))
    if not (plots and workdir):
      return {}, []
    return {}, report.write_figures(
        workdir, result.records[0].history, sharding.to_host(result.kept), run.model,
        data.test_images, data.test_labels, result.test_outputs, result.pixel_scaling[0],
        data.class_names, test_metrics)


class ReconstructionReport(Report):

  def finish(self, run, result, data, workdir, plots) -> tuple[dict, list]:
    components = run.model.code_size
    baseline = pca.test_reconstruction_mse(data.train_images, data.test_images, components)
    test = result.test_metrics[0]["reconstruction_mse"]
    logging.info("test reconstruction MSE per pixel %.5f; PCA with %d components %.5f",
                 test, components, baseline)
    fields = {"test_reconstruction_mse": test, "pca_test_reconstruction_mse": baseline,
              "pca_components": components}
    figures = (generation.reconstruction_figures(run, result, data, workdir)
               if plots and workdir else [])
    return fields, figures


class _GenerativeReport(Report):
  """Samples scored every epoch and at the end; a grid of samples after every epoch."""

  def __init__(self, scores: generation.SampleScores):
    self.scores = scores
    self.epoch_metrics = scores.epoch_metrics

  def hooks(self, directory: str | None) -> list:
    return [generation.SampleGrids(directory)] if directory else []


class ElboReport(_GenerativeReport):

  def finish(self, run, result, data, workdir, plots) -> tuple[dict, list]:
    fields = {"test_neg_elbo": result.test_metrics[0]["loss"],
              **self.scores.final(run, result, data)}
    figures = generation.vae_figures(run, result, data, workdir) if plots and workdir else []
    return fields, figures


class AdversarialReport(_GenerativeReport):

  def finish(self, run, result, data, workdir, plots) -> tuple[dict, list]:
    fields = self.scores.final(run, result, data)
    figures = generation.gan_figures(run, result, workdir) if plots and workdir else []
    return fields, figures


def make(config, train_classifier) -> Report:
  """The report of ``config``'s objective; a generative one's scorer loaded, or trained once
  with ``train_classifier(config, workdir)`` (``scorer.load``)."""
  objective = model_settings.objective_of(config.model)
  if objective == "classification":
    return ClassificationReport()
  if objective == "reconstruction":
    return ReconstructionReport()
  scores = generation.SampleScores(scorer.load(config, train_classifier))
  return ElboReport(scores) if objective == "elbo" else AdversarialReport(scores)
