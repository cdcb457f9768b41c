"""The decisions that change a run's course, as plain functions of a ``Loop`` after an epoch.

``decide`` applies each member's record (``record.py``: divergence, patience,
the model kept) to the epoch's rows, keeps the models the rules say to keep,
and says whether the run has ended; ``evaluate_test`` evaluates the kept
models on the test split. Only ``fit`` and these functions write a ``Loop``.
"""

import jax
import jax.numpy as jnp
import numpy as np

from experiments.training.processes import sharding


@jax.jit
def keep(changed: jax.Array, new: dict, old: dict) -> dict:
  """Member k's variables from ``new`` where ``changed[k]``, else from ``old`` (K > 1)."""
  def pick(a, b):
    return jnp.where(changed.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
  return jax.tree.map(pick, new, old)


def decide(loop, diverged_is_finished: bool = False) -> None:
  """After an epoch: records, kept models, and whether the run is finished or all diverged.

  Each member still training records its row unless it diverged; its kept
  model becomes this epoch's when its record says so. The run is finished
  when every member is done or the last epoch is reached; then the kept
  models are evaluated on the test split. When every member still training
  diverged this epoch, the run ends with ``all_diverged`` and nothing of the
  epoch is kept (its last good checkpoint stays as it was); with
  ``diverged_is_finished`` (a sweep's run, whose diverged models are results
  too) it is finished instead, so a rerun does not train it again.
  """
  run = loop.run
  lengths = [len(r.history) for r in loop.records]
  changed = [rec.update(row, run.config.patience, run.objective.divergence(row, run.num_classes))
             for rec, row in zip(loop.records, loop.rows)]
  loop.new_rows = [row if len(r.history) > n else None
                   for row, r, n in zip(loop.rows, loop.records, lengths)]
  if not any(loop.new_rows):
    if diverged_is_finished:
      loop.finished = True
      evaluate_test(loop)
    else:
      loop.all_diverged = True
    return
  if run.size > 1:
    loop.kept = keep(np.asarray(changed), loop.state.variables, loop.kept)
  elif changed[0]:  # the state's buffers are donated to the next block: keep a copy
    loop.kept = jax.tree.map(jnp.copy, loop.state.variables)
  if loop.epoch == run.config.num_epochs or all(r.done for r in loop.records):
    loop.finished = True
    evaluate_test(loop)


def evaluate_test(loop) -> None:
  """The kept models' outputs on the test split and each member's test report."""
  data, objective = loop.pipeline.data, loop.run.objective
  outputs = sharding.to_host(loop.program.outputs(loop.kept, "test"))
  loop.test_outputs = outputs
  stacked = outputs if loop.run.size > 1 else jax.tree.map(lambda a: a[None], outputs)
  loop.test_metrics = [
      objective.test_report(jax.tree.map(lambda a, k=k: a[k], stacked), data.test_labels,
                            data.class_names) if r.best_epoch else None
      for k, r in enumerate(loop.records)]


def ranking_loss(rows: list[dict], records) -> float:
  """What ranks a checkpoint: the mean validation (else train) loss of the members still good."""
  split = "validation" if "validation_loss" in rows[0] else "train"
  losses = [row[f"{split}_loss"] for row, r in zip(rows, records) if not r.diverged]
  return float(np.mean(losses)) if losses else float("inf")
