"""fit(run, data, ...): the one training loop, for a single model and for many trained together.

Data flows one way: the dataset on the device (``pipeline.py``) -> each
epoch's blocks of batch indices -> compiled blocks of train steps for all K
members (``programs.py``) -> each member's metrics on the train, validation
and test splits -> the hooks (interface ``loop.py``; ``hooks.py``: records,
kept models, checkpoints, signals; ``output_hooks.py``: files, logs,
progress and timings). A run directory with
a checkpoint is resumed: data order and dropout keys are functions of the
seed, the epoch and the step, so the result equals an uninterrupted run's
bit for bit.
"""

import operator
import time

import jax

from experiments.training.loop import dataset as dataset_lib
from experiments.training.processes import distributed
from experiments.training.loop import hooks as hooks_lib
from experiments.training.loop import loop as loop_lib
from experiments.training.outputs import output_hooks
from experiments.training.loop import pipeline as pipeline_lib
from experiments.training.loop import programs as programs_lib
from experiments.training.loop import record as record_lib
from experiments.training.loop import run as run_lib


_copy = jax.jit(lambda tree: jax.tree.map(jax.numpy.copy, tree))  # one call for the whole tree


def fit(run: run_lib.Run, data: dataset_lib.HostData, directory: str | None = None, *,
        hooks=(), bar=None, local: bool = False, inputs: dataset_lib.Inputs | None = None,
        started_at: float | None = None, diverged_is_finished: bool = False) -> loop_lib.Loop:
  """Trains the run's K members together; checkpoints into and resumes from ``directory``.

  ``hooks`` are added to the standard ones (stopping, checkpoints in
  ``directory``, TensorBoard, console, progress on ``bar`` or a bar per
  epoch, timings from ``started_at``, signals: Ctrl-C stops at a step
  boundary and raises ``errors.Interrupted``). ``local``: this process trains
  the run alone while the others of a multi-process job train other runs.
  ``inputs``: the dataset already on the device. ``diverged_is_finished``:
  a run whose every member diverged ends as finished (``hooks.Stopping``).
  Returns the final Loop.
  """
  pipeline = pipeline_lib.Pipeline(run, data, local, inputs)
  program = programs_lib.Program(pipeline)
  state = pipeline.initial_state()
  loop = loop_lib.Loop(run, pipeline, program, state, kept=_copy(state.variables),
                       records=[record_lib.MemberRecord() for _ in run.members])
  signals = hooks_lib.Signals(directory)
  hooks = _standard_hooks(run, directory, local, bar, started_at, hooks, signals,
                          hooks_lib.Stopping(diverged_is_finished))
  for hook in hooks:
    hook.start(loop)
  with signals.restored_after():
    _train(loop, hooks)
    for hook in hooks:
      hook.end(loop)
  return loop


def _standard_hooks(run, directory, local, bar, started_at, extra, signals, stopping) -> list:
  """Stopping, checkpoints, the caller's, TensorBoard, console, progress, timings, signals;
  on a process that does not write the run's outputs, those that write are left out."""
  hooks = [stopping,
           *([hooks_lib.Checkpointing(directory, local)] if directory else []),
           *extra, *run.objective.hooks(directory),
           *([output_hooks.TensorBoard(directory, bool(run.config.folds))]
             if directory and run.config.tensorboard else []),
           output_hooks.Console(), output_hooks.Progress(bar),
           output_hooks.Timings(started_at), signals]
  return [h for h in hooks if distributed.is_leader(local) or not h.writes]


def _train(loop: loop_lib.Loop, hooks: list) -> None:
  """Each epoch's blocks, then every member's metrics on every split, then the epoch hooks."""
  run, pipeline, program = loop.run, loop.pipeline, loop.program
  while (not (loop.finished or loop.stop or loop.interrupted)
         and loop.epoch < run.config.num_epochs):
    epoch, compiling = loop.epoch + 1, program.compile_seconds
    blocks = pipeline.blocks(epoch, first_steps_alone=epoch == 1)  # host work, not timed
    start, totals = time.perf_counter(), None
    for block in blocks:
      loop.state, sums = program.train(loop.state, block)
      sums = jax.block_until_ready(sums)  # honest timing and progress
      totals = sums if totals is None else jax.tree.map(operator.add, totals, sums)
      for hook in hooks:
        hook.block(loop, block.shape[-2])
      if loop.interrupted:  # a signal: stop at this step boundary
        break
    if loop.interrupted:
      break
    seconds = time.perf_counter() - start - (program.compile_seconds - compiling)
    results = {"train": programs_lib.member_metrics(run.objective, totals, run.size)}
    results.update({name: program.evaluate(loop.state.variables, name)
                    for name in pipeline.evaluated})
    loop.epoch = epoch
    extra = run.objective.epoch_metrics(run, loop.state.variables, pipeline.data)
    loop.rows = [record_lib.epoch_row(epoch, {s: r[k] for s, r in results.items()}, seconds,
                                      run.plan.updates_per_epoch * run.plan.batch_size, extra[k])
                 for k in range(run.size)]
    for hook in hooks:
      hook.epoch(loop)
