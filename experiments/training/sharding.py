"""Spreading a run over all local devices with ``jax.sharding`` (no ``pmap``).

Two layouts, both on a one-axis mesh of ``jax.local_devices()``:
- data parallel (K = 1 member): the batch axis of each block of batch indices
  is split over the devices and everything else is replicated; XLA
  partitions each step and sums the gradient across devices, so the update
  equals the single-device one.
- member parallel (K > 1): the leading member axis of the state (and of
  every per-member array) is split over the devices, each device training
  K / n members; the dataset is replicated.
With one device, or when the axis does not divide evenly, nothing is split.
"""

import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


class Layout:
  """Where a run's arrays live; ``devices`` is 1 when nothing is split."""

  def __init__(self, num_members: int, batch_size: int):
    n = jax.local_device_count()
    self.kind = None
    if n > 1 and num_members > 1 and num_members % n == 0:
      self.kind = "members"
    elif n > 1 and num_members == 1 and batch_size % n == 0:
      self.kind = "data"
    self.devices = n if self.kind else 1
    self.mesh = Mesh(np.array(jax.local_devices()), ("devices",)) if self.kind else None

  def _put(self, tree, spec):
    return jax.device_put(tree, NamedSharding(self.mesh, spec)) if self.mesh else tree

  def replicated(self, tree):
    """Every device holds a full copy."""
    return self._put(tree, P())

  def per_member(self, tree):
    """Arrays with a leading member axis: split over the devices (member parallel)."""
    return self._put(tree, P("devices") if self.kind == "members" else P())

  def batches(self, block: jax.Array) -> jax.Array:
    """A block of batch indices, (S, B) or (K, S, B): split along B or along K."""
    if self.kind == "data":
      return self._put(block, P(None, "devices"))
    if self.kind == "members" and block.ndim == 3:
      return self._put(block, P("devices"))
    return self.replicated(block)

  def describe(self) -> str:
    if self.kind == "data":
      return f", data parallel over {self.devices} devices"
    if self.kind == "members":
      return f", members split over {self.devices} devices"
    return ""
