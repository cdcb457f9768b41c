"""Data-parallel training and sharded sweeps on 2 simulated CPU devices vs 1 device.

XLA fixes the device count when the backend starts, so each layout runs in
its own process (``--xla_force_host_platform_device_count``).
"""

import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
import json, sys
import jax
from experiments import sweep, train
from experiments.config import TrainConfig
config = TrainConfig(model="mlp", hidden_sizes=(32,), optimizer="adam", num_epochs=1,
                     validation_size=1000, tfds_data_dir=sys.argv[1], progress=False,
                     plots=False).validate()
single = train.train_and_evaluate(config, sys.argv[2])
groups = sweep.make_groups(config, ["momentum"], [0.01, 0.1], [], [0, 1], {})
rows = sweep.run_sweep(config, groups, strategy="vmapped", shared_batches=False)
print(json.dumps({"devices": jax.device_count(), "data_parallel": single["devices"],
                  "single": [single["train_loss"], single["test_loss"]],
                  "sweep": [[r["train_loss"], r["test_loss"]] for r in rows]}))
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
  assert (one["devices"], one["data_parallel"]) == (1, 1)
  assert (two["devices"], two["data_parallel"]) == (2, 2)  # the batch was split
  # float32: the gradient's sum over the batch is split in two partial sums
  # (measured differences <= 1e-6 relative).
  np.testing.assert_allclose(two["single"], one["single"], rtol=1e-5)
  np.testing.assert_allclose(two["sweep"], one["sweep"], rtol=1e-5)
