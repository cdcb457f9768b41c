"""sharding.Layout on two devices: which axis each kind of array is split along, without training.

XLA fixes a process's devices when its backend starts, so the layouts are
built in a child process with two forced host devices; it prints what it
found as JSON.
"""

import json
import os
import subprocess
import sys

from tests.helpers import ROOT

SCRIPT = """
import json
import numpy as np
from experiments.training.processes import sharding

def spec(array):
  return [None if s is None else str(s) for s in array.sharding.spec] if hasattr(
      array.sharding, "spec") else "single"

out = {}
data = sharding.Layout(num_members=1, batch_size=4)
out["data"] = {"kind": data.kind, "devices": data.devices,
               "batches": spec(data.batches(np.zeros((3, 4), np.int32))),
               "examples_shape": list(data.examples(np.arange(10, dtype=np.int32)).shape),
               "odd_examples_shape": list(data.examples(np.arange(9, dtype=np.int32)).shape),
               "state": spec(data.per_member(np.zeros(5, np.float32)))}
members = sharding.Layout(num_members=4, batch_size=3)
out["members"] = {"kind": members.kind, "devices": members.devices,
                  "batches": spec(members.batches(np.zeros((4, 3, 3), np.int32))),
                  "shared_batches": spec(members.batches(np.zeros((3, 3), np.int32))),
                  "state": spec(members.per_member(np.zeros((4, 5), np.float32))),
                  "shard_rows": members.per_member(
                      np.zeros((4, 5), np.float32)).addressable_shards[0].data.shape[0]}
uneven = sharding.Layout(num_members=3, batch_size=3)
odd_batch = sharding.Layout(num_members=1, batch_size=3)
out["uneven"] = [uneven.kind, uneven.devices, odd_batch.kind, odd_batch.devices]
print(json.dumps(out))
"""


def test_each_layout_splits_the_axis_it_should():
  result = subprocess.run(
      [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300,
      env={**os.environ, "PYTHONPATH": ROOT,
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
  assert result.returncode == 0, result.stderr[-3000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  data = out["data"]
  # One model: each batch's B examples split over the devices; evaluation likewise.
  assert (data["kind"], data["devices"]) == ("data", 2)
  assert data["batches"] == [None, "devices"]
  assert data["examples_shape"] == [2, 5] and data["odd_examples_shape"] == [9]
  assert data["state"] == []  # replicated
  # Many models: the member axis split, K / devices members per device; shared batches copied.
  members = out["members"]
  assert (members["kind"], members["devices"]) == ("members", 2)
  assert members["batches"] == ["devices"] and members["state"] == ["devices"]
  assert members["shared_batches"] == [] and members["shard_rows"] == 2
  # An axis that does not divide evenly is not split.
  assert out["uneven"] == [None, 1, None, 1]
