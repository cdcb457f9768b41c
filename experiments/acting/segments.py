"""A long compiled run in segments, with a checkpoint after each: a killed run resumes where
its last checkpoint left it and ends equal to the run that was never stopped.

The run is ``advance(carry, starts) -> (carry, outputs)``: the seeds' state
(vmapped) taken through the units that begin at ``starts`` (Q-learning's
chunks of steps, DQN's blocks), each output with the seeds on axis 0 and the
steps on axis 1. Every random number comes from the carry or from a unit's
own start, so cutting the run anywhere between units changes nothing. Each
segment length is compiled once (the last segment may be shorter).

After each segment, ``workdir/checkpoint.npz`` (with a SHA-256 beside it,
written atomically) holds the carry, the outputs so far, the units done, the
run's settings and the metrics rows, and ``metrics.jsonl`` is rewritten whole
from those rows. A run started on a workdir whose checkpoint has the same
settings resumes from it; other settings, or a damaged checkpoint, are
refused in one line, the file kept. ``stop(outputs)`` can end a run (a NaN
loss): the segment is then not saved, so the last good checkpoint remains.
"""

import io
import json
import os
import time
from typing import Any
from typing import Callable
from typing import NamedTuple

import jax
import numpy as np

from data import files
from data.errors import UserError

CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.jsonl"


class Finished(NamedTuple):
  carry: Any
  outputs: Any  # the whole run's, numpy, the steps on axis 1
  seconds: float  # the segments this process ran, compiling excluded
  compile_seconds: float
  units_run: int  # by this process (a resumed run: fewer than all)
  resumed_from: int  # units done before this process started


def _is_key(x) -> bool:
  return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


def _save(path: str, carry, outputs, done: int, settings: dict, rows: list) -> None:
  leaves = jax.tree.leaves((carry, outputs))
  arrays = {f"leaf{i}": np.asarray(jax.random.key_data(x) if _is_key(x) else x)
            for i, x in enumerate(leaves)}
  header = json.dumps({"done": done, "settings": settings, "rows": rows}, sort_keys=True)
  buffer = io.BytesIO()
  np.savez(buffer, header=np.frombuffer(header.encode(), np.uint8), **arrays)
  files.write_verified(path, buffer.getvalue())


def _load(path: str, carry, outputs, settings: dict):
  """(carry, outputs, done, rows) of the checkpoint at ``path``, shaped as the arguments."""
  try:
    data = np.load(io.BytesIO(files.read_verified(path)))
    header = json.loads(bytes(data["header"]).decode())
    leaves, treedef = jax.tree.flatten((carry, outputs))
    loaded = [data[f"leaf{i}"] for i in range(len(leaves))]
  except (ValueError, KeyError, OSError) as e:
    raise UserError(f"{path} is damaged ({str(e).splitlines()[0]}); delete it to start "
                    "over") from None
  if header["settings"] != settings:
    changed = sorted(k for k in settings.keys() | header["settings"].keys()
                     if settings.get(k) != header["settings"].get(k))
    raise UserError(f"{path} holds a run with other settings ({', '.join(changed)}); use "
                    "another --workdir, or delete it to start over")
  restored = []
  carried = len(jax.tree.leaves(carry))
  for i, (old, new) in enumerate(zip(leaves, loaded)):
    if _is_key(old):
      new = jax.random.wrap_key_data(new)
    grown = i >= carried  # the outputs so far: any length on the steps' axis
    if np.shape(new) != np.shape(old) and not (
        grown and np.ndim(new) == np.ndim(old) and np.delete(np.shape(new), 1).tolist()
        == np.delete(np.shape(old), 1).tolist()):
      raise UserError(f"{path} is damaged (an array of shape {np.shape(new)} where "
                      f"{np.shape(old)} belongs); delete it to start over")
    restored.append(new)
  carry, outputs = jax.tree.unflatten(treedef, restored)
  return carry, outputs, int(header["done"]), header["rows"]


def run(advance: Callable, carry, starts: np.ndarray, unit_steps: int, total_steps: int,
        units_per_segment: int, workdir: str, settings: dict, metrics: Callable[[Any], dict],
        stop: Callable[[Any, int], None] = lambda outputs, step: None) -> Finished:
  """Runs ``advance`` over the units at ``starts`` (each ``unit_steps`` steps, the run
  ``total_steps``) in segments of ``units_per_segment`` units (module docstring).

  ``metrics(outputs of a segment)`` gives that segment's row of metrics.jsonl
  (its step and seconds are added); ``stop(outputs, step)`` raises to end the
  run before the segment is saved.
  """
  path = os.path.join(workdir, CHECKPOINT)
  settings = json.loads(json.dumps(settings))  # as the checkpoint reads back: tuples as lists
  empty = jax.eval_shape(lambda c: advance(c, starts[:0])[1], carry)
  outputs = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), empty)
  done, rows = 0, []
  if os.path.exists(path) or os.path.exists(path + ".sha256"):
    carry, outputs, done, rows = _load(path, carry, outputs, settings)
    print(f"resuming from {path} at step {min(done * unit_steps, total_steps)} of {total_steps}")
  compiled, seconds, compile_seconds, resumed_from = {}, 0.0, 0.0, done
  while done < len(starts):
    segment = starts[done:done + units_per_segment]
    if len(segment) not in compiled:
      began = time.perf_counter()
      compiled[len(segment)] = jax.jit(advance).lower(carry, segment).compile()
      compile_seconds += time.perf_counter() - began
    began = time.perf_counter()
    carry, new = jax.block_until_ready(compiled[len(segment)](carry, segment))
    elapsed = time.perf_counter() - began
    seconds += elapsed
    new = jax.tree.map(np.asarray, new)
    step = min(int(segment[-1]) + unit_steps, total_steps)
    stop(new, step)
    outputs = jax.tree.map(lambda a, b: np.concatenate([a, b], axis=1), outputs, new)
    done += len(segment)
    rows.append({"step": step, "seconds": elapsed, **metrics(new)})
    _save(path, carry, outputs, done, settings, rows)
    files.write_jsonl(os.path.join(workdir, METRICS), rows)
  return Finished(carry, outputs, seconds, compile_seconds, len(starts) - resumed_from,
                  resumed_from)


def remove_checkpoint(workdir: str) -> None:
  """After the summary is written: the finished run's checkpoint is no longer needed."""
  for name in (CHECKPOINT, CHECKPOINT + ".sha256"):
    path = os.path.join(workdir, name)
    if os.path.exists(path):
      os.unlink(path)


def non_finite_stop(name: str, seeds, workdir: str, losses: Callable[[Any], np.ndarray]):
  """The divergence rule as ``run``'s ``stop``: a loss that is not finite (NaN, ±inf) in a
  segment ends the run in one line naming the seeds and the step, before the segment is
  saved, so the workdir keeps the last good checkpoint. ``losses(outputs)``: (seeds, …)."""
  def stop(outputs, step):
    bad = [seed for seed, loss in zip(seeds, losses(outputs)) if not np.all(np.isfinite(loss))]
    if bad:
      raise UserError(
          f"{name} diverged: the loss of seed{'s' if len(bad) > 1 else ''} "
          f"{', '.join(map(str, bad))} is not finite by step {step} (a smaller "
          f"--learning_rate, or --huber); {workdir} keeps the last good checkpoint")
  return stop
