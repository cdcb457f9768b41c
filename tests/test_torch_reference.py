"""The PyTorch twins of ``scripts.benchmark --compare=torch``: the same networks, trained.

PyTorch is an optional extra (``pip install -e '.[bench]'``); without it these
tests are skipped.
"""

import dataclasses

import jax
import numpy as np
import pytest

from data.errors import UserError
from experiments.training.settings import config as config_lib
from models import networks
from scripts import torch_reference

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name,bidirectional", [
    ("mlp", False), ("cnn_small", False), ("cnn", False), ("rnn", False), ("lstm", True),
    ("gru", False), ("gru", True)])
def test_twin_has_the_same_parameter_shapes(name, bidirectional):
  """Every JAX kernel and bias has a PyTorch twin of the same size.

  PyTorch's nn.RNN and nn.LSTM add a second bias b_hh to b_ih (a sum, the same
  model); the GRU's b_hh sits inside the reset gate, as ours does.
  """
  config = config_lib.TrainConfig(model=name, hidden_sizes=(16, 16) if bidirectional else None,
                                  bidirectional=bidirectional or None).resolve()
  model = networks.create_model(name, 10, **{
      s: getattr(config, s) for s in networks.ARCHITECTURE_SETTINGS if networks.takes(name, s)})
  variables = model.init(jax.random.key(0), np.zeros((1, 28, 28, 1)))
  ours = [leaf.size for leaf in jax.tree.leaves(variables["params"])]
  theirs = [p.numel() for n, p in torch_reference.build(name, config).named_parameters()
            if not (name in ("rnn", "lstm") and "bias_hh" in n)]
  assert sorted(ours) == sorted(theirs)


def test_twin_trains_and_reports_its_speed():
  """One epoch of 8 updates on random images runs and reports its images/s and first step."""
  config = dataclasses.replace(config_lib.TrainConfig(), model="mlp", optimizer="sgd",
                               learning_rate=0.1, batch_size=16, num_epochs=1).resolve()
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (200, 28, 28, 1), np.uint8)
  labels = rng.integers(0, 10, 200).astype(np.int32)
  row = torch_reference.train("mlp", config, images, labels, updates_per_epoch=8, compiled=False)
  assert row["images_per_second"] > 0 and row["first_step_seconds"] > 0


@pytest.mark.parametrize("change, message", [
    ({"optimizer": "adagrad"}, "times sgd, momentum, adam"),
    ({"schedule": "warmup_cosine"}, "constant and cosine schedules"),
])
def test_settings_without_an_exact_twin_are_one_line(change, message):
  config = dataclasses.replace(config_lib.TrainConfig(), **change).resolve()
  with pytest.raises(UserError, match=message):
    torch_reference.optimizer(torch_reference.build("mlp", config).parameters(), config)
