"""The objectives by name, and the one a run trains its model for (``networks.objective``)."""

import flax.linen as nn

from data import errors
from experiments.training.objectives import adversarial
from experiments.training.objectives import classification
from experiments.training.objectives import reconstruction
from experiments.training.settings.config import TrainConfig

OBJECTIVES = errors.Registry("objective", {
    "classification": lambda config, model: classification.CLASSIFICATION,
    "reconstruction": lambda config, model: reconstruction.Reconstruction(
        config.reconstruction_loss),
    "elbo": lambda config, model: reconstruction.EvidenceLowerBound(),
    "adversarial": lambda config, model: adversarial.Adversarial(model),
})


def of(config: TrainConfig, model: nn.Module):
  """The objective of ``config``'s model, made for it (one object per run)."""
  from models import networks  # pylint: disable=g-import-not-at-top
  return OBJECTIVES.get(networks.objective(config.model))(config, model)
