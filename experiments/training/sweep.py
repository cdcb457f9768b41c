"""run_sweep: every group of a grid trained through the one loop, resumable after a kill.

Each group (``grid.py``) is cut into runs of at most ``models_per_program``
members; a run trains its members together, vmapped in one compiled program
(``strategy="vmapped"``), or each member alone (``"sequential"``: runs of
one). ``"auto"`` times one block of both programs per group and keeps the
faster in aggregate images/s. Every run has its own directory
``<workdir>/runs/<group>-<run>/`` with checkpoints and metrics.jsonl, so a
killed sweep rerun with the same command skips the finished runs, resumes the
interrupted one and ends with the same results; the strategy chosen for each
group is kept in ``plan.json`` so a resumed sweep does not choose again.

Over several processes (``distributed.py``), a vmapped run is trained by all
of them, its members split over every process's devices; the runs of one
member are dealt out (run r to process r mod P), each trained on its
process's devices alone. Process 0's calibration decides for all, and the
models' results are gathered to every process at the end.
"""

import dataclasses
import json
import os
import time
from typing import NamedTuple

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from data import errors
from data import files
from data import progress
from data.errors import UserError
from experiments.training.loop import dataset
from experiments.training.loop import loop
from experiments.training.loop import memory
from experiments.training.loop import programs as programs_lib
from experiments.training.loop import record as record_lib
from experiments.training.loop import run as run_lib
from experiments.training.outputs import output_hooks
from experiments.training.processes import distributed
from experiments.training.settings import config as config_lib
from experiments.training.settings import grid as grid_lib
from experiments.training.settings.config import TrainConfig
from experiments.training.storage import manifest

STRATEGIES = ("auto", "vmapped", "sequential")


class ModelResult(NamedTuple):
  """One model of a sweep: its settings, its record and the test metrics of its kept model."""

  config: TrainConfig
  record: record_lib.MemberRecord
  test_metrics: dict | None
  strategy: str  # how its group was trained: "vmapped" or "sequential"
  run_directory: str  # its run's directory in the workdir, e.g. "runs/00-001"
  member: int  # its index among that run's members


def calibrate(members: list[TrainConfig], size: int, data: dataset.HostData,
              inputs: dataset.Inputs) -> tuple[str, dict]:
  """Times one block of ``size`` members vmapped vs one member alone, after a warm-up call each."""
  rates = {}
  for name, n in (("vmapped", size), ("sequential", 1)):
    run = run_lib.make_run(members[:n], data.input_shape, len(data.class_names),
                           data.num_examples)
    pipeline = programs_lib.Pipeline(run, data, inputs=inputs)
    program = programs_lib.Program(pipeline)
    block = pipeline.blocks(0)[0]
    state, _ = program.train_block(pipeline.initial_state(), block)
    jax.block_until_ready(state)
    start = time.perf_counter()
    state, counts = program.train_block(state, block)
    jax.block_until_ready(counts)
    rates[name] = n * run.plan.block_size * run.plan.batch_size / (time.perf_counter() - start)
  return ("vmapped" if rates["vmapped"] >= rates["sequential"] else "sequential"), rates


def _check_same_sweep(workdir: str, settings: dict) -> None:
  """UserError if ``workdir`` holds runs of a sweep with other settings."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isdir(os.path.join(workdir, "runs")) or not os.path.exists(path):
    return
  before = files.read_json(path)
  for key, value in settings.items():
    there = before.get(key)
    if key == "base":
      there = {k: v for k, v in (there or {}).items() if k not in config_lib.OUTPUT_SETTINGS}
      value = {k: v for k, v in value.items() if k not in config_lib.OUTPUT_SETTINGS}
    if there != value:
      raise UserError(f"{workdir} holds a sweep with other settings ({key} differs); rerun "
                        "it with its settings, or use another --workdir")


def run_sweep(base: TrainConfig, grid: dict[str, list], workdir: str, strategy: str = "auto",
              models_per_program: int = 0) -> list[ModelResult]:
  """Trains every model of the grid; returns each model's result, in grid order.

  Every invalid setting, grid or memory need is a UserError before any compilation.
  """
  if strategy not in STRATEGIES:
    raise UserError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
  if not 0 <= models_per_program <= errors.MAX_COUNT:
    raise UserError(f"models_per_program must be >= 0, got {models_per_program}")
  groups = grid_lib.expand(base, grid)
  if not groups[0][0].validation_size and not base.folds:
    raise UserError("a sweep selects on validation: set --validation_size > 0 or --folds")
  manifest.check_writable(workdir)
  data = dataset.load(base)
  make = lambda members: run_lib.make_run(  # noqa: E731
      members, data.input_shape, len(data.class_names), data.num_examples)
  sizes = [memory.members_that_fit(
      make(members), data, min(models_per_program or len(members), len(members)),
      "set --models_per_program to at most {n}") for members in groups]
  settings = json.loads(json.dumps({  # as config.json will hold it
      "base": config_lib.to_json(base), "grid": grid_lib.to_json(grid), "strategy": strategy,
      "models_per_program": models_per_program}))
  _check_same_sweep(workdir, settings)
  with files.workdir_lock(workdir, jax.process_index()):
    if distributed.is_leader():
      files.write_json(os.path.join(workdir, "config.json"), settings)
    return _train_groups(groups, data, make, sizes, workdir, strategy, base.progress)


def _train_groups(groups, data, make, sizes, workdir, strategy, show_progress
                  ) -> list[ModelResult]:
  """Trains every group's runs in turn (resuming from ``workdir``); the results of run_sweep."""
  plan_path = os.path.join(workdir, "plan.json")
  plan = files.read_json(plan_path) if os.path.exists(plan_path) else {}
  inputs = dataset.to_device(data)
  processes, me = jax.process_count(), jax.process_index()
  steps_per_model = make(groups[0][:1]).plan.total_steps  # the grid sweeps no batch or epochs
  total = sum(len(m) for m in groups) * steps_per_model
  logging.info("sweep: %d models in %d groups", sum(len(m) for m in groups), len(groups))
  results = {}  # index in the grid -> ModelResult, of the runs this process trained
  with progress.bar(total=total, desc="sweep", unit="update",
                    disable=not show_progress or not distributed.is_leader()) as bar:
    for g, members in enumerate(groups):
      chosen = plan.get(str(g), strategy)
      if chosen == "auto":
        chosen = _calibrated(g, members, sizes[g], data, inputs)
        plan[str(g)] = chosen
        if distributed.is_leader():
          files.write_json(plan_path, plan)
      size = sizes[g] if chosen == "vmapped" else 1
      start = time.perf_counter()
      for r, first in enumerate(range(0, len(members), size)):
        local = size == 1 and processes > 1  # runs of one model are dealt out to the processes
        if local and r % processes != me:
          bar.update(steps_per_model)
          continue
        run = make(members[first:first + size])
        directory = os.path.join(workdir, "runs", f"{g:02d}-{r:03d}")
        metrics = output_hooks.MetricsFile(os.path.join(directory, "metrics.jsonl"), "member")
        result = loop.fit(run, data, directory, local=local, inputs=inputs,
                          hooks=[metrics, *output_hooks.standard(run, directory, bar)],
                          diverged_is_finished=True)
        offset = sum(len(m) for m in groups[:g]) + first
        results.update({offset + k: ModelResult(m, result.records[k], result.test_metrics[k],
                                                chosen, os.path.relpath(directory, workdir), k)
                        for k, m in enumerate(run.members)})
      logging.info("group %d: %d models in %.1fs (%s, %d per program)", g, len(members),
                   time.perf_counter() - start, chosen, size)
  if processes > 1:
    results = _gathered(results, [m for members in groups for m in members])
  return [results[i] for i in sorted(results)]


def _calibrated(g: int, members, size: int, data, inputs) -> str:
  """The faster strategy for group ``g``, timed by process 0 and shared with every process."""
  chosen, rates = calibrate(members, size, data, inputs) if size > 1 else ("sequential", None)
  if rates:
    logging.info("group %d: vmapped %.0f vs sequential %.0f aggregate images/s -> %s", g,
                 rates["vmapped"], rates["sequential"], chosen)
  if jax.process_count() > 1:  # timings differ between processes; the choice must not
    vmapped = multihost_utils.broadcast_one_to_all(np.int32(chosen == "vmapped"))
    chosen = "vmapped" if int(vmapped) else "sequential"
  return chosen


def _gathered(results: dict, configs: list[TrainConfig]) -> dict:
  """Every process's results, on every process (each model was trained by one or by all)."""
  mine = {i: [dataclasses.asdict(r.record), r.test_metrics, r.strategy, r.run_directory, r.member]
          for i, r in results.items()}
  everyone = {}
  for part in distributed.gather_json(mine):
    everyone.update(part)
  return {int(i): ModelResult(configs[int(i)], record_lib.from_json(record), test_metrics,
                              strategy, run, member)
          for i, (record, test_metrics, strategy, run, member) in everyone.items()}
