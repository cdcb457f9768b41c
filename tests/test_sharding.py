"""Data-parallel training and sharded sweeps on 2 simulated CPU devices vs 1 device.

XLA fixes the device count when the backend starts, so each layout runs in
its own process (``--xla_force_host_platform_device_count``).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow

SCRIPT = """
import json, os, sys
import jax
from experiments.training import sweep, train
from experiments.training.config import TrainConfig
config = TrainConfig(model="mlp", hidden_sizes=(32,), optimizer="adam", num_epochs=1,
                     validation_size=1000, tfds_data_dir=sys.argv[1], progress=False, plots=False)
single = train.train_and_evaluate(config, os.path.join(sys.argv[2], "single"))
config = TrainConfig(**{**config.__dict__, "optimizer": "momentum", "shared_batches": False})
results = sweep.run_sweep(config, {"learning_rate": [0.01, 0.1], "seed": [0, 1]},
                          os.path.join(sys.argv[2], "sweep"), strategy="vmapped")
print(json.dumps({"devices": jax.device_count(), "data_parallel": single["devices"],
                  "members_split": results[0].devices,
                  "single": [single["train_loss"], single["test_loss"]],
                  "sweep": [[r.record.history[-1][m] for m in ("train_loss", "test_loss")]
                            for r in results]}))
"""


def _run(devices, data_dir, workdir):
  env = {**os.environ, "PYTHONPATH": ROOT,
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
  result = subprocess.run([sys.executable, "-c", SCRIPT, data_dir, str(workdir)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


def test_two_devices_give_the_single_device_results(mnist_data_dir, tmp_path):
  one = _run(1, mnist_data_dir, tmp_path / "one")
  two = _run(2, mnist_data_dir, tmp_path / "two")
  assert (one["devices"], one["data_parallel"], one["members_split"]) == (1, 1, 1)
  assert (two["devices"], two["data_parallel"], two["members_split"]) == (2, 2, 2)
  # float32: the gradient's sum over the batch is split in two partial sums
  # (measured differences <= 1e-6 relative).
  np.testing.assert_allclose(two["single"], one["single"], rtol=1e-5)
  np.testing.assert_allclose(two["sweep"], one["sweep"], rtol=1e-5)
