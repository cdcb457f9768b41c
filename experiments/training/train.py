"""train_and_evaluate(config, workdir): one model, or k-fold cross-validation, with its outputs.

A TrainConfig becomes one run: K = 1 member, or with ``folds`` = k the k
members that validate on folds 0..k-1 (trained together, vmapped). The
workdir receives ``config.json`` (the resolved config), ``metrics.jsonl``
(one line per member per epoch), Orbax checkpoints, ``summary.json`` and PNG
figures; a workdir holding a checkpoint of the same run is resumed. Over
several processes (``distributed.py``) all train and process 0 writes.
"""

import dataclasses
import os

import jax
from absl import logging

from data import files
from experiments.training.loop import dataset
from experiments.training.loop import loop
from experiments.training.loop import memory
from experiments.training.loop import record as record_lib
from experiments.training.loop import run as run_lib
from experiments.training.outputs import output_hooks
from experiments.training.outputs import tables
from experiments.training.processes import distributed
from experiments.training.processes import sharding
from experiments.training.reports import objective_reports
from experiments.training.settings import config as config_lib
from experiments.training.settings.config import TrainConfig
from experiments.training.storage import manifest


def members(config: TrainConfig) -> list[TrainConfig]:
  """The models a config trains: itself, or one per fold with ``folds``."""
  if not config.folds:
    return [config]
  return [dataclasses.replace(config, fold=i) for i in range(config.folds)]


def _diverged_message(result: loop.Loop) -> str:
  kept = result.checkpoint_epoch
  where = "; ".join(f"fold {k} at {r.diverged}" if len(result.records) > 1 else
                    f"at {r.diverged}" for k, r in enumerate(result.records))
  if not any(r.history for r in result.records):
    return f"training diverged {where}; lower the learning rate; no epoch trained well, " \
           "so nothing was saved"
  return (f"training diverged {where}; lower the learning rate; "
          + (f"the checkpoint of epoch {kept} and " if kept else "")
          + "metrics.jsonl of the epochs before are kept")


def _member_summary(record: record_lib.MemberRecord, test_metrics: dict | None) -> dict:
  kept = record.kept_row or {}
  return {
      "epoch": record.best_epoch,  # of the model the metrics describe
      "epochs_trained": len(record.history),
      "stopped_early": record.stopped_early,
      "diverged": record.diverged,
      **{k: v for k, v in kept.items() if k.startswith(record_lib.SPLITS)},
      "test_metrics": test_metrics,
  }


def cross_validation(folds: list[dict]) -> dict:
  """Mean and (population) std over folds of the kept models' metrics (None if one diverged)."""
  return tables.mean_std(folds, ("validation_accuracy", "validation_loss", "test_accuracy",
                                 "test_loss"))


def train_and_evaluate(config: TrainConfig, workdir: str, started_at: float | None = None) -> dict:
  """Trains the resolved ``config``'s model (or its k folds), evaluates every epoch, writes
  ``workdir``; returns the summary, also written to ``workdir/summary.json``.

  Raises:
    UserError: an invalid setting, or a workdir holding another run's checkpoint.
    TrainingDiverged: every model diverged; the last checkpoint and
      metrics.jsonl are left as they were after the last good epoch.
  """
  with files.removed_if_left_empty(workdir):
    run, data, report = _prepare(config, workdir)
    with files.workdir_lock(workdir, jax.process_index()):
      logging.info("optimizer %s; α = %g (%s schedule over %d updates)%s",
                   run.describe_optimizer(config), config.learning_rate, config.schedule,
                   run.plan.total_steps, f", gradients clipped to global norm "
                   f"{config.clip_norm:g}" if config.clip_norm else "")
      hooks = [output_hooks.ConfigFile(os.path.join(workdir, "config.json"), config),
               output_hooks.MetricsFile(os.path.join(workdir, "metrics.jsonl"), "fold"),
               *report.hooks(workdir), *output_hooks.standard(run, workdir)]
      result = loop.fit(run, data, workdir, hooks=hooks, started_at=started_at,
                        epoch_metrics=report.epoch_metrics)
      return _summary(config, run, data, workdir, result, report)


def _prepare(config: TrainConfig, workdir: str):
  """The run, its data and its report, after every check that can fail before training."""
  manifest.check_writable(workdir)
  manifest.check_same_run(workdir, members(config))
  data = dataset.load(config)
  run = run_lib.make_run(members(config), data.input_shape, len(data.class_names),
                         data.num_examples)
  sharding.Layout(run.size, run.plan.batch_size)  # refuses a batch the devices cannot split,
  memory.members_that_fit(run, data, run.size, "use a smaller model or batch")  # before placing
  return run, data, objective_reports.make(config, train_and_evaluate)  # a scorer, once


def _summary(config: TrainConfig, run: run_lib.Run, data: dataset.HostData, workdir: str,
             result: loop.Loop, report: objective_reports.Report) -> dict:
  """summary.json of a finished run, with the report's fields and figures; written by the
  process that writes the run's outputs."""
  path = lambda name: os.path.join(workdir, name)  # noqa: E731
  if all(r.diverged for r in result.records):
    raise record_lib.TrainingDiverged(_diverged_message(result))

  per_member = [_member_summary(r, m) for r, m in zip(result.records, result.test_metrics)]
  summary = {
      **{k: v for k, v in config_lib.to_json(config).items()
         if k not in config_lib.OUTPUT_SETTINGS},
      "optimizer_rule": run.describe_optimizer(config),
      "batch_size": run.plan.batch_size,
      "updates_per_epoch": run.plan.updates_per_epoch,
      "already_complete": result.already_finished,
      "checkpoint": os.path.join(workdir, "checkpoints", str(result.checkpoint_epoch)),
      **result.timing,
      "jax_version": jax.__version__,
  }
  figures = []
  writes = distributed.is_leader()
  if config.folds:
    summary["folds"] = per_member
    summary["cross_validation"] = cross_validation(per_member)
    logging.info("cross-validation over %d folds:\n%s", config.folds, tables.folds_table(
        [{**f, "seed": config.seed, "fold": k, "diverged_at": f["diverged"]}
         for k, f in enumerate(per_member)]))
    if config.plots and writes:
      from experiments.training.outputs import plots
      figures = [plots.cross_validation(result.records, run.objective.metrics[:2],
                                        path("cross_validation.png"))]
  else:
    summary.update(per_member[0])
    if config.plots and writes:
      logging.info("drawing the figures into %s", workdir)
    fields, figures = report.finish(run, result, data, workdir if writes else None,
                                    config.plots)
    summary.update(fields)
  summary["figures"] = [os.path.basename(p) for p in figures]
  if writes:
    files.write_json(path("summary.json"), summary)
  return summary
