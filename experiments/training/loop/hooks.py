"""The hooks that steer a run: stopping, checkpoints, signals (the interface: ``loop.py``)."""

import contextlib
import os
import signal
import threading

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from data import errors
from experiments.training.storage import checkpoint_record
from experiments.training.storage import checkpoints as checkpoints_lib
from experiments.training.loop import record as record_lib
from experiments.training.processes import sharding
from experiments.training.loop.loop import Hook
from experiments.training.loop.loop import Loop


@jax.jit
def keep(changed: jax.Array, new: dict, old: dict) -> dict:
  """Member k's variables from ``new`` where ``changed[k]``, else from ``old`` (K > 1)."""
  def pick(a, b):
    return jnp.where(changed.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
  return jax.tree.map(pick, new, old)


class Stopping(Hook):
  """Each member's record (``record.py``): divergence, patience, the model kept, the end.

  After an epoch, each member still training records its row unless it
  diverged; its kept model becomes this epoch's when the rules say so. The
  run ends when every member is done or the last epoch is reached; then the
  kept models are evaluated on the test split. When every member still
  training diverged this epoch, the loop stops and nothing of it is kept
  (a single run's error: its last good checkpoint stays as it was); with
  ``diverged_is_finished`` (a sweep's run, whose diverged models are results
  too) the run ends as finished instead, so a rerun does not train it again.
  """

  def __init__(self, diverged_is_finished: bool = False):
    self._diverged_is_finished = diverged_is_finished

  def epoch(self, loop: Loop) -> None:
    run = loop.run
    lengths = [len(r.history) for r in loop.records]
    changed = [rec.update(row, run.config.patience, run.objective.divergence(row, run.num_classes))
               for rec, row in zip(loop.records, loop.rows)]
    loop.new_rows = [row if len(r.history) > n else None
                     for row, r, n in zip(loop.rows, loop.records, lengths)]
    if not any(loop.new_rows):
      if self._diverged_is_finished:
        loop.finished = True
        self._test(loop)
      else:
        loop.stop = True
      return
    if run.size > 1:
      loop.kept = keep(np.asarray(changed), loop.state.variables, loop.kept)
    elif changed[0]:  # the state's buffers are donated to the next block: keep a copy
      loop.kept = jax.tree.map(jnp.copy, loop.state.variables)
    if loop.epoch == run.config.num_epochs or all(r.done for r in loop.records):
      loop.finished = True
      self._test(loop)

  def end(self, loop: Loop) -> None:
    if loop.interrupted:
      return
    if loop.test_outputs is None:  # finished before, or every member diverged
      self._test(loop)
    if loop.already_finished:
      loop.test_metrics = loop.saved_test_metrics

  @staticmethod
  def _test(loop: Loop) -> None:
    """The kept models' outputs on the test split and each member's test report."""
    data, objective = loop.pipeline.data, loop.run.objective
    outputs = sharding.to_host(loop.program.outputs(loop.kept, "test"))
    loop.test_outputs = outputs
    stacked = outputs if loop.run.size > 1 else jax.tree.map(lambda a: a[None], outputs)
    loop.test_metrics = [
        objective.test_report(jax.tree.map(lambda a, k=k: a[k], stacked), data.test_labels,
                              data.class_names) if r.best_epoch else None
        for k, r in enumerate(loop.records)]


def ranking_loss(rows: list[dict], records) -> float:
  """What ranks a checkpoint: the mean validation (else train) loss of the members still good."""
  split = "validation" if "validation_loss" in rows[0] else "train"
  losses = [row[f"{split}_loss"] for row, r in zip(rows, records) if not r.diverged]
  return float(np.mean(losses)) if losses else float("inf")


class Checkpointing(Hook):
  """Resumes from the newest good checkpoint in ``directory``; saves at the end (and every epoch).

  A checkpoint of another run is refused (``checkpoint_record.check_same_members``) before
  anything is trained or written.
  """

  def __init__(self, directory: str, local: bool = False):
    self.checkpoints = checkpoints_lib.Checkpoints(directory, local)
    self._directory = directory

  def start(self, loop: Loop) -> None:
    members = loop.run.members
    if not self.checkpoints.epochs() and os.path.exists(os.path.join(self._directory,
                                                                      "metrics.jsonl")):
      logging.info("starting over: %s holds no checkpoint of the epochs its metrics.jsonl "
                   "lists", self._directory)
    saved = self.checkpoints.restore(
        loop.state, lambda record: checkpoint_record.check_same_members(
            members, record, self._directory), stacked=loop.run.size > 1)
    if not saved:
      return
    loop.state, loop.kept, loop.epoch = saved.state, saved.model, saved.epoch
    loop.resumed_from = saved.epoch
    loop.records = [record_lib.from_json(r) for r in saved.record["records"]]
    loop.finished = loop.already_finished = saved.record["finished"]
    loop.saved_test_metrics = saved.record["test_metrics"]
    if loop.finished:
      logging.info("this run is already complete (the checkpoint of epoch %d in %s): nothing to "
                   "train; its results are evaluated and written again", saved.epoch,
                   self.checkpoints.directory)
    else:
      logging.info("resuming from the checkpoint of epoch %d in %s", saved.epoch,
                   self.checkpoints.directory)

  def epoch(self, loop: Loop) -> None:
    if loop.stop or not (loop.finished or loop.run.config.checkpoint_every_epoch):
      return
    run, data = loop.run, loop.pipeline.data
    record = checkpoint_record.record(run, loop.records, loop.finished, loop.test_metrics, data,
                                      loop.pixel_scaling)
    self.checkpoints.save(loop.epoch, loop.state, loop.kept, record,
                          ranking_loss(loop.rows, loop.records), stacked=run.size > 1)

  def end(self, loop: Loop) -> None:
    loop.checkpoint_epoch = self.checkpoints.latest_epoch()


class Signals(Hook):
  """Ctrl-C, SIGTERM and SIGHUP stop the run at the next step boundary, then one line and exit.

  The signal is noted, the current block of steps finishes, and the loop
  ends without evaluating the partial epoch; the checkpoint of the last
  finished epoch (saved every epoch by default) stays, and resuming from it
  is exact. ``end`` raises ``errors.Interrupted`` naming it: the process
  exits with 128 + the signal's number. Outside the loop the entrypoints'
  own handlers (``cli.py``) stop at once.
  """

  SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

  def __init__(self, directory: str | None):
    self._directory, self._received, self._previous = directory, None, {}

  def _note(self, signum, frame) -> None:
    del frame
    self._received = self._received or signum

  def start(self, loop: Loop) -> None:
    if threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._note) for s in self.SIGNALS}

  def block(self, loop: Loop, updates: int) -> None:
    loop.interrupted = self._received

  def epoch(self, loop: Loop) -> None:
    loop.interrupted = self._received

  @contextlib.contextmanager
  def restored_after(self):
    """The handlers that were there before ``start``, back however the body ends."""
    try:
      yield
    finally:
      for signum, handler in self._previous.items():
        signal.signal(signum, handler)
      self._previous = {}

  def end(self, loop: Loop) -> None:
    if not loop.interrupted:
      return
    name = signal.Signals(loop.interrupted).name
    if loop.checkpoint_epoch:
      kept = (f"the checkpoint of epoch {loop.checkpoint_epoch} in "
              f"{os.path.join(self._directory, 'checkpoints')} is kept; rerun the same command "
              "to resume from it")
    else:
      kept = "no epoch had finished, so nothing was saved"
    raise errors.Interrupted(f"stopped by {name} after epoch {loop.epoch}: {kept}",
                             loop.interrupted)
