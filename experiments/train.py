"""train_and_evaluate(config, workdir): the training loop and its outputs.

Data flows one way: config -> arrays on the device -> compiled blocks of
train steps -> exact evaluation -> ``metrics.jsonl``, Orbax checkpoints,
``summary.json`` (with per-class test metrics) and PNG figures in the workdir. Compilation happens ahead of time (``jit(...).lower(...).compile()``)
so its cost is measured separately and ``train_images_per_second`` is the
steady-state rate.
"""

import dataclasses
import math
import os
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from tqdm import tqdm

from data import datasets
from experiments import checkpoints as checkpoints_lib
from experiments import report
from experiments import sharding
from experiments import steps
from experiments import workdir as workdir_lib
from experiments import config as config_lib
from experiments.config import ConfigError
from experiments.config import TrainConfig
from models import metrics
from models import networks
from models import optimizers
from models import schedules


class TrainingDiverged(RuntimeError):
  """The training loss became NaN or infinite."""


def progress_block_size(num_batches: int, updates_per_epoch: int = 10) -> int:
  """Largest divisor of ``num_batches`` giving at least ``updates_per_epoch`` blocks.

  Every block then has the same shape, so one compiled program runs them all.
  """
  limit = max(1, num_batches // updates_per_epoch)
  return max(d for d in range(1, limit + 1) if num_batches % d == 0)


def load_datasets(config: TrainConfig) -> datasets.Datasets:
  """The config's dataset as float32 splits, its validation split seeded by ``config.seed``."""
  return datasets.get_datasets(
      config.dataset,
      archive_dir=config.archive_dir,
      tfds_data_dir=config.tfds_data_dir,
      validation_size=config.validation_size,
      seed=config.seed,
      standardize=config.standardize,
  )


class UpdatePlan(NamedTuple):
  """How a run's updates are laid out: B examples each, per epoch, in all; and s(t)."""

  batch_size: int
  updates_per_epoch: int
  total_steps: int
  schedule: optax.Schedule  # the learning-rate schedule with peak 1


def plan_updates(config: TrainConfig, num_examples: int) -> UpdatePlan:
  """The updates of ``config`` over ``num_examples`` training examples; ConfigError if none fit."""
  batch_size = steps.update_batch_size(config.gd_mode, config.batch_size, num_examples)
  num_batches = num_examples // batch_size
  if num_batches == 0:
    raise ConfigError(f"batch_size {batch_size} exceeds the {num_examples} training examples")
  total_steps = config.num_epochs * num_batches
  schedule = schedules.learning_rate_schedule(
      config.schedule, 1.0, total_steps,
      warmup_steps=max(1, round(config.warmup_epochs * num_batches)),
      decay_rate=config.step_decay_rate,
  )
  return UpdatePlan(batch_size, num_batches, total_steps, schedule)


def _check_resumable(config: TrainConfig, workdir: str, checkpoints: checkpoints_lib.Checkpoints):
  """ConfigError if ``workdir`` holds a checkpoint of a run configured differently."""
  path = os.path.join(workdir, "config.json")
  if checkpoints.latest_epoch() is None or not os.path.exists(path):
    return
  previous = config_lib.load_config(path)
  changed = config.differs_in_training(previous)
  if changed:
    what = ", ".join(f"{k} {getattr(previous, k)!r} there, {getattr(config, k)!r} here"
                     for k in changed)
    raise ConfigError(
        f"{workdir} holds a checkpoint of another run ({what}); "
        f"resume with its settings, or use another --workdir")


def train_and_evaluate(config: TrainConfig, workdir: str, started_at: float | None = None) -> dict:
  """Trains ``config``'s model, evaluates every epoch, writes results to ``workdir``.

  A workdir with a checkpoint is resumed: training continues from the saved
  epoch with the saved state (PRNG keys, data order and optimizer state
  included), so the result equals an uninterrupted run's bit for bit.

  Args:
    config: a validated TrainConfig.
    workdir: output directory (created if needed).
    started_at: ``time.perf_counter()`` when the process started, to report
      ``seconds_to_first_step``; defaults to this call's start.

  Returns:
    The summary dict, also written to ``workdir/summary.json``.

  Raises:
    TrainingDiverged: a loss became NaN or infinite; the last checkpoint and
      metrics.jsonl are left as they were after the last good epoch.
  """
  started_at = time.perf_counter() if started_at is None else started_at
  os.makedirs(workdir, exist_ok=True)
  checkpoints = checkpoints_lib.Checkpoints(workdir)
  _check_resumable(config, workdir, checkpoints)
  workdir_lib.write_json(os.path.join(workdir, "config.json"), dataclasses.asdict(config))

  data = load_datasets(config)
  class_names = datasets.CLASS_NAMES[config.dataset]
  train_images, train_labels = jax.device_put(tuple(data.train))
  eval_splits = {"validation": data.validation, "test": data.test}
  eval_splits = {k: jax.device_put(tuple(v)) for k, v in eval_splits.items() if len(v.labels)}

  init_key, dropout_key, shuffle_key = steps.seed_keys(config.seed)
  model = networks.create_model(config.model, data.num_classes, **config.model_kwargs())
  input_shape = data.train.images.shape[1:]
  variables = networks.init_variables(model, init_key, input_shape)
  num_examples = len(data.train.labels)
  batch_size, num_batches, total_steps, schedule = plan_updates(config, num_examples)
  hyperparameters = config.optimizer_hyperparameters()
  tx = optimizers.create_optimizer(
      config.optimizer, config.optimizer_form, config.resolved_learning_rate, hyperparameters,
      schedule, config.clip_norm, config.weight_decay or None,
  )
  logging.info(
      "optimizer %s; α = %g (%s schedule over %d updates)%s%s",
      optimizers.describe(config.optimizer, config.optimizer_form, hyperparameters),
      config.resolved_learning_rate, config.schedule, total_steps,
      f", gradients clipped to global norm {config.clip_norm:g}" if config.clip_norm else "",
      f", weight decay λ = {config.weight_decay:g}" if config.weight_decay else "",
  )
  state = steps.create_train_state(model, variables, tx, dropout_key, config.penalty)
  index_sharding, mesh = None, None
  if sharding.can_split(batch_size):  # data parallel: batch split, everything else replicated
    mesh = sharding.local_mesh("data")
    state, train_images, train_labels, eval_splits = sharding.replicate(
        (state, train_images, train_labels, eval_splits), mesh)
    index_sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "data"))

  record = {"history": [], "best_epoch": None, "stopped_early": False,
            "input_shape": list(input_shape), "pixel_mean": data.pixel_mean,
            "pixel_std": data.pixel_std}
  best_variables = state.variables
  saved = checkpoints.restore(state)
  if saved:
    state, best_variables, record = saved.state, saved.model, saved.record
    logging.info("resuming from the checkpoint of epoch %d in %s", saved.epoch,
                 checkpoints.directory)
  history = record["history"]
  workdir_lib.write_jsonl(os.path.join(workdir, "metrics.jsonl"), history)

  num_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(state.params))
  block = progress_block_size(num_batches)
  make_batches = jax.jit(steps.epoch_batches, static_argnums=(1, 2))

  compile_start = time.perf_counter()
  index_block = jax.ShapeDtypeStruct((block, batch_size), jnp.int32, sharding=index_sharding)
  run_block = (
      jax.jit(steps.train_steps, donate_argnums=0, static_argnums=4)
      .lower(state, train_images, train_labels, index_block, config.chunk_size)
      .compile()
  )
  # Logits of a whole split; the epoch metrics and the final test report both use them.
  predictors = {
      name: jax.jit(steps.predict, static_argnums=(1, 3))
      .lower(state.variables, state.apply_fn, images, config.chunk_size)
      .compile()
      for name, (images, _) in eval_splits.items()
  }
  compile_seconds = time.perf_counter() - compile_start
  logging.info(
      "%s on %s: %d parameters, %s descent: %d updates of %d examples per epoch, "
      "compiled in %.2fs on %s%s",
      config.model, config.dataset, num_params, config.gd_mode, num_batches, batch_size,
      compile_seconds, jax.devices()[0].device_kind,
      f", data parallel over {mesh.size} devices" if mesh else "",
  )

  train_seconds, seconds_to_first_step = 0.0, None
  first_epoch = len(history) + 1
  last_epoch = len(history) if record["stopped_early"] else config.num_epochs
  for epoch in range(first_epoch, last_epoch + 1):
    batches = make_batches(jax.random.fold_in(shuffle_key, epoch), num_examples, batch_size)
    batches = batches.reshape(num_batches // block, block, batch_size)
    if mesh:
      batches = sharding.split(batches, mesh, dim=2)
    totals = None
    epoch_start = time.perf_counter()
    with tqdm(total=num_batches, desc=f"epoch {epoch}/{config.num_epochs}", unit="update",
              leave=False, disable=not config.progress) as bar:
      for indices in batches:
        state, counts = run_block(state, train_images, train_labels, indices)
        counts = jax.block_until_ready(counts)  # honest timing and progress
        if seconds_to_first_step is None:
          seconds_to_first_step = time.perf_counter() - started_at
        totals = counts if totals is None else totals + counts
        bar.update(block)
    epoch_seconds = time.perf_counter() - epoch_start
    train_seconds += epoch_seconds

    row = {"epoch": epoch}
    row.update({f"train_{k}": v for k, v in totals.compute().items()})
    for name, predict in predictors.items():
      images, labels = eval_splits[name]
      result = metrics.counts(predict(state.variables, images), labels).compute()
      row.update({f"{name}_{k}": v for k, v in result.items()})
    row["images_per_second"] = num_batches * batch_size / epoch_seconds
    row["epoch_seconds"] = epoch_seconds
    bad = [k for k, v in row.items() if k.endswith("_loss") and not math.isfinite(v)]
    if bad:
      kept = checkpoints.latest_epoch()
      raise TrainingDiverged(
          f"training diverged at epoch {epoch} ({bad[0].replace('_', ' ')} {row[bad[0]]}); "
          "lower the learning rate; "
          + (f"the checkpoint of epoch {kept} and " if kept else "")
          + "metrics.jsonl of the epochs before are kept")
    history.append(row)

    if config.patience:
      best = record["best_epoch"]
      if best is None or row["validation_loss"] < history[best - 1]["validation_loss"]:
        record["best_epoch"] = epoch
        best_variables = jax.tree.map(jnp.copy, state.variables)  # state's buffers are donated
      record["stopped_early"] = epoch - record["best_epoch"] >= config.patience
    else:
      best_variables = state.variables
    if config.checkpoint_every_epoch or epoch == config.num_epochs or record["stopped_early"]:
      checkpoints.save(epoch, state, best_variables, record)
    workdir_lib.write_jsonl(os.path.join(workdir, "metrics.jsonl"), history)
    logging.info(
        "epoch %d: train loss %.4f acc %.4f | %s | %.0f images/s",
        epoch, row["train_loss"], row["train_accuracy"],
        " | ".join(
            f"{n} loss {row[f'{n}_loss']:.4f} acc {row[f'{n}_accuracy']:.4f}" for n in predictors
        ),
        row["images_per_second"],
    )
    if record["stopped_early"]:
      logging.info("early stopping: no lower validation loss for %d epochs; keeping epoch %d",
                   config.patience, record["best_epoch"])
      break

  chosen = history[(record["best_epoch"] or len(history)) - 1]
  logits = np.asarray(predictors["test"](best_variables, eval_splits["test"][0]))
  test_result = report.test_metrics(jnp.asarray(logits), jnp.asarray(data.test.labels), class_names)
  logging.info("test metrics of the model of epoch %d:\n%s", chosen["epoch"],
               report.per_class_table(test_result))
  figures = []
  if config.plots:
    figures = report.write_figures(workdir, history, best_variables, state.apply_fn, data.test,
                                   logits, class_names, test_result)
    logging.info("figures: %s", ", ".join(os.path.basename(p) for p in figures))

  summary = {
      "dataset": config.dataset,
      "model": config.model,
      "optimizer": config.optimizer,
      "optimizer_form": config.optimizer_form,
      "optimizer_rule": optimizers.describe(config.optimizer, config.optimizer_form, hyperparameters),
      "hyperparameters": hyperparameters,
      "learning_rate": config.resolved_learning_rate,
      "schedule": config.schedule,
      "clip_norm": config.clip_norm,
      "regularization": {"dropout": model.dropout, "batch_norm": config.batch_norm,
                         "l1": config.l1, "l2": config.l2, "weight_decay": config.weight_decay},
      "gd_mode": config.gd_mode,
      "batch_size": batch_size,
      "updates_per_epoch": num_batches,
      "num_epochs": config.num_epochs,
      "epochs_trained": len(history),
      "epoch": chosen["epoch"],  # of the model the metrics below describe
      "stopped_early": record["stopped_early"],
      "seed": config.seed,
      "num_params": num_params,
      **{k: v for k, v in chosen.items() if k.endswith(("_loss", "_accuracy"))},
      "test_metrics": test_result,
      "figures": [os.path.basename(p) for p in figures],
      "checkpoint": os.path.join(checkpoints.directory, str(checkpoints.latest_epoch())),
      "train_seconds": train_seconds,
      "train_images_per_second": (
          (len(history) - first_epoch + 1) * num_batches * batch_size / train_seconds
          if train_seconds else None),
      "compile_seconds": compile_seconds,
      # Measured when the first compiled block of steps has finished.
      "seconds_to_first_step": seconds_to_first_step,
      "steps_in_first_block": block,
      "device": jax.devices()[0].device_kind,
      "devices": mesh.size if mesh else 1,
      "jax_version": jax.__version__,
  }
  workdir_lib.write_json(os.path.join(workdir, "summary.json"), summary)
  return summary
