"""run_sweep: every group of a grid trained through the one engine, resumable after a kill.

Each group (``grid.py``) is cut into runs of at most ``models_per_program``
members; a run trains its members together, vmapped in one compiled program
(``strategy="vmapped"``), or each member alone (``"sequential"``: runs of
one). ``"auto"`` times one block of both programs per group and keeps the
faster in aggregate images/s. Every run has its own directory
``<workdir>/runs/<group>-<run>/`` with checkpoints and metrics.jsonl, so a
killed sweep rerun with the same command skips the finished runs, resumes the
interrupted one and ends with the same results; the strategy chosen for each
group is kept in ``plan.json`` so a resumed sweep does not choose again.
"""

import json
import math
import os
import time

import jax
import jax.numpy as jnp
from absl import logging
from tqdm import tqdm

from data import files
from experiments.training import config as config_lib
from experiments.training import engine
from experiments.training import grid as grid_lib
from experiments.training import inputs as inputs_lib
from experiments.training import programs as programs_lib
from experiments.training import record as record_lib
from experiments.training import run as run_lib
from experiments.training import state as state_lib
from experiments.training.config import ConfigError
from experiments.training.config import TrainConfig

STRATEGIES = ("auto", "vmapped", "sequential")


def member_bytes(run: run_lib.Run, examples_per_pass: int) -> int:
  """Estimated device bytes for one member, from shapes alone (nothing is compiled).

  3 copies of the parameters (params, gradient, update) + the optimizer state
  + 2 x the activations of one forward pass (kept for the backward pass, and
  their gradients) over ``examples_per_pass`` examples.
  """
  x = jax.ShapeDtypeStruct((1, *run.input_shape), jnp.float32)
  variables = jax.eval_shape(lambda: state_lib.init_variables(run, 0))
  opt_state = jax.eval_shape(run.optimizer(run.config).init, variables["params"])
  _, intermediates = jax.eval_shape(
      lambda v, x: run.model.apply(v, x, train=False, capture_intermediates=True,
                                   mutable=["intermediates"]), variables, x)

  def size(tree):
    return sum(math.prod(a.shape) * a.dtype.itemsize for a in jax.tree.leaves(tree)
               if hasattr(a, "shape"))

  return (3 * size(variables["params"]) + size(opt_state)
          + 2 * size(intermediates) * examples_per_pass)


def available_bytes() -> int:
  """Free memory of the first device: the allocator's limit on GPU, free RAM on CPU."""
  stats = jax.local_devices()[0].memory_stats() or {}
  if "bytes_limit" in stats:
    return stats["bytes_limit"] - stats.get("bytes_in_use", 0)
  return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _gib(n: int) -> str:
  return f"{n / 2**30:.2f} GiB"


def program_size(run: run_lib.Run, data: inputs_lib.HostData, models_per_program: int) -> int:
  """Members per compiled program for ``run``'s group; ConfigError if that does not fit in memory."""
  data_bytes = sum(a.nbytes for a in data[:4])
  per_member = member_bytes(run, min(run.plan.batch_size, run.config.chunk_size))
  size = min(models_per_program or run.size, run.size)
  free = available_bytes()
  if data_bytes + size * per_member > free:
    raise ConfigError(
        f"{size} {run.config.model} models of {run.config.optimizer} in one program need about "
        f"{_gib(size * per_member)} (+ {_gib(data_bytes)} of data), more than the "
        f"{_gib(free)} available; set --models_per_program to at most "
        f"{max(0, (free - data_bytes) // per_member)}")
  return size


def calibrate(members: list[TrainConfig], size: int, data: inputs_lib.HostData,
              inputs: inputs_lib.Inputs) -> tuple[str, dict]:
  """Times one block of ``size`` members vmapped vs one member alone, after a warm-up call each."""
  rates = {}
  for name, n in (("vmapped", size), ("sequential", 1)):
    run = run_lib.make_run(members[:n], data.input_shape, len(data.class_names),
                           data.num_examples)
    splits = inputs_lib.splits(run, data)
    batches = inputs_lib.epoch_batches(run, splits, inputs_lib.shuffle_keys(run), 0)
    block = (batches[:run.plan.block_size] if batches.ndim == 2
             else batches[:, :run.plan.block_size])
    state = state_lib.initial_state(run)
    train_block = programs_lib.compile_programs(run, state, inputs, splits, block, {}).train_block
    state, _ = train_block(state, inputs, splits, block)
    jax.block_until_ready(state)
    start = time.perf_counter()
    state, counts = train_block(state, inputs, splits, block)
    jax.block_until_ready(counts)
    rates[name] = n * run.plan.block_size * run.plan.batch_size / (time.perf_counter() - start)
  return ("vmapped" if rates["vmapped"] >= rates["sequential"] else "sequential"), rates


def _check_same_sweep(workdir: str, settings: dict) -> None:
  """ConfigError if ``workdir`` holds runs of a sweep with other settings."""
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
      raise ConfigError(f"{workdir} holds a sweep with other settings ({key} differs); rerun "
                        "it with its settings, or use another --workdir")


def run_sweep(base: TrainConfig, grid: dict[str, list], workdir: str, strategy: str = "auto",
              models_per_program: int = 0) -> list[tuple[TrainConfig, engine.Result, int, str]]:
  """Trains every model of the grid; returns (member config, its run's Result, its index, strategy).

  Every invalid setting, grid or memory need is a ConfigError before any compilation.
  """
  if strategy not in STRATEGIES:
    raise ConfigError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
  if not 0 <= models_per_program <= config_lib.MAX_COUNT:
    raise ConfigError(f"models_per_program must be >= 0, got {models_per_program}")
  groups = grid_lib.expand(base, grid)
  if not groups[0][0].validation_size and not base.folds:
    raise ConfigError("a sweep selects on validation: set --validation_size > 0 or --folds")
  data = inputs_lib.load(base)
  make = lambda members: run_lib.make_run(  # pylint: disable=unnecessary-lambda-assignment
      members, data.input_shape, len(data.class_names), data.num_examples)
  sizes = [program_size(make(members), data, models_per_program) for members in groups]
  settings = json.loads(json.dumps({  # as config.json will hold it
      "base": config_lib.to_json(base), "grid": grid_lib.to_json(grid), "strategy": strategy,
      "models_per_program": models_per_program}))
  _check_same_sweep(workdir, settings)
  files.write_json(os.path.join(workdir, "config.json"), settings)
  plan_path = os.path.join(workdir, "plan.json")
  plan = files.read_json(plan_path) if os.path.exists(plan_path) else {}
  inputs = inputs_lib.to_device(data)
  total = sum(len(m) for m in groups) * make(groups[0][:1]).plan.total_steps
  logging.info("sweep: %d models in %d groups", sum(len(m) for m in groups), len(groups))
  results = []
  with tqdm(total=total, desc="sweep", unit="update", disable=not base.progress) as bar:
    for g, members in enumerate(groups):
      chosen = plan.get(str(g), strategy)
      if chosen == "auto":
        chosen, rates = (calibrate(members, sizes[g], data, inputs) if sizes[g] > 1
                         else ("sequential", None))
        if rates:
          logging.info("group %d: vmapped %.0f vs sequential %.0f aggregate images/s -> %s", g,
                       rates["vmapped"], rates["sequential"], chosen)
        plan[str(g)] = chosen
        files.write_json(plan_path, plan)
      size = sizes[g] if chosen == "vmapped" else 1
      start = time.perf_counter()
      for r, first in enumerate(range(0, len(members), size)):
        run = make(members[first:first + size])
        directory = os.path.join(workdir, "runs", f"{g:02d}-{r:03d}")
        result = engine.fit(run, data, inputs, directory, bar=bar,
                            on_epoch=lambda records, d=directory: files.write_jsonl(
                                os.path.join(d, "metrics.jsonl"),
                                record_lib.metrics_rows(records, "member")))
        results += [(m, result, k, chosen) for k, m in enumerate(run.members)]
      logging.info("group %d: %d models in %.1fs (%s, %d per program)", g, len(members),
                   time.perf_counter() - start, chosen, size)
  return results
