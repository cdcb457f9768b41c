"""Each objective's math by name (the registry of objectives, with their models, settings and
entrypoints, is ``settings/model_settings.OBJECTIVES``), and the one a run trains its model for."""

import flax.linen as nn

from experiments.training.objectives import adversarial
from experiments.training.objectives import classification
from experiments.training.objectives import reconstruction
from experiments.training.settings import model_settings
from experiments.training.settings.config import TrainConfig

_MAKE = {
    "classification": lambda config, model: classification.CLASSIFICATION,
    "reconstruction": lambda config, model: reconstruction.Reconstruction(
        config.reconstruction_loss),
    "elbo": lambda config, model: reconstruction.EvidenceLowerBound(),
    "adversarial": lambda config, model: adversarial.Adversarial(model),
}


def of(config: TrainConfig, model: nn.Module):
  """The objective of ``config``'s model, made for it (one object per run)."""
  return _MAKE[model_settings.objective_of(config.model)](config, model)
