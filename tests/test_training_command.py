"""What the training entrypoints share (experiments/training_command.py): each one's --help lists
the settings of the models it trains, grouped, and none that it refuses."""

import re
import subprocess
import sys

import pytest

from data.errors import UserError
from experiments.training.settings.config import TrainConfig
from tests.helpers import ROOT

# A value other than the default for each setting that some model lacks.
OTHER_VALUE = {"hidden_sizes": (8,), "activation": "tanh", "batch_norm": True,
               "bidirectional": True, "sequence": "pixels", "code_size": 8, "latent_size": 2,
               "reconstruction_loss": "mse", "discriminator_optimizer": "sgd",
               "discriminator_learning_rate": 0.1, "scorer_workdir": "/tmp", "standardize": True,
               "dropout": 0.1, "folds": 2, "patience": 1, "l1": 1e-4, "l2": 1e-4,
               "weight_decay": 1e-4, "gd_mode": "stochastic"}
ENTRYPOINTS = {"experiments.mnist": ("mlp", "cnn", "cnn_small", "cifar_convnet", "rnn", "lstm",
                                     "gru"),
               "experiments.autoencoder": ("ae", "conv_ae", "vae"),
               "experiments.gan": ("dcgan",)}


def _accepts(model: str, setting: str) -> bool:
  try:
    TrainConfig(model=model, **{setting: OTHER_VALUE[setting]}).resolve()
  except UserError as e:
    assert "does not apply to" in str(e) or "needs" in str(e), str(e)
    return False
  return True


@pytest.mark.parametrize("entrypoint,models", ENTRYPOINTS.items())
def test_help_lists_the_settings_its_models_take_and_none_they_all_refuse(entrypoint, models):
  result = subprocess.run([sys.executable, "-m", entrypoint, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  text = result.stdout
  listed = set(re.findall(r"^  --(?:\[no\])?(\w+):", text, re.M))
  assert f"\n{entrypoint} trains {', '.join(models)}. Flags" in text
  for setting in OTHER_VALUE:
    taken = [m for m in models if _accepts(m, setting)]
    assert (setting in listed) == bool(taken), (setting, taken)
    if taken and len(taken) < len(models):  # a model's own setting says which models take it
      line = re.search(rf"^  --(?:\[no\])?{setting}:.*?(?=^  --|^\S|\Z)", text, re.M | re.S)
      assert f"Taken by {', '.join(taken)}." in " ".join(line.group(0).split())
  titles = re.findall(r"^(\S[^:\n]*):$", text.split(f"{entrypoint} trains")[1], re.M)
  assert titles[0] == "data" and titles[-2:] == ["outputs", "processes"]
