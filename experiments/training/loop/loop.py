"""fit(run, data, directory): the one training loop, for a single model and for many together.

``fit`` reads top to bottom: resume from the newest good checkpoint in
``directory``; then each epoch trains its blocks of steps (compiled for all K
members, ``programs.py``), evaluates every member on every split, takes the
decisions (``decisions.decide``: divergence, patience, the models kept, the
end of the run), saves a checkpoint (``resume.save``) and shows the epoch to
the hooks. A signal is noted and acted on at the next step boundary
(``signals.py``). Hooks observe a read-only ``Loop``: they write files,
TensorBoard events, the console and progress bars, and never change the run's
course. Data order and step keys are functions of the seed, the epoch and
the step, so a resumed run equals an uninterrupted one bit for bit.

The words: a *run* is K >= 1 members trained together; its *records* are the
members' histories (``record.py``); a run ends *finished* (every member done,
or the last epoch), *all diverged* (nothing of the epoch is kept) or
*interrupted* (by a signal); *already finished* is a run found finished on
disk. A member is *done* once it stopped early or diverged.
"""

import dataclasses
import math
import operator
import time

import jax

from experiments.training.loop import dataset as dataset_lib
from experiments.training.loop import decisions
from experiments.training.loop import programs as programs_lib
from experiments.training.loop import record as record_lib
from experiments.training.loop import resume
from experiments.training.loop import signals
from experiments.training.processes import distributed
from experiments.training.storage import checkpoints as checkpoints_lib

_copy = jax.jit(lambda tree: jax.tree.map(jax.numpy.copy, tree))  # one call for the whole tree


@dataclasses.dataclass
class Loop:
  """Where a run's training stands; ``fit`` returns it as the run's result.

  Written only by ``fit`` and its decisions (``decisions.py``, ``resume.py``);
  hooks read it. ``state``, ``kept`` and ``test_outputs`` have a leading member
  axis only when the run has K > 1 members; ``records``, ``rows`` and
  ``test_metrics`` are lists with one entry per member.
  """

  run: object  # run.Run
  pipeline: object  # programs.Pipeline
  program: object  # programs.Program
  state: object  # state.TrainState
  kept: dict  # each member's model to keep: {"params"[, "batch_stats"]}
  records: list  # record.MemberRecord of each member
  epoch: int = 0  # the last epoch trained (or restored)
  rows: list = dataclasses.field(default_factory=list)  # each member's row of that epoch
  new_rows: list = dataclasses.field(default_factory=list)  # those recorded (None: not)
  finished: bool = False
  all_diverged: bool = False  # every member still training diverged: nothing of it kept
  interrupted: int | None = None  # the signal that stopped the run at a step boundary
  already_finished: bool = False  # the directory held a finished run: nothing was trained
  resumed_from: int | None = None  # the epoch of the checkpoint resumed from
  checkpoint_epoch: int | None = None  # the newest checkpoint's epoch, after the run
  test_outputs: object = None  # the objective's outputs of the kept models on the test split
  test_metrics: list | None = None  # of each member's kept model; None: no good epoch
  timing: dict = dataclasses.field(default_factory=dict)

  @property
  def pixel_scaling(self) -> list[tuple[float, float]]:
    return self.pipeline.pixel_scaling

  @property
  def images_per_epoch(self) -> int:
    """Examples one member trains on per epoch: updates x B."""
    return self.run.plan.updates_per_epoch * self.run.plan.batch_size

  @property
  def num_params(self) -> int:
    """Parameters of one member's model."""
    axis = 1 if self.run.size > 1 else 0
    return sum(math.prod(p.shape[axis:]) for p in jax.tree.leaves(self.state.params))


class Hook:
  """An observer of the loop: ``start`` once (after resuming), ``block`` after each compiled
  block of updates, ``epoch`` after each epoch's decisions, ``end`` once. Reads the Loop,
  never writes it. A hook whose ``writes`` is True runs only on the process that writes the
  run's outputs."""

  writes = False

  def start(self, loop: Loop) -> None:
    pass

  def block(self, loop: Loop, updates: int) -> None:
    """After a block of ``updates`` updates of each member."""

  def epoch(self, loop: Loop) -> None:
    pass

  def end(self, loop: Loop) -> None:
    pass


def fit(run, data: dataset_lib.HostData, directory: str | None = None, *, hooks=(),
        local: bool = False, inputs: dataset_lib.Inputs | None = None,
        started_at: float | None = None, diverged_is_finished: bool = False,
        epoch_metrics=None) -> Loop:
  """Trains the run's K members together; checkpoints into and resumes from ``directory``.

  ``hooks`` observe (``Hook``); ``local``: this process trains the run alone (the
  others of a multi-process job train other runs); ``inputs``: the dataset already on
  the device; ``started_at``: the process's start; ``diverged_is_finished``: see
  ``decisions.decide``; ``epoch_metrics(run, variables, data)``: each member's figures
  beyond the splits' (a generator's sample scores). Raises ``errors.Interrupted`` after a
  signal.
  """
  clock = _Clock(time.perf_counter() if started_at is None else started_at)
  pipeline = programs_lib.Pipeline(run, data, local, inputs)
  program = programs_lib.Program(pipeline)
  state = pipeline.initial_state()
  loop = Loop(run, pipeline, program, state, kept=_copy(state.variables),
              records=[record_lib.MemberRecord() for _ in run.members])
  hooks = [h for h in hooks if distributed.is_leader(local) or not h.writes]
  checkpoints = checkpoints_lib.Checkpoints(directory, local) if directory else None
  saved_test_metrics = resume.resume(loop, checkpoints, directory) if checkpoints else None
  for hook in hooks:
    hook.start(loop)
  with signals.caught() as received:
    while not (loop.finished or loop.all_diverged) and loop.epoch < run.config.num_epochs:
      epoch, totals = loop.epoch + 1, None
      blocks = pipeline.blocks(epoch, first_steps_alone=epoch == 1)  # host work, not timed
      clock.start_epoch(program)
      for block in blocks:
        loop.state, sums = program.train_block(loop.state, block)
        totals = _add(totals, jax.block_until_ready(sums))  # honest timing and progress
        clock.block(epoch)
        for hook in hooks:
          hook.block(loop, block.shape[-2])
        if received.signum:  # a signal: stop at this step boundary, the partial epoch dropped
          break
      if not received.signum:
        loop.epoch, loop.rows = epoch, _rows(loop, epoch, totals, clock.end_epoch(program),
                                             epoch_metrics)
        decisions.decide(loop, diverged_is_finished)
        if checkpoints:
          resume.save(loop, checkpoints)
        for hook in hooks:
          hook.epoch(loop)
      if received.signum:
        loop.interrupted = received.signum
        break
    if not loop.interrupted and loop.test_outputs is None:  # finished before, or all diverged
      decisions.evaluate_test(loop)
    if loop.already_finished:
      loop.test_metrics = saved_test_metrics
    loop.checkpoint_epoch = checkpoints.latest_epoch() if checkpoints else None
    loop.timing = clock.timing(loop)
    for hook in hooks:
      hook.end(loop)
  if loop.interrupted:
    raise signals.interrupted(loop.interrupted, loop.epoch, loop.checkpoint_epoch, directory)
  return loop


def _add(totals, sums):
  return sums if totals is None else jax.tree.map(operator.add, totals, sums)


def _rows(loop: Loop, epoch: int, totals, seconds: float, epoch_metrics) -> list[dict]:
  """Each member's row of ``epoch``: its metrics on every split (train: the epoch's sums)."""
  run, program = loop.run, loop.program
  results = {"train": programs_lib.member_metrics(run.objective, totals, run.size)}
  results.update({name: program.evaluate(loop.state.variables, name)
                  for name in loop.pipeline.evaluated})
  extra = (epoch_metrics(run, loop.state.variables, loop.pipeline.data) if epoch_metrics
           else [{}] * run.size)
  return [record_lib.epoch_row(epoch, {s: r[k] for s, r in results.items()}, seconds,
                               loop.images_per_epoch, extra[k])
          for k in range(run.size)]


class _Clock:
  """The run's timing figures: each epoch's training time (compiling left out), start-up."""

  def __init__(self, started_at: float):
    self._started_at = started_at
    self._first_step, self._first_epoch, self._seconds, self._epochs = None, None, 0.0, 0
    self._epoch_start, self._compiling = 0.0, 0.0

  def start_epoch(self, program) -> None:
    self._epoch_start, self._compiling = time.perf_counter(), program.compile_seconds

  def block(self, epoch: int) -> None:
    if self._first_step is None:  # when the first block finished, as the host sees it
      self._first_step = time.perf_counter() - self._started_at
      self._first_epoch = epoch

  def end_epoch(self, program) -> float:
    """The epoch's training seconds, less the compiling it included."""
    seconds = (time.perf_counter() - self._epoch_start
               - (program.compile_seconds - self._compiling))
    self._seconds += seconds
    self._epochs += 1
    return seconds

  def timing(self, loop: Loop) -> dict:
    images = self._epochs * loop.images_per_epoch * loop.run.size
    layout = loop.pipeline.layout
    return {
        "train_seconds": self._seconds,
        "train_images_per_second": images / self._seconds if self._seconds else None,
        "compile_seconds": loop.program.compile_seconds,
        "seconds_to_first_step": self._first_step,
        "steps_in_first_block": 1 if self._first_epoch == 1 else loop.run.plan.block_size,
        "num_params": loop.num_params,
        "device": jax.devices()[0].device_kind,
        "devices": layout.devices,
        "processes": layout.processes,
    }
