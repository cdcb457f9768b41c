"""A run's checkpoints from the loop's side: resuming from the newest good one, saving an epoch.

A checkpoint of another run is refused (``manifest.check_same_members``)
before anything is trained or written. Saving happens at the end of the run and,
with ``checkpoint_every_epoch`` (the default), after every epoch that was not
all diverged.
"""

import os

from absl import logging

from experiments.training.loop import decisions
from experiments.training.loop import record as record_lib
from experiments.training.storage import checkpoints as checkpoints_lib
from experiments.training.storage import manifest as manifest_lib


def resume(loop, checkpoints: checkpoints_lib.Checkpoints, run_directory: str) -> list | None:
  """Restores ``loop`` from the newest good checkpoint in ``run_directory``; returns the saved
  test metrics of a finished run (None otherwise)."""
  directory = checkpoints.directory
  if not checkpoints.epochs() and os.path.exists(os.path.join(run_directory, "metrics.jsonl")):
    logging.info("starting over: %s holds no checkpoint of the epochs its metrics.jsonl "
                 "lists", run_directory)
  saved = checkpoints.restore(
      loop.state, lambda manifest: manifest_lib.check_same_members(
          loop.run.members, manifest, run_directory), stacked=loop.run.size > 1)
  if not saved:
    return None
  loop.state, loop.kept, loop.epoch = saved.state, saved.model, saved.epoch
  loop.resumed_from = saved.epoch
  loop.records = [record_lib.from_json(r) for r in saved.manifest["records"]]
  loop.finished = loop.already_finished = saved.manifest["finished"]
  if loop.finished:
    logging.info("this run is already complete (the checkpoint of epoch %d in %s): nothing to "
                 "train; its results are evaluated and written again", saved.epoch, directory)
  else:
    logging.info("resuming from the checkpoint of epoch %d in %s", saved.epoch, directory)
  return saved.manifest["test_metrics"]


def save(loop, checkpoints: checkpoints_lib.Checkpoints) -> None:
  """Saves the epoch just decided, when the run is finished or saves every epoch."""
  if loop.all_diverged or not (loop.finished or loop.run.config.checkpoint_every_epoch):
    return
  manifest = manifest_lib.make_manifest(loop.run, loop.records, loop.finished,
                                           loop.test_metrics, loop.pipeline.data,
                                           loop.pixel_scaling)
  checkpoints.save(loop.epoch, loop.state, loop.kept, manifest,
                   decisions.ranking_loss(loop.rows, loop.records), stacked=loop.run.size > 1)
