"""Hyperparameter sweeps: optimizers x learning rates x hyperparameters x seeds.

Configurations are grouped by optimizer (the optimizer state's structure
differs between optimizers); within a group the K members differ in seed, α
and hyperparameters and train together as one vmapped program
(``experiments/vmapped.py``) or one after another, whichever a short timed
calibration finds faster in aggregate images/s (``strategy="auto"``). The
model is chosen on the validation split (mean over seeds) and its test
accuracy is read once.
"""

import itertools
import math
import os
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from tqdm import tqdm

from experiments import sharding
from experiments import steps
from experiments import train
from experiments import vmapped
from experiments.config import ConfigError
from experiments.config import TrainConfig
from models import networks
from models import optimizers

STRATEGIES = ("auto", "vmapped", "sequential")
GRID_HYPERPARAMETERS = ("momentum", "b1", "b2", "eps")


class Group(NamedTuple):
  """The members sharing one optimizer (and so one optimizer-state structure)."""

  optimizer: str
  members: list[vmapped.Member]


def make_groups(
    base: TrainConfig,
    optimizer_names: list[str],
    learning_rates: list[float],
    learning_rate_multipliers: list[float],
    seeds: list[int],
    grids: dict[str, list[float]],
) -> list[Group]:
  """The full grid, one Group per optimizer; ConfigError on an empty or invalid grid.

  Args:
    base: settings shared by every run (model, data, form, schedule, epochs...).
    optimizer_names: names from the optimizer table.
    learning_rates: absolute peak α values; if empty, each optimizer's
      default α times ``learning_rate_multipliers``.
    learning_rate_multipliers: used when ``learning_rates`` is empty.
    seeds: seeds of initialization, dropout and (own) shuffling.
    grids: values per hyperparameter (e.g. {"momentum": [0.5, 0.9]}); each applies
      to the optimizers that take it, the others keep their default.
  """
  for name, values in (("optimizers", optimizer_names), ("seeds", seeds)):
    if not values:
      raise ConfigError(f"empty grid: --{name} needs at least one value")
  if not learning_rates and not learning_rate_multipliers:
    raise ConfigError("empty grid: give --learning_rates or --learning_rate_multipliers")
  for name in optimizer_names:
    if name not in optimizers.OPTIMIZERS:
      raise ConfigError(
          f"unknown optimizer {name!r}; choose one of {', '.join(optimizers.OPTIMIZERS)}")
  if len(set(optimizer_names)) < len(optimizer_names) or len(set(seeds)) < len(seeds):
    raise ConfigError("--optimizers and --seeds must not repeat a value")
  for value in [*learning_rates, *learning_rate_multipliers]:
    if not value > 0:
      raise ConfigError(f"learning rates and multipliers must be > 0, got {value}")
  for key, values in grids.items():
    if not values:
      raise ConfigError(f"empty grid: --{key}s needs at least one value")
    takers = [n for n in optimizer_names
              if key in optimizers.form(n, base.optimizer_form).hyperparameters]
    if not takers:
      raise ConfigError(
          f"--{key}s: none of {', '.join(optimizer_names)} ({base.optimizer_form} form) "
          f"takes {key}")

  groups = []
  for name in optimizer_names:
    spec = optimizers.form(name, base.optimizer_form)
    rates = learning_rates or [  # rounded so that 0.05 x 3 reads 0.15
        float(f"{spec.default_learning_rate * m:.12g}") for m in learning_rate_multipliers]
    own = {k: v for k, v in grids.items() if k in spec.hyperparameters}
    members = []
    for rate, values, seed in itertools.product(
        rates, itertools.product(*own.values()), seeds):
      given = {**_fixed_hyperparameters(base), **dict(zip(own, values))}
      given = {k: v for k, v in given.items() if k in spec.hyperparameters}
      try:
        resolved = optimizers.resolve_hyperparameters(name, base.optimizer_form, given)
      except ValueError as e:
        raise ConfigError(str(e)) from e
      members.append(vmapped.Member(seed, float(rate), resolved))
    groups.append(Group(name, members))
  return groups


def _fixed_hyperparameters(base: TrainConfig) -> dict[str, float]:
  return {k: getattr(base, k) for k in optimizers.SYMBOLS if getattr(base, k) is not None}


def member_bytes(
    model, input_shape: tuple[int, ...], tx, examples_per_pass: int
) -> int:
  """Estimated device bytes for one member, from shapes alone (nothing is compiled).

  3 copies of the parameters (params, gradient, update) + the optimizer state
  + 2 x the activations of one forward pass (kept for the backward pass, and
  their gradients) over ``examples_per_pass`` examples.
  """
  x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
  variables = jax.eval_shape(
      lambda: networks.init_variables(model, jax.random.key(0), input_shape))
  params = variables["params"]
  opt_state = jax.eval_shape(tx.init, params)
  _, intermediates = jax.eval_shape(
      lambda v, x: model.apply(v, x, train=False, capture_intermediates=True,
                               mutable=["intermediates"]), variables, x)

  def size(tree):
    return sum(math.prod(a.shape) * a.dtype.itemsize for a in jax.tree.leaves(tree)
               if hasattr(a, "shape"))

  return 3 * size(params) + size(opt_state) + 2 * size(intermediates) * examples_per_pass


def available_bytes() -> int:
  """Free memory of the first device: the allocator's limit on GPU, free RAM on CPU."""
  stats = jax.local_devices()[0].memory_stats() or {}
  if "bytes_limit" in stats:
    return stats["bytes_limit"] - stats.get("bytes_in_use", 0)
  return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _gib(n: int) -> str:
  return f"{n / 2**30:.2f} GiB"


class _Program(NamedTuple):
  """The compiled block and evaluators for chunks of one size."""

  run_block: object
  evaluators: dict


def run_sweep(
    base: TrainConfig,
    groups: list[Group],
    strategy: str = "auto",
    shared_batches: bool = True,
    models_per_program: int = 0,
) -> list[dict]:
  """Trains every member of every group; returns one result row per member.

  Each row holds the optimizer, its α, hyperparameters and seed, the final
  train / validation / test loss and accuracy, the per-epoch ``history``,
  whether it ``diverged`` (its loss became NaN or infinite: it is recorded,
  not fatal) and the strategy its group used.

  Args:
    base: shared settings; ``base.seed`` seeds the validation split and, with
      ``shared_batches``, the batch order all members share.
    groups: from ``make_groups``.
    strategy: "vmapped", "sequential" or "auto" (timed calibration per group).
    shared_batches: all members see the same batches; else each shuffles with
      its own seed, exactly as a single run with that seed.
    models_per_program: at most this many members per compiled program
      (0: a whole group).
  """
  if strategy not in STRATEGIES:
    raise ConfigError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
  if base.validation_size < 1:
    raise ConfigError("a sweep selects on the validation split: validation_size must be >= 1")
  if models_per_program < 0:
    raise ConfigError(f"models_per_program must be >= 0, got {models_per_program}")
  data = train.load_datasets(base)
  batch_size, num_batches, total_steps, schedule = train.plan_updates(base, len(data.train.labels))
  model = networks.create_model(base.model, data.num_classes, **base.model_kwargs())
  input_shape = data.train.images.shape[1:]

  # Memory, before anything is compiled.
  data_bytes = sum(s.images.nbytes + s.labels.nbytes for s in (data.train, data.validation,
                                                                 data.test))
  free = available_bytes()
  chunk_sizes = {}
  for group in groups:
    first = group.members[0]
    tx = optimizers.create_optimizer(group.optimizer, base.optimizer_form, first.learning_rate,
                                     first.hyperparameters, schedule, base.clip_norm)
    per_member = member_bytes(model, input_shape, tx, min(batch_size, base.chunk_size))
    size = models_per_program or len(group.members)
    size = min(size, len(group.members))
    if data_bytes + size * per_member > free:
      raise ConfigError(
          f"{size} {base.model} models of {group.optimizer} in one program need about "
          f"{_gib(size * per_member)} (+ {_gib(data_bytes)} of data), more than the "
          f"{_gib(free)} available; set --models_per_program to at most "
          f"{max(0, (free - data_bytes) // per_member)}")
    chunk_sizes[group.optimizer] = size

  arrays = {
      "train": jax.device_put((data.train.images, data.train.labels)),
      "validation": jax.device_put((data.validation.images, data.validation.labels)),
      "test": jax.device_put((data.test.images, data.test.labels)),
  }
  block = train.progress_block_size(num_batches)
  trainer = _GroupTrainer(base, model, input_shape, arrays, schedule, batch_size, num_batches,
                          block, shared_batches)
  total_updates = sum(len(g.members) for g in groups) * total_steps
  rows = []
  with tqdm(total=total_updates, desc="sweep", unit="update", disable=not base.progress) as bar:
    for group in groups:
      size = chunk_sizes[group.optimizer]
      chosen = strategy
      if strategy == "auto":
        chosen, rates = trainer.calibrate(group, size)
        logging.info("%s: vmapped %s vs sequential %s aggregate images/s -> %s",
                     group.optimizer, f"{rates['vmapped']:.0f}", f"{rates['sequential']:.0f}",
                     chosen)
      size = size if chosen == "vmapped" else 1
      start = time.perf_counter()
      for member_rows in trainer.train(group, size, bar):
        rows.append({**member_rows, "strategy": chosen})
      logging.info("%s: %d models in %.1fs (%s, %d per program)", group.optimizer,
                   len(group.members), time.perf_counter() - start, chosen, size)
  return rows


class _GroupTrainer:
  """Trains a group's members in chunks of a given size, all chunks sharing one program."""

  def __init__(self, base, model, input_shape, arrays, schedule, batch_size, num_batches, block,
               shared_batches):
    self.base, self.model, self.input_shape = base, model, input_shape
    self.arrays, self.schedule = arrays, schedule
    self.batch_size, self.num_batches, self.block = batch_size, num_batches, block
    self.shared_batches = shared_batches
    self.mesh = sharding.local_mesh("models")
    self.programs = {}
    self.txs = {}

  def _states(self, group, members):
    make_tx = vmapped.optimizer_factory(group.optimizer, self.base.optimizer_form, self.schedule,
                                        self.base.clip_norm, self.base.weight_decay)
    if group.optimizer not in self.txs:
      self.txs[group.optimizer] = make_tx(group.members[0])
    state = vmapped.init_states(self.model, self.input_shape, members, make_tx,
                                self.txs[group.optimizer], self.base.penalty)
    return sharding.split(state, self.mesh) if sharding.can_split(len(members)) else state

  def _program(self, group, size) -> _Program:
    key = (group.optimizer, size)
    if key not in self.programs:
      state = self._states(group, group.members[:size])
      shape = (self.block, self.batch_size) if self.shared_batches else (
          size, self.block, self.batch_size)
      run_block = (
          jax.jit(vmapped.train_steps, static_argnums=(4, 5), donate_argnums=0)
          .lower(state, *self.arrays["train"], jax.ShapeDtypeStruct(shape, jnp.int32),
                 self.base.chunk_size, self.shared_batches)
          .compile()
      )
      evaluators = {
          name: jax.jit(vmapped.evaluate, static_argnums=(1, 4))
          .lower(state.variables, state.apply_fn, *self.arrays[name], self.base.chunk_size)
          .compile()
          for name in ("validation", "test")
      }
      self.programs[key] = _Program(run_block, evaluators)
    return self.programs[key]

  def _epoch_blocks(self, members, epoch):
    """Index blocks of one epoch: (blocks, block, B), or (blocks, K, block, B) when own."""
    nb, block, b = self.num_batches, self.block, self.batch_size
    if self.shared_batches:
      key = jax.random.fold_in(steps.seed_keys(self.base.seed)[2], epoch)
      return steps.epoch_batches(key, len(self.arrays["train"][1]), b).reshape(
          nb // block, block, b)
    keys = jnp.stack([steps.seed_keys(m.seed)[2] for m in members])
    batches = vmapped.epoch_batches(keys, epoch, len(self.arrays["train"][1]), b)
    return batches.reshape(len(members), nb // block, block, b).swapaxes(0, 1)

  def calibrate(self, group, size) -> tuple[str, dict]:
    """Times one block of ``size`` members vmapped vs one member, after a warm-up call each."""
    rates = {}
    for name, n in (("vmapped", size), ("sequential", 1)):
      program = self._program(group, n)
      state = self._states(group, group.members[:n])
      indices = self._epoch_blocks(group.members[:n], 0)[0]
      state, _ = program.run_block(state, *self.arrays["train"], indices)
      jax.block_until_ready(state)
      start = time.perf_counter()
      state, counts = program.run_block(state, *self.arrays["train"], indices)
      jax.block_until_ready(counts)
      rates[name] = n * self.block * self.batch_size / (time.perf_counter() - start)
    return ("vmapped" if rates["vmapped"] >= rates["sequential"] else "sequential"), rates

  def train(self, group, size, bar):
    """Yields one result row per member, training ``size`` members at a time."""
    program = self._program(group, size)
    for start in range(0, len(group.members), size):
      members = group.members[start:start + size]
      if len(members) < size:  # the last, smaller chunk gets its own program
        program = self._program(group, len(members))
      yield from self._train_chunk(group, members, program, bar)

  def _train_chunk(self, group, members, program, bar):
    base = self.base
    state = self._states(group, members)
    history = [[] for _ in members]
    for epoch in range(1, base.num_epochs + 1):
      totals = None
      for indices in self._epoch_blocks(members, epoch):
        state, counts = program.run_block(state, *self.arrays["train"], indices)
        totals = counts if totals is None else totals + counts
        bar.update(len(members) * self.block)
      results = {"train": totals}
      results.update({name: evaluate(state.variables, *self.arrays[name])
                      for name, evaluate in program.evaluators.items()})
      for k, rows in enumerate(history):
        row = {"epoch": epoch}
        for split, counts in results.items():
          count = float(counts.count[k])
          row[f"{split}_loss"] = _finite_or_none(float(counts.loss_sum[k]) / count)
          row[f"{split}_accuracy"] = float(counts.correct[k]) / count
        rows.append(row)
    for member, rows in zip(members, history):
      yield {
          "optimizer": group.optimizer,
          "optimizer_form": base.optimizer_form,
          "learning_rate": member.learning_rate,
          **member.hyperparameters,
          "seed": member.seed,
          **{k: v for k, v in rows[-1].items() if k != "epoch"},
          "diverged": any(r["train_loss"] is None for r in rows),
          "history": rows,
      }


def _finite_or_none(x: float) -> float | None:
  return x if math.isfinite(x) else None


def configuration(row: dict) -> tuple:
  """What identifies a configuration across seeds: optimizer, α and hyperparameters."""
  keys = ("optimizer", "learning_rate", *optimizers.SYMBOLS)
  return tuple((k, row[k]) for k in keys if k in row)


def aggregate(rows: list[dict]) -> list[dict]:
  """One row per configuration: mean and std over seeds of the final metrics.

  A configuration with any diverged seed has no means (None) and is never chosen.
  """
  by_config = {}
  for row in rows:
    by_config.setdefault(configuration(row), []).append(row)
  table = []
  for config, members in by_config.items():
    out = dict(config)
    out["seeds"] = [m["seed"] for m in members]
    out["diverged"] = any(m["diverged"] for m in members)
    for split in ("train", "validation", "test"):
      for metric in ("loss", "accuracy"):
        key = f"{split}_{metric}"
        values = [m[key] for m in members]
        ok = not out["diverged"] and all(v is not None for v in values)
        out[f"{key}_mean"] = float(np.mean(values)) if ok else None
        out[f"{key}_std"] = float(np.std(values)) if ok else None
    table.append(out)
  return table


def select(table: list[dict]) -> dict:
  """The configuration with the highest mean validation accuracy (ties: lower loss)."""
  candidates = [row for row in table if not row["diverged"]]
  if not candidates:
    raise ConfigError("every configuration diverged; lower the learning rates")
  return max(candidates, key=lambda r: (r["validation_accuracy_mean"],
                                        -r["validation_loss_mean"]))


def markdown_table(table: list[dict], best: dict) -> str:
  """The aggregated table as Markdown; the selected configuration is marked with *."""
  hyper = [k for k in optimizers.SYMBOLS if any(k in row for row in table)]
  header = ["optimizer", "α", *[optimizers.SYMBOLS[k] for k in hyper], "seeds",
            "val acc %", "test acc %", "train loss"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

  def pct(row, key):
    if row[f"{key}_mean"] is None:
      return "diverged"
    return f"{100 * row[f'{key}_mean']:.2f} ± {100 * row[f'{key}_std']:.2f}"

  for row in table:
    mark = " *" if row is best else ""
    cells = [f"{row['optimizer']}{mark}", f"{row['learning_rate']:g}",
             *[f"{row[k]:g}" if k in row else "" for k in hyper], str(len(row["seeds"])),
             pct(row, "validation_accuracy"), pct(row, "test_accuracy"),
             "diverged" if row["train_loss_mean"] is None else f"{row['train_loss_mean']:.4f}"]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)
