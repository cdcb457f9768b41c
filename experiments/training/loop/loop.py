"""The training loop's state and the hook interface: what ``engine.fit`` advances and calls.

``engine.fit`` advances a ``Loop`` (where the run stands) and calls each hook
in order: ``start`` once before training (after which the loop may already
be finished: a complete run found on disk), ``block`` after each compiled
block of updates, ``epoch`` after each epoch's evaluation, ``end`` once.
The order matters only where one hook reads what another wrote:
``Stopping`` records the epoch before ``Checkpointing`` saves it, and
``Checkpointing.start`` restores before the others start. A hook whose
``writes`` is True runs only on the process that writes the run's outputs.
The hooks that steer the run are in ``hooks.py``, those that report it in
``output_hooks.py``.
"""

import dataclasses
import math

import jax
import numpy as np


@dataclasses.dataclass
class Loop:
  """Where a run's training stands; ``fit`` returns it as the run's result.

  ``state``, ``kept`` and ``test_outputs`` have a leading member axis only
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
