"""What a generative run reports: its samples scored by the dataset's classifier, its figures.

``SampleScores.epoch_metrics`` scores 1000 samples of each member from a fixed
noise key every epoch (cheap: rows' ``sample_classifier_score`` and
``sample_frechet_distance``, against 1000 real test images); ``final`` scores
10 000 at the end of a run, beside the real test images' classifier score
(the ceiling). The figures: reconstructions of test images (the
autoencoders), a grid of samples from the fixed noise key (the VAE and, every
epoch, ``SampleGrids``, so the figures show the digits forming), a VAE's 2-D
latent space and the decoded grid over it, and the scores' curves.
"""

import os

import jax
import numpy as np
from absl import logging

from experiments.training.loop.loop import Hook
from experiments.training.objectives.reconstruction import pixels
from experiments.training.processes import sharding
from models import generator_scores

SAMPLE_SEED = 1  # the fixed noise of the sample grids and scores
EPOCH_SAMPLES = 1000
FINAL_SAMPLES = 10_000
GRID = 64


class SampleScores:
  """The dataset's classifier (``scorer.Scorer``) judging a run's samples; the real test
  images' figures computed once per count."""

  def __init__(self, scorer):
    self._scorer, self._real = scorer, {}

  def real(self, data, n: int):
    """The scorer's probabilities and feature statistics of the first n real test images."""
    if n not in self._real:
      probabilities, features = self._scorer.score(data.test_images[:n])
      self._real[n] = probabilities, generator_scores.feature_statistics(features)
    return self._real[n]

  def scores(self, run, variables, data, n: int) -> dict:
    """n samples' classifier score, class shares and Fréchet distance to real test images."""
    samples = fixed_samples(run, variables, n)
    probabilities, features = self._scorer.score(samples)
    _, (real_mean, real_covariance) = self.real(data, n)
    return {"classifier_score": generator_scores.classifier_score(probabilities),
            "class_shares": generator_scores.class_shares(probabilities),
            "frechet_distance": generator_scores.frechet_distance(
                *generator_scores.feature_statistics(features), real_mean, real_covariance)}

  def epoch_metrics(self, run, variables, data) -> list[dict]:
    """Each member's scores of ``EPOCH_SAMPLES`` samples, for its row of the epoch."""
    variables = sharding.to_host(variables)
    out = []
    for k in range(run.size):
      scores = self.scores(run, _member_variables(run, variables, k), data, EPOCH_SAMPLES)
      out.append({"sample_classifier_score": scores["classifier_score"],
                  "sample_frechet_distance": scores["frechet_distance"]})
    return out

  def final(self, run, loop, data) -> dict:
    """The summary's scores of ``FINAL_SAMPLES`` samples of the kept model, and the ceiling."""
    scores = self.scores(run, sharding.to_host(loop.kept), data, FINAL_SAMPLES)
    real_probabilities, _ = self.real(data, FINAL_SAMPLES)
    scores["real_classifier_score"] = generator_scores.classifier_score(real_probabilities)
    logging.info("%d samples: classifier score %.3f (real test images: %.3f), Fréchet distance "
                 "%.2f, class shares %s", FINAL_SAMPLES, scores["classifier_score"],
                 scores["real_classifier_score"], scores["frechet_distance"],
                 " ".join(f"{s:.3f}" for s in scores["class_shares"]))
    return scores


def _member_variables(run, variables, k: int) -> dict:
  return variables if run.size == 1 else jax.tree.map(lambda a: a[k], variables)


def fixed_samples(run, variables, n: int) -> np.ndarray:
  """n of the model's samples from the fixed noise key ``SAMPLE_SEED``, uint8 (n, H, W, C)."""
  return np.asarray(run.objective.samples(run.model, variables, jax.random.key(SAMPLE_SEED), n))


def _grid(images: np.ndarray, path: str, title: str, columns: int = 8) -> str:
  from experiments.training.outputs import plots  # imported here: matplotlib
  return plots.image_grid(images, path, title, columns)


def reconstruction_figures(run, loop, data, workdir: str) -> list[str]:
  """Test images above their reconstructions, and the training curves."""
  from experiments.training.outputs import plots
  variables = sharding.to_host(loop.kept)
  images = data.test_images[:16]
  logits = run.objective.reconstruction_logits(run.model, variables,
                                               images.astype(np.float32) / 255.0)
  paths = [_grid(np.concatenate([images, pixels(logits)]),
                 os.path.join(workdir, "reconstructions.png"),
                 "test images (top) and their reconstructions (bottom)", columns=16)]
  paths.append(plots.objective_curves(loop.records[0].history, run.objective.metrics,
                                      os.path.join(workdir, "training_curves.png")))
  return paths


def vae_figures(run, loop, data, workdir: str) -> list[str]:
  """Samples, reconstructions, the curves; with a 2-D latent, the codes and the manifold."""
  from experiments.training.outputs import plots
  variables = sharding.to_host(loop.kept)
  model = run.model
  paths = [_grid(fixed_samples(run, variables, GRID),
                 os.path.join(workdir, "samples.png"), "samples: decoded z ~ N(0, I)")]
  paths += reconstruction_figures(run, loop, data, workdir)
  if model.latent_size == 2:
    mean, _ = model.apply(variables, data.test_images.astype(np.float32) / 255.0,
                          method=model.encode)
    paths.append(plots.latent_codes(np.asarray(mean), data.test_labels, data.class_names,
                                    os.path.join(workdir, "latent_space.png")))
    paths.append(_grid(latent_manifold(model, variables), os.path.join(workdir, "manifold.png"),
                       "decoded grid over the latent plane", columns=20))
  return paths


def latent_manifold(model, variables, side: int = 20) -> np.ndarray:
  """The decoded images of a side x side grid of z at the normal's quantiles 0.05..0.95."""
  from jax.scipy.stats import norm
  values = norm.ppf(np.linspace(0.05, 0.95, side))
  z = np.stack(np.meshgrid(values, values[::-1]), -1).reshape(-1, 2)
  return pixels(model.apply(variables, z, method=model.decode))


def gan_figures(run, loop, workdir: str) -> list[str]:
  """The kept generator's samples and the epochs' sample scores."""
  from experiments.training.outputs import plots
  variables = sharding.to_host(loop.kept)
  paths = [_grid(fixed_samples(run, variables, GRID), os.path.join(workdir, "samples.png"),
                 "samples from the fixed noise batch")]
  paths.append(plots.objective_curves(loop.records[0].history, run.objective.metrics,
                                      os.path.join(workdir, "training_curves.png")))
  paths.append(plots.sample_scores(loop.records[0].history,
                                   os.path.join(workdir, "sample_scores.png")))
  return paths


class SampleGrids(Hook):
  """After every epoch, the first member's samples from the fixed noise as
  ``samples_epoch_<e>.png``: the run's figures show its images forming."""

  writes = True

  def __init__(self, directory: str):
    self._directory = directory

  def epoch(self, loop) -> None:
    if loop.all_diverged or not loop.run.config.plots:
      return
    variables = _member_variables(loop.run, sharding.to_host(loop.state.variables), 0)
    _grid(fixed_samples(loop.run, variables, GRID),
          os.path.join(self._directory, f"samples_epoch_{loop.epoch:02d}.png"),
          f"samples after epoch {loop.epoch}")
