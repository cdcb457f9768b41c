"""Orbax checkpoints of a run in ``<directory>/checkpoints/<epoch>/``.

A checkpoint holds three items:
  state     the stacked TrainState's arrays (step, params, optimizer state,
            batch statistics, dropout keys, penalty weights and dropout rates):
            everything a resumed run needs, with the epoch number, to continue
            exactly where it stopped;
  model     each member's variables to predict with ({"params"[,
            "batch_stats"]}, stacked): the kept epoch's (``record.py``);
  record    JSON: each member's resolved settings and record, the input shape
            and pixel scaling for prediction, and whether the run finished.

Orbax writes each checkpoint into a temporary folder and renames it when
complete, and deletes the previous one only afterwards, so a run killed at
any moment leaves the last complete checkpoint readable. The folder is
created by the first save (and Orbax imported only then): a run that never
saved leaves nothing behind.
"""

import os
from typing import NamedTuple

import jax

from experiments.training.state import TrainState


class Saved(NamedTuple):
  """What a checkpoint restores to."""

  epoch: int
  state: TrainState
  model: dict
  record: dict


def _arrays(state: TrainState) -> dict:
  """The state's arrays; the typed PRNG keys as their raw uint32 data."""
  return {"step": state.step, "params": state.params, "opt_state": state.opt_state,
          "batch_stats": state.batch_stats, "penalty": state.penalty._asdict(),
          "dropout": state.dropout, "dropout_key": jax.random.key_data(state.dropout_key)}


def _orbax():
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top  (seconds to import)
  return ocp


class Checkpoints:
  """The checkpoints of one run directory, the newest kept."""

  def __init__(self, directory: str):
    self.directory = os.path.join(os.path.abspath(directory), "checkpoints")
    self._manager = None

  def _open(self, create: bool = False):
    if self._manager is None:
      ocp = _orbax()
      options = ocp.CheckpointManagerOptions(
          max_to_keep=1, create=create, enable_async_checkpointing=False)
      self._manager = ocp.CheckpointManager(self.directory, options=options)
    return self._manager

  def latest_epoch(self) -> int | None:
    if self._manager is None and not os.path.isdir(self.directory):
      return None
    return self._open().latest_step()

  def save(self, epoch: int, state: TrainState, model: dict, record: dict) -> None:
    ocp = _orbax()
    manager = self._open(create=True)
    manager.save(epoch, args=ocp.args.Composite(
        state=ocp.args.StandardSave(_arrays(state)),
        model=ocp.args.StandardSave(model),
        record=ocp.args.JsonSave(record)), force=True)
    manager.wait_until_finished()

  def restore_record(self) -> dict | None:
    """The latest checkpoint's record alone (None if there is no checkpoint)."""
    epoch = self.latest_epoch()
    if epoch is None:
      return None
    ocp = _orbax()
    return self._manager.restore(epoch, args=ocp.args.Composite(
        record=ocp.args.JsonRestore())).record

  def restore(self, like: TrainState) -> Saved | None:
    """The latest checkpoint, its arrays shaped and placed like ``like``'s; None if none."""
    epoch = self.latest_epoch()
    if epoch is None:
      return None
    ocp = _orbax()
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, (_arrays(like), like.variables))
    restored = self._manager.restore(epoch, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract[0]),
        model=ocp.args.StandardRestore(abstract[1]),
        record=ocp.args.JsonRestore()))
    saved = restored.state
    state = like.replace(
        step=saved["step"], params=saved["params"], opt_state=saved["opt_state"],
        batch_stats=saved["batch_stats"], penalty=type(like.penalty)(**saved["penalty"]),
        dropout=saved["dropout"], dropout_key=jax.random.wrap_key_data(saved["dropout_key"]))
    return Saved(epoch, state, restored.model, restored.record)

  def restore_model(self) -> tuple[dict, dict]:
    """The latest checkpoint's prediction variables, as saved (no target structure), and record."""
    epoch = self.latest_epoch()
    if epoch is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    ocp = _orbax()
    restored = self._manager.restore(epoch, args=ocp.args.Composite(
        model=ocp.args.StandardRestore(), record=ocp.args.JsonRestore()))
    return restored.model, restored.record
