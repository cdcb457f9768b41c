"""Orbax checkpoints of a training run in ``<workdir>/checkpoints/<epoch>/``.

A checkpoint holds three items:
  state     the TrainState's arrays (step, params, optimizer state, batch
            statistics, dropout key): everything a resumed run needs, with the
            epoch number, to continue exactly where it stopped;
  model     the variables to use for prediction ({"params"[, "batch_stats"]}):
            the current ones, or the best-on-validation ones under early stopping;
  record    JSON: the per-epoch metrics so far, the early-stopping record, and
            how inputs are prepared (shape, pixel mean and std) for prediction.

Orbax writes each checkpoint into a temporary folder and renames it when
complete, and deletes the previous one only afterwards, so a run killed at
any moment leaves the last complete checkpoint readable.
"""

import os
from typing import Any, NamedTuple

import jax
import orbax.checkpoint as ocp

from experiments import steps


class Saved(NamedTuple):
  """What a checkpoint restores to."""

  epoch: int
  state: steps.TrainState
  model: dict
  record: dict


def _arrays(state: steps.TrainState) -> dict:
  """The state's arrays; the typed PRNG key as its raw uint32 data."""
  return {"step": state.step, "params": state.params, "opt_state": state.opt_state,
          "batch_stats": state.batch_stats,
          "dropout_key": jax.random.key_data(state.dropout_key)}


class Checkpoints:
  """The checkpoints of one workdir, the newest kept."""

  def __init__(self, workdir: str, create: bool = True):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    options = ocp.CheckpointManagerOptions(
        max_to_keep=1, create=create, enable_async_checkpointing=False)
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_epoch(self) -> int | None:
    return self._manager.latest_step()

  def save(self, epoch: int, state: steps.TrainState, model: dict, record: dict) -> None:
    self._manager.save(epoch, args=ocp.args.Composite(
        state=ocp.args.StandardSave(_arrays(state)),
        model=ocp.args.StandardSave(model),
        record=ocp.args.JsonSave(record)))
    self._manager.wait_until_finished()

  def restore(self, like: steps.TrainState) -> Saved | None:
    """The latest checkpoint, its arrays shaped and placed like ``like``'s; None if none."""
    epoch = self.latest_epoch()
    if epoch is None:
      return None
    arrays = _arrays(like)
    model = like.variables
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, (arrays, model))
    restored = self._manager.restore(epoch, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract[0]),
        model=ocp.args.StandardRestore(abstract[1]),
        record=ocp.args.JsonRestore()))
    saved = restored.state
    state = like.replace(
        step=saved["step"], params=saved["params"], opt_state=saved["opt_state"],
        batch_stats=saved["batch_stats"],
        dropout_key=jax.random.wrap_key_data(saved["dropout_key"]))
    return Saved(epoch, state, restored.model, restored.record)

  def restore_model(self) -> tuple[Any, dict]:
    """The latest checkpoint's prediction variables, as saved (no target structure), and record."""
    epoch = self.latest_epoch()
    if epoch is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    restored = self._manager.restore(epoch, args=ocp.args.Composite(
        model=ocp.args.StandardRestore(), record=ocp.args.JsonRestore()))
    return restored.model, restored.record
