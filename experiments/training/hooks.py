"""What happens around the training loop, as hooks: stopping, checkpoints, files, logs, progress.

``engine.fit`` advances a ``Loop`` (where the run stands) and calls each hook
in order: ``start`` once before training (after which the loop may already
be finished: a complete run found on disk), ``block`` after each compiled
block of updates, ``epoch`` after each epoch's evaluation, ``end`` once.
The order matters only where one hook reads what another wrote:
``Stopping`` records the epoch before ``Checkpointing`` saves it, and
``Checkpointing.start`` restores before the others start. A hook whose
``writes`` is True runs only on the process that writes the run's outputs.
"""

import dataclasses
import math
import os
import signal
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from tqdm import tqdm

from data import errors
from data import files
from experiments.training import checkpoints as checkpoints_lib
from experiments.training import config as config_lib
from experiments.training import record as record_lib
from experiments.training import report
from experiments.training import sharding


@dataclasses.dataclass
class Loop:
  """Where a run's training stands; ``fit`` returns it as the run's result.

  ``state``, ``kept`` and ``test_logits`` have a leading member axis only
  when the run has K > 1 members; ``records``, ``test_metrics`` and
  ``pixel_scaling`` are lists with one entry per member.
  """

  run: object  # run.Run
  pipeline: object  # pipeline.Pipeline
  program: object  # programs.Program
  state: object  # state.TrainState
  kept: dict  # each member's model to keep: {"params"[, "batch_stats"]}
  records: list  # record.MemberRecord of each member
  epoch: int = 0  # the last epoch trained (or restored)
  rows: list = dataclasses.field(default_factory=list)  # each member's row of that epoch
  new_rows: list = dataclasses.field(default_factory=list)  # those recorded (None: not)
  stop: bool = False  # every member still training diverged: end, keep the last checkpoint
  interrupted: int | None = None  # the signal that stopped the run at a step boundary
  finished: bool = False  # the run is complete
  already_finished: bool = False  # the directory held a complete run: nothing was trained
  resumed_from: int | None = None  # the epoch of the checkpoint resumed from
  checkpoint_epoch: int | None = None  # the newest checkpoint's epoch, after the run
  saved_test_metrics: list | None = None  # a complete run's, from its checkpoint
  test_logits: np.ndarray | None = None  # of the kept models
  test_metrics: list | None = None  # of each member's kept model; None: no good epoch
  timing: dict = dataclasses.field(default_factory=dict)

  @property
  def pixel_scaling(self) -> list[tuple[float, float]]:
    return self.pipeline.pixel_scaling


class Hook:
  """Does nothing at each point of the loop; subclasses override what they need."""

  writes = False  # True: only the process writing the run's outputs runs this hook

  def start(self, loop: Loop) -> None:
    pass

  def block(self, loop: Loop, updates: int) -> None:
    """After a block of ``updates`` updates of each member."""

  def epoch(self, loop: Loop) -> None:
    pass

  def end(self, loop: Loop) -> None:
    pass


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
  training diverged this epoch, the loop stops and nothing of it is kept.
  """

  def epoch(self, loop: Loop) -> None:
    run = loop.run
    lengths = [len(r.history) for r in loop.records]
    changed = [rec.update(row, run.config.patience, run.num_classes)
               for rec, row in zip(loop.records, loop.rows)]
    loop.new_rows = [row if len(r.history) > n else None
                     for row, r, n in zip(loop.rows, loop.records, lengths)]
    if not any(loop.new_rows):
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
    if loop.test_logits is None:  # finished before, or every member diverged
      self._test(loop)
    if loop.already_finished:
      loop.test_metrics = loop.saved_test_metrics

  @staticmethod
  def _test(loop: Loop) -> None:
    data = loop.pipeline.data
    logits = sharding.to_host(loop.program.predict(loop.kept, "test"))
    loop.test_logits = logits
    stacked = logits if loop.run.size > 1 else logits[None]
    loop.test_metrics = [report.test_metrics(stacked[k], data.test_labels, data.class_names)
                         if r.best_epoch else None for k, r in enumerate(loop.records)]


def ranking_loss(rows: list[dict], records) -> float:
  """What ranks a checkpoint: the mean validation (else train) loss of the members still good."""
  split = "validation" if "validation_loss" in rows[0] else "train"
  losses = [row[f"{split}_loss"] for row, r in zip(rows, records) if not r.diverged]
  return float(np.mean(losses)) if losses else float("inf")


class Checkpointing(Hook):
  """Resumes from the newest good checkpoint in ``directory``; saves at the end (and every epoch).

  A checkpoint of another run is refused (``check_same_members``) before
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
    saved = self.checkpoints.restore(loop.state, lambda record: checkpoints_lib.check_same_members(
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
    record = checkpoints_lib.record(run, loop.records, loop.finished, loop.test_metrics, data,
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

  def end(self, loop: Loop) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
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


class ConfigFile(Hook):
  """Writes the resolved ``config`` as ``path`` once the run is known to be this directory's."""

  writes = True

  def __init__(self, path: str, config: config_lib.TrainConfig):
    self._path, self._config = path, config

  def start(self, loop: Loop) -> None:
    files.write_json(self._path, config_lib.to_json(self._config))


class MetricsFile(Hook):
  """Rewrites ``path`` (metrics.jsonl) after every epoch that recorded a row.

  One line per member and epoch; with K > 1 members each line carries
  ``label`` (e.g. "fold", "member") and the member's index.
  """

  writes = True

  def __init__(self, path: str, label: str = "member"):
    self._path, self._label = path, label

  def epoch(self, loop: Loop) -> None:
    if not loop.stop:
      label = self._label if loop.run.size > 1 else None
      files.write_jsonl(self._path, record_lib.metrics_rows(loop.records, label))


class TensorBoard(Hook):
  """Each member's curves and settings as TensorBoard event files (``tensorboard_log.py``)."""

  writes = True

  def __init__(self, directory: str, folds: bool):
    self._directory, self._folds, self._log = directory, folds, None

  def epoch(self, loop: Loop) -> None:
    if self._log is None:  # opened after the first epoch: its import is not start-up time
      from experiments.training import tensorboard_log  # pylint: disable=g-import-not-at-top
      run = loop.run
      self._log = tensorboard_log.Log(self._directory, run.members, self._folds, run.plan.schedule,
                                      run.plan.updates_per_epoch)
    self._log.epoch(loop.epoch, loop.new_rows)

  def end(self, loop: Loop) -> None:
    if self._log is not None:
      self._log.close(finished=loop.finished)


class Console(Hook):
  """The run's log lines: what trains where, the compile time, each epoch's metrics."""

  def __init__(self):
    self._compiled_logged = False

  def start(self, loop: Loop) -> None:
    run, config = loop.run, loop.run.config
    logging.info(
        "%s on %s: %d parameters%s, %s descent: %d updates of %d examples per epoch on %s%s",
        config.model, config.dataset, num_params(loop), f", {run.size} models" if run.size > 1
        else "", config.gd_mode, run.plan.updates_per_epoch, run.plan.batch_size,
        jax.devices()[0].device_kind, loop.pipeline.layout.describe())

  def epoch(self, loop: Loop) -> None:
    if not self._compiled_logged:
      logging.info("compiled in %.2fs", loop.program.compile_seconds)
      self._compiled_logged = True
    rows, records = loop.rows, loop.records
    speed = loop.run.size * images_per_epoch(loop) / rows[0]["epoch_seconds"]
    if len(rows) == 1:
      row = rows[0]
      splits = [s for s in ("validation", "test") if f"{s}_loss" in row]
      logging.info("epoch %d: train loss %.4f acc %.4f | %s | %.0f images/s", loop.epoch,
                   row["train_loss"], row["train_accuracy"],
                   " | ".join(f"{s} loss {row[f'{s}_loss']:.4f} acc {row[f'{s}_accuracy']:.4f}"
                              for s in splits), speed)
      return
    split = "validation" if "validation_accuracy" in rows[0] else "test"
    accuracies = [r[f"{split}_accuracy"] for r, rec in zip(rows, records) if not rec.diverged]
    logging.info("epoch %d: %d models, %s accuracy %s, %d diverged | %.0f images/s (all models)",
                 loop.epoch, len(rows), split,
                 f"{np.mean(accuracies):.4f} ± {np.std(accuracies):.4f} (min "
                 f"{min(accuracies):.4f}, max {max(accuracies):.4f})" if accuracies else "-",
                 sum(1 for rec in records if rec.diverged), speed)


class Progress(Hook):
  """Advances ``bar`` by each member's updates; without one, a bar per epoch."""

  writes = True

  def __init__(self, bar: tqdm | None = None):
    self._shared, self._bar = bar, None

  def start(self, loop: Loop) -> None:
    if self._shared is not None and loop.epoch:
      self._shared.update(loop.epoch * loop.run.plan.updates_per_epoch * loop.run.size)

  def block(self, loop: Loop, updates: int) -> None:
    run = loop.run
    if self._shared is None and self._bar is None and run.config.progress:
      self._bar = progress_bar(total=run.plan.updates_per_epoch * run.size, unit="update",
                               leave=False, desc=f"epoch {loop.epoch + 1}/{run.config.num_epochs}")
    bar = self._shared if self._shared is not None else self._bar
    if bar is not None:
      bar.update(updates * run.size)

  def epoch(self, loop: Loop) -> None:
    if self._bar is not None:
      self._bar.close()
      self._bar = None


def progress_bar(**kwargs) -> tqdm:
  """A progress bar on stderr: redrawn in place on a terminal; in a log file, a line every 10 s.

  Log lines go above it on a terminal (``cli.py``). When stderr is not a
  terminal (a log file, CI, a cluster job) each state is a line of its own,
  written at most every 10 s and at the end, so the log stays readable and
  no log line is glued to a bar.
  """
  if sys.stderr.isatty():
    return tqdm(**kwargs)
  return tqdm(file=_Lines(), mininterval=10.0, **kwargs)


class _Lines:
  """A bar's output as whole lines: carriage returns and blank redraws dropped."""

  def write(self, text: str) -> None:
    text = text.replace("\r", "").rstrip()
    if text:
      sys.stderr.write(text + "\n")

  def flush(self) -> None:
    sys.stderr.flush()


class Timings(Hook):
  """The run's timing figures (``loop.timing``): training time and speed, compilation, start-up."""

  def __init__(self, started_at: float | None = None):
    self._started_at = time.perf_counter() if started_at is None else started_at
    self._first_step, self._seconds, self._epochs, self._first_epoch = None, 0.0, 0, None

  def block(self, loop: Loop, updates: int) -> None:
    if self._first_step is None:  # when the first block finished, as the host sees it
      self._first_step = time.perf_counter() - self._started_at
      self._first_epoch = loop.epoch + 1

  def epoch(self, loop: Loop) -> None:
    self._seconds += loop.rows[0]["epoch_seconds"]
    self._epochs += 1

  def end(self, loop: Loop) -> None:
    images = self._epochs * images_per_epoch(loop) * loop.run.size
    layout = loop.pipeline.layout
    loop.timing = {
        "train_seconds": self._seconds,
        "train_images_per_second": images / self._seconds if self._seconds else None,
        "compile_seconds": loop.program.compile_seconds,
        "seconds_to_first_step": self._first_step,
        "steps_in_first_block": 1 if self._first_epoch == 1 else loop.run.plan.block_size,
        "num_params": num_params(loop),
        "device": jax.devices()[0].device_kind,
        "devices": layout.devices,
        "processes": layout.processes,
    }


def images_per_epoch(loop: Loop) -> int:
  """Examples one member trains on per epoch: updates x B."""
  return loop.run.plan.updates_per_epoch * loop.run.plan.batch_size


def num_params(loop: Loop) -> int:
  """Parameters of one member's model."""
  axis = 1 if loop.run.size > 1 else 0
  return sum(math.prod(p.shape[axis:]) for p in jax.tree.leaves(loop.state.params))
