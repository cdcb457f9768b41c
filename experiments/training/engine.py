"""fit(run, ...): the one training loop, for a single model and for many trained together.

Data flows one way: the dataset on the device -> each epoch's batches ->
compiled blocks of train steps for all K members -> exact evaluation of
every member on its validation split and on the test split -> each member's
record (``record.py``: divergence, early stopping, the model to keep) ->
``on_epoch`` (metrics.jsonl, ...), TensorBoard events (``tensorboard_log.py``)
and Orbax checkpoints. A run directory with
a checkpoint is resumed: data order and dropout keys are functions of the
seed, the epoch and the step, so the result equals an uninterrupted run's
bit for bit.
"""

import dataclasses
import math
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from tqdm import tqdm

from experiments.training import checkpoints as checkpoints_lib
from experiments.training import inputs as inputs_lib
from experiments.training import programs as programs_lib
from experiments.training import record as record_lib
from experiments.training import report
from experiments.training import run as run_lib
from experiments.training import sharding
from experiments.training import state as state_lib


@dataclasses.dataclass
class Result:
  """What a run leaves: each member's record and test metrics, the models kept, timings."""

  run: run_lib.Run
  records: list[record_lib.MemberRecord]
  test_metrics: list[dict | None]  # of each member's kept model; None if it never trained well
  kept: dict  # the kept variables, stacked (K, ...)
  test_logits: np.ndarray  # (K, n_test, C) of the kept models
  pixel_scaling: list[tuple[float, float]]  # each member's (mean, std)
  timing: dict
  resumed_from: int | None = None  # the epoch of the checkpoint resumed from
  already_finished: bool = False  # the directory held a finished run: nothing was trained
  checkpoint_epoch: int | None = None  # the epoch of the newest checkpoint, after the run


def _per_member(counts) -> list[dict]:
  loss, correct, count = (np.asarray(a, np.float64) for a in sharding.to_host(counts))
  return [{"loss": float(l / n), "accuracy": float(c / n)} for l, c, n in zip(loss, correct, count)]


@jax.jit
def _keep(changed: jax.Array, new: dict, old: dict) -> dict:
  """Member k's variables from ``new`` where ``changed[k]``, else from ``old``."""
  def pick(a, b):
    return jnp.where(changed.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
  return jax.tree.map(pick, new, old)


def _log_epoch(epoch: int, rows: list[dict], records, images_per_second: float) -> None:
  if len(rows) == 1:
    row = rows[0]
    splits = [s for s in ("validation", "test") if f"{s}_loss" in row]
    logging.info("epoch %d: train loss %.4f acc %.4f | %s | %.0f images/s", epoch,
                 row["train_loss"], row["train_accuracy"],
                 " | ".join(f"{s} loss {row[f'{s}_loss']:.4f} acc {row[f'{s}_accuracy']:.4f}"
                            for s in splits), images_per_second)
    return
  split = "validation" if "validation_accuracy" in rows[0] else "test"
  accuracies = [r[f"{split}_accuracy"] for r, rec in zip(rows, records) if not rec.diverged]
  logging.info("epoch %d: %d models, %s accuracy %s, %d diverged | %.0f images/s (all models)",
               epoch, len(rows), split,
               f"{np.mean(accuracies):.4f} ± {np.std(accuracies):.4f} (min {min(accuracies):.4f}, "
               f"max {max(accuracies):.4f})" if accuracies else "-",
               sum(1 for rec in records if rec.diverged), images_per_second)


def fit(run: run_lib.Run, data: inputs_lib.HostData, inputs: inputs_lib.Inputs,
        directory: str | None = None, *,
        on_start: Callable[[], None] | None = None,
        on_epoch: Callable[[list[record_lib.MemberRecord]], None] | None = None,
        bar: tqdm | None = None, started_at: float | None = None, local: bool = False) -> Result:
  """Trains the run's K members together; checkpoints into and resumes from ``directory``.

  Args:
    run: the members and what they share (``run.make_run``).
    data: the dataset on the host (its sizes, labels and class names).
    inputs: the same dataset on the device (``inputs.to_device``).
    directory: where ``checkpoints/`` lives; None: no checkpoints.
    on_start: called once a checkpoint in ``directory`` (if any) was found to
      belong to this run, before anything is trained or written.
    on_epoch: called with the members' records after every epoch that
      recorded a good row.
    bar: a progress bar to advance by each update of each member; None: one
      bar per epoch when ``run.config.progress``.
    started_at: ``time.perf_counter()`` at process start, for
      ``seconds_to_first_step``; defaults to now.
    local: train on this process's devices alone, when the other processes
      of a multi-process job train other runs (``sharding.Layout``).
    Over several processes, only the writing process (0, or this one when
    ``local``) calls ``on_start`` and ``on_epoch`` and shows progress;
    checkpoints are written by every process of the run.

  Returns:
    The Result. A member whose loss became NaN or infinite is recorded as
    diverged (``record.py``); when every member has diverged, no checkpoint of
    that epoch is written.
  """
  started_at = time.perf_counter() if started_at is None else started_at
  config, plan, size = run.config, run.plan, run.size
  layout = sharding.Layout(size, plan.batch_size, local)
  if not layout.writer:
    on_start = on_epoch = bar = None
  host_splits = inputs_lib.splits(run, data)
  splits = inputs_lib.Splits(*(layout.per_member(a) if a.ndim == base + 1 else
                               layout.replicated(a)
                               for a, base in zip(host_splits, (1, 1, 0, 0))))
  inputs = layout.replicated(inputs)
  host_evaluated = {"test": inputs_lib.test_indices(data)}
  if host_splits.validation.shape[-1]:
    host_evaluated = {"validation": host_splits.validation, **host_evaluated}
  evaluated = {name: layout.examples(i) for name, i in host_evaluated.items()}
  labels = {name: layout.replicated(inputs_lib.labels(data, i))
            for name, i in host_evaluated.items()}
  state = layout.per_member(state_lib.initial_state(run))
  kept = jax.tree.map(jnp.copy, state.variables)  # the state's buffers are donated
  records = [record_lib.MemberRecord() for _ in run.members]
  scaling = [(float(m), float(s)) for m, s in zip(
      np.broadcast_to(host_splits.pixel_mean, (size,)),
      np.broadcast_to(host_splits.pixel_std, (size,)))]
  checkpoints = checkpoints_lib.Checkpoints(directory, local) if directory else None
  resumed_from, finished = None, False
  saved = checkpoints.restore(state, lambda record: checkpoints_lib.check_same_members(
      run.members, record, directory)) if checkpoints else None
  if saved:
    state, kept, resumed_from = saved.state, saved.model, saved.epoch
    records = [record_lib.from_json(r) for r in saved.record["records"]]
    finished = saved.record["finished"]
    if finished:
      logging.info("this run is already complete (the checkpoint of epoch %d in %s): nothing to "
                   "train; its results are evaluated and written again", saved.epoch,
                   checkpoints.directory)
    else:
      logging.info("resuming from the checkpoint of epoch %d in %s", saved.epoch,
                   checkpoints.directory)
    if bar is not None:
      bar.update(saved.epoch * plan.updates_per_epoch * size)
  if on_start:
    on_start()

  keys = inputs_lib.shuffle_keys(run)

  def blocks(epoch):
    """The epoch's blocks of batch indices; epoch 1 begins with its first block's steps one by one.

    So a fresh run shows (and times, as ``seconds_to_first_step``) its first
    update after one step, not one block: a block of the cnn is ~4 s on 2 CPU
    cores. Only epoch 1 does this, which a resumed run never repeats, so
    resuming stays exact.
    """
    batches = sharding.to_host(inputs_lib.epoch_batches(run, splits, keys, epoch))
    shape = (plan.updates_per_epoch // plan.block_size, plan.block_size, plan.batch_size)
    if batches.ndim == 2:
      host_blocks = list(batches.reshape(shape))
    else:
      host_blocks = list(batches.reshape(size, *shape).swapaxes(0, 1))
    if epoch == 1 and plan.block_size > 1:
      first = host_blocks.pop(0)
      host_blocks[:0] = [first[..., i:i + 1, :] for i in range(plan.block_size)]
    return [layout.batches(b) for b in host_blocks]

  first_epoch = (resumed_from or 0) + 1
  training = not finished and first_epoch <= config.num_epochs
  first_blocks = blocks(first_epoch) if training else None
  # A fresh run's first steps have a one-step program of their own, compiled
  # first; the block program and the predictors are compiled after step 1.
  fresh = training and first_epoch == 1 and plan.block_size > 1
  step_program = (programs_lib.compile_programs(run, state, inputs, splits, first_blocks[0], {})
                  if fresh else None)

  def compile_rest(state):
    compiled = programs_lib.compile_programs(
        run, state, inputs, splits, first_blocks[-1] if training else None, evaluated)
    logging.info("compiled in %.2fs", compiled.compile_seconds + (
        step_program.compile_seconds if step_program else 0.0))
    return compiled

  num_params = sum(math.prod(p.shape[1:]) for p in jax.tree.leaves(state.params))
  logging.info(
      "%s on %s: %d parameters%s, %s descent: %d updates of %d examples per epoch on %s%s",
      config.model, config.dataset, num_params, f", {size} models" if size > 1 else "",
      config.gd_mode, plan.updates_per_epoch, plan.batch_size, jax.devices()[0].device_kind,
      layout.describe())
  programs = None if fresh else compile_rest(state)

  def evaluate(variables, name):
    return programs.predictors[name](variables, inputs, splits, evaluated[name])

  train_seconds, seconds_to_first_step, epochs_run = 0.0, None, 0
  test_metrics, test_logits, events = None, None, None
  for epoch in range(first_epoch, config.num_epochs + 1) if training else ():
    epoch_blocks = first_blocks if epoch == first_epoch else blocks(epoch)
    totals, epoch_start = None, time.perf_counter()
    own_bar = bar is None and config.progress and layout.writer
    progress = tqdm(total=plan.updates_per_epoch * size, desc=f"epoch {epoch}/{config.num_epochs}",
                    unit="update", leave=False) if own_bar else bar
    for block in epoch_blocks:
      steps_in_block = block.shape[-2]
      program = step_program if steps_in_block < plan.block_size else programs
      state, counts = program.train_block(state, inputs, splits, block)
      counts = jax.block_until_ready(counts)  # honest timing and progress
      if seconds_to_first_step is None:
        seconds_to_first_step = time.perf_counter() - started_at
      if programs is None:
        programs = compile_rest(state)
        epoch_start += programs.compile_seconds  # compiling is not training time
      totals = counts if totals is None else totals + counts
      if progress is not None:
        progress.update(steps_in_block * size)
    if own_bar:
      progress.close()
    seconds = time.perf_counter() - epoch_start
    train_seconds, epochs_run = train_seconds + seconds, epochs_run + 1

    results = {"train": _per_member(totals)}
    for name in evaluated:
      results[name] = _per_member(programs_lib.counts(evaluate(state.variables, name),
                                                      labels[name]))
    rows = [record_lib.epoch_row(epoch, {s: r[k] for s, r in results.items()}, seconds,
                                 plan.updates_per_epoch * plan.batch_size) for k in range(size)]
    lengths = [len(r.history) for r in records]
    changed = [rec.update(row, config.patience, run.num_classes)
               for rec, row in zip(records, rows)]
    good = any(len(r.history) > n for r, n in zip(records, lengths))
    _log_epoch(epoch, rows, records, size * plan.updates_per_epoch * plan.batch_size / seconds)
    if directory and config.tensorboard and layout.writer:
      if events is None:  # opened after the first epoch: its import is not start-up time
        from experiments.training import tensorboard_log  # pylint: disable=g-import-not-at-top
        events = tensorboard_log.Log(directory, run.members, bool(config.folds), plan.schedule,
                                     plan.updates_per_epoch)
      events.epoch(epoch, [row if len(r.history) > n else None
                           for row, r, n in zip(rows, records, lengths)])
    if not good:  # every member still training diverged: keep the last checkpoint as it is
      break
    kept = _keep(np.asarray(changed), state.variables, kept)
    last = epoch == config.num_epochs or all(r.done for r in records)
    if last:
      test_logits = sharding.to_host(evaluate(kept, "test"))
      test_metrics = _test_metrics(test_logits, records, data)
    if checkpoints and (last or config.checkpoint_every_epoch):
      checkpoints.save(epoch, state, kept, checkpoints_lib.record(run, records, last, test_metrics,
                                                              data, scaling), _loss(rows, records))
    if on_epoch:
      on_epoch(records)
    if last:
      break

  if events is not None:
    events.close(finished=test_metrics is not None)
  if test_logits is None:  # finished before, or every member diverged
    test_logits = sharding.to_host(evaluate(kept, "test"))
    test_metrics = (saved.record["test_metrics"] if finished
                    else _test_metrics(test_logits, records, data))
  images = epochs_run * plan.updates_per_epoch * plan.batch_size * size
  timing = {
      "train_seconds": train_seconds,
      "train_images_per_second": images / train_seconds if train_seconds else None,
      "compile_seconds": programs.compile_seconds + (step_program.compile_seconds
                                                     if step_program else 0.0),
      "seconds_to_first_step": seconds_to_first_step,  # when the first block finished
      "steps_in_first_block": 1 if first_epoch == 1 else plan.block_size,
      "num_params": num_params,
      "device": jax.devices()[0].device_kind,
      "devices": layout.devices,
      "processes": layout.processes,
  }
  return Result(run, records, test_metrics, kept, test_logits, scaling, timing, resumed_from,
                finished, checkpoints.latest_epoch() if checkpoints else None)


def _loss(rows: list[dict], records) -> float:
  """What ranks a checkpoint: the mean validation (else train) loss of the members still good."""
  split = "validation" if "validation_loss" in rows[0] else "train"
  losses = [row[f"{split}_loss"] for row, r in zip(rows, records) if not r.diverged]
  return float(np.mean(losses)) if losses else float("inf")


def _test_metrics(logits, records, data) -> list[dict | None]:
  """Each member's test report of its kept model (None for a member with no good epoch)."""
  return [report.test_metrics(logits[k], data.test_labels, data.class_names)
          if r.best_epoch else None for k, r in enumerate(records)]
