"""The objectives by name, and the one a config trains its model for."""

from data import errors
from experiments.training import classification
from experiments.training.config import TrainConfig

OBJECTIVES = errors.Registry("objective", {"classification": classification.CLASSIFICATION})


def of(config: TrainConfig):
  """The objective of ``config``'s model (``networks.objective``)."""
  del config
  return OBJECTIVES.get("classification")
