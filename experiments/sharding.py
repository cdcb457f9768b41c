"""Spreading work over all local devices with ``jax.sharding`` (no ``pmap``).

Two layouts, both on a one-axis mesh of ``jax.local_devices()``:
- data parallel (one model): the batch axis of the index blocks is split over
  devices and the state is replicated; XLA partitions each step and sums the
  gradient across devices, so the update equals the single-device one.
- model parallel over a sweep: the leading K axis of stacked TrainStates (and
  of per-model batch indices) is split over devices, each device training K/n
  models; data is replicated.

Across hosts, call ``jax.distributed.initialize()`` first; see the README.
"""

import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


def local_mesh(axis: str) -> Mesh:
  """A mesh with one axis named ``axis`` over all local devices."""
  return Mesh(np.array(jax.local_devices()), (axis,))


def replicate(tree, mesh: Mesh):
  """Every device holds a full copy of ``tree``."""
  return jax.device_put(tree, NamedSharding(mesh, P()))


def split(tree, mesh: Mesh, dim: int = 0):
  """Each leaf of ``tree`` split along dimension ``dim`` over the mesh's one axis."""
  spec = P(*([None] * dim), mesh.axis_names[0])
  return jax.device_put(tree, NamedSharding(mesh, spec))


def can_split(size: int) -> bool:
  """Whether an axis of ``size`` splits evenly over more than one local device."""
  n = jax.local_device_count()
  return n > 1 and size % n == 0
