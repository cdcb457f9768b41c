"""How far the images a model receives have drifted from its training images.

An image set's pixel statistics are the mean and standard deviation of x/255
and the histogram of its pixel values in ``BINS`` equal bins of [0, 255],
as fractions p_i. A window of incoming images (fractions q_i) is compared with
the training data's by the population stability index

    PSI = Σ_i (q_i - p_i) ln(q_i / p_i),    p_i, q_i floored at 1e-4,

which is 0 for equal histograms. The drift flag is raised when PSI exceeds
``THRESHOLD`` = 0.2 (the usual reading: below 0.1 stable, above 0.2 a shift
worth acting on) over at least ``MIN_IMAGES`` images.
"""

import collections

import numpy as np

from data import datasets

BINS = 16
THRESHOLD = 0.2
MIN_IMAGES = 100
_FLOOR = 1e-4


def histogram(images: np.ndarray) -> np.ndarray:
  """Counts of uint8 ``images``' pixels in ``BINS`` equal bins of [0, 255], int64."""
  return np.bincount(images.reshape(-1) // (256 // BINS), minlength=BINS).astype(np.int64)


def statistics(images: np.ndarray) -> dict:
  """The pixel statistics of uint8 ``images`` (N, H, W, C) as JSON: mean, std, histogram, images."""
  mean, std = datasets.pixel_statistics(images)
  return {"mean": mean, "std": std, "histogram": (histogram(images) / images.size).tolist(),
          "images": int(len(images))}


def psi(expected: np.ndarray, observed: np.ndarray) -> float:
  """The population stability index of two histograms (counts or fractions)."""
  p = np.maximum(np.asarray(expected, np.float64) / np.sum(expected), _FLOOR)
  q = np.maximum(np.asarray(observed, np.float64) / np.sum(observed), _FLOOR)
  return float(np.sum((q - p) * np.log(q / p)))


class Window:
  """The last ``size`` images, compared with the training data's pixel histogram.

  Adding an image keeps a reference to it (no work per request); the
  histogram and the pixel mean are computed over the window when reported.
  """

  def __init__(self, training: dict, size: int = 1000):
    self.training = training
    self._images = collections.deque(maxlen=size)

  def add(self, images: np.ndarray) -> None:
    self._images.extend(images)

  def report(self) -> dict:
    """PSI against the training histogram, the pixel means, and whether it has drifted."""
    n = len(self._images)
    window = np.stack(self._images) if n else None
    score = psi(self.training["histogram"], histogram(window)) if n else None
    return {"images": n, "psi": score, "threshold": THRESHOLD, "min_images": MIN_IMAGES,
            "drifted": bool(n >= MIN_IMAGES and score > THRESHOLD),
            "pixel_mean": float(window.mean()) / 255.0 if n else None,
            "training_pixel_mean": self.training["mean"]}
