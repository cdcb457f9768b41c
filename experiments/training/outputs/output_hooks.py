"""The hooks that report a run: config and metrics files, TensorBoard, console, progress.

The interface is ``loop/loop.py``'s ``Hook``: each reads the loop and writes
only its own outputs; a hook with ``writes`` runs only on the process that
writes the run's outputs. ``standard`` gives those every training run shows.
"""

import jax
import numpy as np
from absl import logging
from tqdm import tqdm

from data import files
from data import progress
from experiments.training.loop import record as record_lib
from experiments.training.loop.loop import Hook
from experiments.training.loop.loop import Loop
from experiments.training.settings import config as config_lib


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
    if not loop.all_diverged:
      label = self._label if loop.run.size > 1 else None
      files.write_jsonl(self._path, record_lib.metrics_rows(loop.records, label))


class TensorBoard(Hook):
  """Each member's curves and settings as TensorBoard event files (``tensorboard_log.py``)."""

  writes = True

  def __init__(self, directory: str, folds: bool):
    self._directory, self._folds, self._log = directory, folds, None

  def epoch(self, loop: Loop) -> None:
    if self._log is None:  # opened after the first epoch: its import is not start-up time
      from experiments.training.outputs import tensorboard_log
      run = loop.run
      self._log = tensorboard_log.Log(self._directory, run.members, self._folds, run.plan.schedule,
                                      run.plan.updates_per_epoch)
    self._log.epoch(loop.epoch, loop.new_rows)

  def end(self, loop: Loop) -> None:
    if self._log is not None:
      self._log.close(finished=loop.finished)


# The console's short names of the objectives' metrics.
SHORT = {"accuracy": "acc", "reconstruction_mse": "mse", "reconstruction": "rec",
         "generator_loss": "G loss", "d_real": "D(x)", "d_fake": "D(G(z))",
         "sample_classifier_score": "samples' score", "sample_frechet_distance": "FD"}


class Console(Hook):
  """The run's log lines: what trains where, the compile time, each epoch's metrics."""

  def __init__(self):
    self._compiled_logged = False

  def start(self, loop: Loop) -> None:
    run, config = loop.run, loop.run.config
    logging.info(
        "%s on %s: %d parameters%s, %s descent: %d updates of %d examples per epoch on %s%s",
        config.model, config.dataset, loop.num_params, f", {run.size} models" if run.size > 1
        else "", config.gd_mode, run.plan.updates_per_epoch, run.plan.batch_size,
        jax.devices()[0].device_kind, loop.pipeline.layout.describe())

  def epoch(self, loop: Loop) -> None:
    if not self._compiled_logged:
      logging.info("compiled in %.2fs", loop.program.compile_seconds)
      self._compiled_logged = True
    rows, records, objective = loop.rows, loop.records, loop.run.objective
    speed = loop.run.size * loop.images_per_epoch / rows[0]["epoch_seconds"]
    if len(rows) == 1:
      row = rows[0]
      splits = [s for s in ("train", "validation", "test") if f"{s}_loss" in row]
      extra = [f"{SHORT.get(k, k)} {row[k]:.4g}" for k in row if k.startswith("sample_")]
      logging.info("epoch %d: %s | %.0f images/s", loop.epoch, " | ".join(
          [f"{s} " + " ".join(f"{SHORT.get(m, m)} {row[f'{s}_{m}']:.4f}" for m in objective.metrics)
           for s in splits] + extra), speed)
      return
    split = "validation" if "validation_loss" in rows[0] else "test"
    metric = "accuracy" if "accuracy" in objective.metrics else "loss"
    values = [r[f"{split}_{metric}"] for r, rec in zip(rows, records) if not rec.diverged]
    logging.info("epoch %d: %d models, %s %s %s, %d diverged | %.0f images/s (all models)",
                 loop.epoch, len(rows), split, metric,
                 f"{np.mean(values):.4f} ± {np.std(values):.4f} (min "
                 f"{min(values):.4f}, max {max(values):.4f})" if values else "-",
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
      self._bar = progress.bar(total=run.plan.updates_per_epoch * run.size, unit="update",
                               leave=False, desc=f"epoch {loop.epoch + 1}/{run.config.num_epochs}")
    bar = self._shared if self._shared is not None else self._bar
    if bar is not None:
      bar.update(updates * run.size)

  def epoch(self, loop: Loop) -> None:
    if self._bar is not None:
      self._bar.close()
      self._bar = None

  def end(self, loop: Loop) -> None:
    """A run finished before its last epoch (patience, divergence) fills its share of ``bar``."""
    if self._shared is not None and loop.finished:
      run = loop.run
      self._shared.update((run.config.num_epochs - loop.epoch) * run.plan.updates_per_epoch
                          * run.size)


def standard(run, directory: str | None, bar: tqdm | None = None) -> list[Hook]:
  """TensorBoard (when the run writes ``directory`` and its config asks), the console, and
  progress on ``bar`` (else a bar per epoch)."""
  tensorboard = ([TensorBoard(directory, bool(run.config.folds))]
                 if directory and run.config.tensorboard else [])
  return [*tensorboard, Console(), Progress(bar)]
