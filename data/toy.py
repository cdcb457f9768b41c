"""Small generated datasets for the single-layer rules: logic gates and Gaussian blobs."""

from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
  images: np.ndarray  # float32 (N, D): the inputs, flat
  labels: np.ndarray  # int32 (N,)

GATES = {
    "and": (0, 0, 0, 1),
    "or": (0, 1, 1, 1),
    "xor": (0, 1, 1, 0),
}
INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)


def logic_gate(name: str) -> Split:
  """The four inputs {0,1}² with the gate's output as the label."""
  return Split(INPUTS, np.array(GATES[name], np.int32))


def blobs(num_examples: int, seed: int, separation: float = 4.0) -> Split:
  """Two 2-D Gaussian blobs (standard deviation 0.5) whose centres are ``separation`` apart.

  Labels alternate 0, 1; with the default separation the classes are
  linearly separable with overwhelming probability for a few hundred points.
  """
  rng = np.random.default_rng(seed)
  labels = np.arange(num_examples, dtype=np.int32) % 2
  centres = np.array([[-separation / 2, 0.0], [separation / 2, 0.0]], np.float32)
  points = centres[labels] + rng.normal(size=(num_examples, 2)).astype(np.float32) * 0.5
  return Split(points.astype(np.float32), labels)
