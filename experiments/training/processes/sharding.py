"""Spreading a run over devices, and over processes, with ``jax.sharding`` (no ``pmap``).

Two layouts, both on a one-axis mesh of devices:
- data parallel (K = 1 member): the batch axis of each block of batch indices
  is split over the devices and everything else is replicated; XLA
  partitions each step and sums the gradient across devices, so the update
  equals the single-device one. Evaluation splits the examples likewise.
- member parallel (K > 1): the leading member axis of the state (and of
  every per-member array) is split over the devices, each device training
  K / n members on full batches; the dataset is replicated.
With one device, or when the axis does not divide evenly, nothing is split.

The mesh holds every process's devices (``jax.devices()``), or with
``local=True`` this process's alone (a run that one process of many trains
by itself). Over several processes, every array is a global ``jax.Array``:
each process builds its shards from host values all processes agree on (the
same seed gives the same batch order everywhere), a block of batch indices
from the process's own rows alone (``jax.make_array_from_process_local_data``).
A global batch that does not split over the devices of several processes is
refused: replicating it would run the same batch on every process.
"""

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from data.errors import UserError


class Layout:
  """Where a run's arrays live; ``devices`` is 1 when nothing is split."""

  def __init__(self, num_members: int, batch_size: int, local: bool = False):
    devices = jax.local_devices() if local else jax.devices()
    n = len(devices)
    self.processes = 1 if local else jax.process_count()
    self.kind = None
    if n > 1 and num_members > 1 and num_members % n == 0:
      self.kind = "members"
    elif n > 1 and num_members == 1 and batch_size % n == 0:
      self.kind = "data"
    elif self.processes > 1 and num_members == 1:
      raise UserError(f"a batch of {batch_size} examples does not split over the {n} devices of "
                      f"{self.processes} processes; choose --batch_size a multiple of {n}")
    self.devices = n if self.kind else 1
    # Over several processes every array must be global, even when nothing is split.
    self.mesh = Mesh(np.array(devices), ("devices",)) if self.kind or self.processes > 1 else None

  def _put(self, tree, spec):
    if self.mesh is None:
      return jax.device_put(tree)
    sharding = NamedSharding(self.mesh, spec)
    if self.processes == 1:
      return jax.device_put(tree, sharding)
    return jax.tree.map(lambda a: _global(a, sharding), tree)

  def replicated(self, tree):
    """Every device holds a full copy."""
    return self._put(tree, P())

  def per_member(self, tree):
    """Arrays with a leading member axis: split over the devices (member parallel)."""
    return self._put(tree, P("devices") if self.kind == "members" else P())

  def batches(self, block: np.ndarray) -> jax.Array:
    """A block of batch indices, (S, B) or (K, S, B) on the host: split along B or along K."""
    if self.kind == "data":
      sharding = NamedSharding(self.mesh, P(None, "devices"))
      if self.processes == 1:
        return jax.device_put(block, sharding)
      rows = _process_rows(sharding, block.shape, axis=1)
      return jax.make_array_from_process_local_data(sharding, block[:, rows], block.shape)
    if self.kind == "members" and block.ndim == 3:
      return self._put(block, P("devices"))
    return self.replicated(block)

  def examples(self, indices: np.ndarray) -> jax.Array:
    """Indices of examples to evaluate, (n,) or (K, n) on the host.

    Data parallel, (n,) becomes (devices, n / devices) split over the devices
    (each evaluates its share; the counts are summed across them) when n
    divides evenly; otherwise as the members' arrays.
    """
    if self.kind == "data" and indices.ndim == 1 and len(indices) % self.devices == 0:
      return self._put(indices.reshape(self.devices, -1), P("devices"))
    return self.per_member(indices) if indices.ndim == 2 else self.replicated(indices)

  def describe(self) -> str:
    across = f" of {self.processes} processes" if self.processes > 1 else ""
    if self.kind == "data":
      return f", data parallel over {self.devices} devices{across}"
    if self.kind == "members":
      return f", members split over {self.devices} devices{across}"
    return f", replicated on the devices{across}" if self.processes > 1 else ""


def _global(array, sharding: NamedSharding) -> jax.Array:
  """The global array with ``sharding`` of a value every process holds in full."""
  if jax.dtypes.issubdtype(array.dtype, jax.dtypes.prng_key):
    return jax.random.wrap_key_data(_global(jax.random.key_data(array), sharding),
                                    impl=jax.random.key_impl(array))
  host = np.asarray(array)
  return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def _process_rows(sharding: NamedSharding, shape: tuple[int, ...], axis: int) -> slice:
  """The rows along ``axis`` that this process's devices hold (contiguous on a process-major mesh)."""
  starts, stops = zip(*((index[axis].start or 0, index[axis].stop or shape[axis])
                        for index in sharding.addressable_devices_indices_map(shape).values()))
  return slice(min(starts), max(stops))


def to_host(tree):
  """Every leaf as a NumPy array; arrays split over processes are gathered first."""
  def one(a):
    if isinstance(a, jax.Array) and not (a.is_fully_addressable or a.is_fully_replicated):
      return np.asarray(multihost_utils.process_allgather(a, tiled=True))
    return np.asarray(a)
  return jax.tree.map(one, tree)
