"""A run's arrays placed on its devices, built once: the one pipeline every trainer uses.

run -> splits (host) -> the dataset, splits, evaluated indices and labels
placed by the run's layout (``sharding.Layout``) -> the initial state -> each
epoch's blocks of batch indices, drawn on the host and placed once. The
engine, the sweep's calibration and the benchmark all build it here.
"""

import numpy as np

from experiments.training.loop import batches as batches_lib
from experiments.training.loop import dataset as dataset_lib
from experiments.training.loop import run as run_lib
from experiments.training.loop import state as state_lib
from experiments.training.processes import sharding


class Pipeline:
  """The placed arrays of one run; ``blocks(epoch)`` gives an epoch's placed batch indices."""

  def __init__(self, run: run_lib.Run, data: dataset_lib.HostData, local: bool = False,
               inputs: dataset_lib.Inputs | None = None):
    self.run, self.data = run, data
    self.layout = layout = sharding.Layout(run.size, run.plan.batch_size, local)
    self.host_splits = host = batches_lib.splits(run, data)
    self.splits = batches_lib.Splits(*(
        layout.per_member(a) if a.ndim == base + 1 else layout.replicated(a)
        for a, base in zip(host, (1, 1, 0, 0))))
    self.inputs = layout.replicated(dataset_lib.to_device(data) if inputs is None else inputs)
    evaluated = {"test": dataset_lib.test_indices(data)}
    if host.validation.shape[-1]:
      evaluated = {"validation": host.validation, **evaluated}
    self.evaluated = {name: layout.examples(i) for name, i in evaluated.items()}
    self.labels = {name: layout.replicated(dataset_lib.labels(data, i))
                   for name, i in evaluated.items()}
    self.pixel_scaling = [(float(m), float(s)) for m, s in zip(
        np.broadcast_to(host.pixel_mean, (run.size,)),
        np.broadcast_to(host.pixel_std, (run.size,)))]

  def initial_state(self) -> state_lib.TrainState:
    """Every member's state at step 0, placed (no member axis when K = 1)."""
    return self.layout.per_member(state_lib.initial_state(self.run))

  def blocks(self, epoch: int, first_steps_alone: bool = False) -> list:
    """``epoch``'s blocks of batch indices, drawn on the host and placed once."""
    batches = batches_lib.epoch_batches(self.run, self.host_splits, epoch)
    return [self.layout.batches(b)
            for b in batches_lib.epoch_blocks(self.run, batches, first_steps_alone)]
