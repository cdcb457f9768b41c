"""Many processes, one run: JAX's multi-controller runtime (``jax.distributed``).

Every process runs the same program on its own devices. ``initialize`` joins
them: afterwards ``jax.devices()`` lists the devices of all P processes, a
program compiled over a mesh of them runs on all at once, and XLA moves the
data between processes through collectives (on CPU: gloo over TCP). Process 0
hosts the coordinator; the others connect to it at ``coordinator_address``.

Who does what in a run over all processes (``sharding.Layout``): each computes
the same batch order and holds its rows of each batch; the update is the
single-process one (the gradient's sum over the batch is completed across
processes); only the leader, process 0, writes results, figures, TensorBoard
events and progress bars. Checkpoints are written by all together (Orbax's
multi-process mode: every process saves and restores its own shards).
"""

import json
import socket
import time

import jax
import numpy as np
from jax.experimental import multihost_utils

from data import errors
from data.errors import UserError

MAX_PROCESSES = 65_536
# What a collective says when a peer is gone (killed, crashed, its machine lost): gloo's
# TCP pairs on CPU, the coordination service's heartbeats everywhere.
_LOST_PEER_MARKERS = ("Gloo", "closed by peer", "reset by peer", "heartbeat", "UNAVAILABLE")
_joined = False


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, timeout_seconds: int = 120,
               auto: bool = False) -> None:
  """Joins this process to the others; does nothing without an address, a count or ``auto``.

  ``auto``: ``jax.distributed.initialize()`` finds everything itself on Cloud
  TPU and under SLURM. UserError (one line) for a process id out of range, or
  when the coordinator does not answer within ``timeout_seconds`` (checked by
  processes > 0 before JAX connects, because JAX's client aborts the process
  on a failed connection).
  """
  errors.check_integer("distributed_timeout", timeout_seconds, 1, 86_400)
  given = [v is not None for v in (coordinator_address, num_processes, process_id)]
  if not any(given) and not auto:
    return
  if any(given) and not all(given) and not auto:
    raise UserError("--coordinator_address, --num_processes and --process_id go together "
                    "(or --distributed alone where JAX finds them: Cloud TPU, SLURM)")
  if num_processes is not None and process_id is not None:
    errors.check_integer("num_processes", num_processes, 1, MAX_PROCESSES)
    if not 0 <= process_id < num_processes:
      raise UserError(f"process_id must be in 0..{num_processes - 1} (--num_processes="
                      f"{num_processes}), got {process_id}")
    if coordinator_address is not None:
      check_address(coordinator_address)
    if process_id > 0 and coordinator_address:
      _wait_for(coordinator_address, timeout_seconds)
  # Processes on CPUs exchange arrays through gloo (the CPU client's default
  # has no cross-process collectives). Accelerators ignore this setting.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  global _joined
  try:
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               initialization_timeout=timeout_seconds)
  except (ValueError, RuntimeError) as e:  # auto-detection found nothing, an address that does not parse
    raise UserError(f"cannot join the other processes: {str(e).splitlines()[0]}") from None
  _joined = True


def lost_peer(error: BaseException) -> str | None:
  """The one line for ``error`` when it (or what caused it) is a collective that failed
  because another process of the run is gone; None otherwise (or when not joined).

  The survivor cannot say why its peer went (killed, crashed, out of memory): that
  process's own output does.
  """
  while _joined and error is not None:
    if any(marker in str(error) for marker in _LOST_PEER_MARKERS):
      return (f"lost contact with another process of this run ({str(error).splitlines()[0]}): "
              "it stopped or was killed, see its output; rerun every process to resume from "
              "the last checkpoint")
    error = error.__cause__ or error.__context__
  return None


def check_address(address: str) -> None:
  """UserError unless ``address`` is host:port with a port in 1..65535 (every process checks)."""
  host, _, port = address.rpartition(":")
  if not host.strip("[]") or not port.isdigit() or not 1 <= int(port) <= 65535:
    raise UserError(f"coordinator_address must be host:port with a port in 1..65535, got "
                    f"{address!r}")


def _wait_for(address: str, timeout_seconds: int) -> None:
  """Returns once ``address`` (host:port) accepts a TCP connection; UserError after the timeout."""
  host, _, port = address.rpartition(":")
  deadline = time.monotonic() + timeout_seconds
  while True:
    try:
      with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
        return
    except OSError as e:
      if time.monotonic() > deadline:
        raise UserError(f"the coordinator at {address} did not answer within {timeout_seconds} s "
                        f"({e.strerror or e}); start process 0 first, or check the address"
                        ) from None
      time.sleep(0.2)


def is_leader(local: bool = False) -> bool:
  """Whether this process writes a run's outputs: process 0, or any that trains its run alone."""
  return local or jax.process_index() == 0


def gather_json(value) -> list:
  """Every process's ``value`` (anything JSON can hold), in process order.

  Every process must call it at the same point: it is a collective, the
  JSON text sent as bytes through ``process_allgather``.
  """
  data = np.frombuffer(json.dumps(value).encode(), np.uint8)
  sizes = np.asarray(multihost_utils.process_allgather(np.int32(data.size))).ravel()
  padded = np.zeros(int(sizes.max()), np.uint8)
  padded[:data.size] = data
  rows = np.asarray(multihost_utils.process_allgather(padded))
  return [json.loads(bytes(row[:n])) for row, n in zip(rows, sizes)]
