"""Verified Orbax checkpoints of a run in ``<directory>/checkpoints/<epoch>/``.

A checkpoint holds three items:
  state     the stacked TrainState's arrays (step, params, optimizer state,
            batch statistics, step keys, penalty weights and dropout rates):
            everything a resumed run needs, with the epoch number, to continue
            exactly where it stopped;
  model     each member's variables to predict with ({"params"[,
            "batch_stats"]}, stacked): the kept epoch's (``manifest.py``);
  record    the manifest, JSON (``manifest.py``): each member's resolved
            settings and record (``loop/record.py``), the input shape and pixel
            scaling for prediction, whether the run finished, and SHA-256
            digests of the two array items and of the manifest itself.

Restoring verifies every digest; a checkpoint that fails (unreadable, or any
byte changed) is named in one warning line and the newest checkpoint that
passes is used instead (the failed ones after it are deleted, since the run
continues from the good one). With none good, ``UserError`` and nothing is
changed. The newest two checkpoints and the one with the lowest validation
loss are kept (Orbax preservation policies).

Orbax writes each checkpoint into a temporary folder and renames it when
complete, so a run killed at any moment leaves its complete checkpoints
readable. The folder is created by the first save (and Orbax imported only
then): a run that never saved leaves nothing behind.
"""

import hashlib
import json
import os
import re
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from data.errors import UserError
from experiments.training.processes import sharding


class Saved(NamedTuple):
  """What a checkpoint restores to."""

  epoch: int
  state: object  # the loop's TrainState
  model: dict
  manifest: dict


class Damaged(Exception):
  """A checkpoint that cannot be read or does not match its digests."""


def _orbax():
  import orbax.checkpoint as ocp  # imported here: seconds to import
  return ocp


def _arrays(state) -> dict:
  """The state's arrays; the typed PRNG keys as their raw uint32 data."""
  return {"step": state.step, "params": state.params, "opt_state": state.opt_state,
          "batch_stats": state.batch_stats, "penalty": state.penalty._asdict(),
          "dropout": state.dropout, "dropout_key": jax.random.key_data(state.key)}  # its name on disk


def _with_member_axis(tree):
  return jax.tree.map(lambda a: jnp.expand_dims(a, 0), tree)


def _member(tree, k: int):
  return jax.tree.map(lambda a: a[k], tree)


def _empty(tree):
  """Uninitialized NumPy arrays shaped like ``tree``'s leaves: Orbax restores into NumPy then."""
  return jax.tree.map(lambda a: np.empty(a.shape, a.dtype), tree)


def digest(tree) -> str:
  """SHA-256 of every leaf's path, dtype, shape and bytes, in tree order."""
  h = hashlib.sha256()
  for path, array in jax.tree_util.tree_flatten_with_path(sharding.to_host(tree))[0]:
    h.update(f"{jax.tree_util.keystr(path)}:{array.dtype}:{array.shape};".encode())
    h.update(np.ascontiguousarray(array).tobytes())
  return h.hexdigest()


def _manifest_digest(manifest: dict) -> str:
  body = {k: v for k, v in manifest.items() if k != "digest"}
  return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _reason(error: Exception) -> str:
  """What went wrong, short: the OS error when the message names one, else its first line."""
  text = str(error)
  code = re.search(r"os_error_code='?(\d+)", text)
  if code:
    return os.strerror(int(code.group(1)))
  if "TensorStore" in text:  # its message runs to hundreds of characters of store spec
    return "its array data cannot be read: a file is damaged or truncated"
  if isinstance(error, OSError) and error.strerror:
    return error.strerror
  first = text.strip().splitlines()[0] if text.strip() else ""
  return f"{type(error).__name__}: {first[:200]}" if first else type(error).__name__


class Checkpoints:
  """The checkpoints of one run directory.

  Over several processes, every process of the run saves and restores its
  own shards and process 0 writes the rest (Orbax's multi-process mode);
  ``local``: this process alone trains the run and writes everything.
  """

  def __init__(self, directory: str, local: bool = False, read_only: bool = False):
    self.directory = os.path.join(os.path.abspath(directory), "checkpoints")
    self._manager = None
    self._local = local and jax.process_count() > 1
    self._read_only = read_only

  def _open(self, create: bool = False):
    if self._manager is None and self._read_only:
      # Creates, deletes and locks nothing: a reader never disturbs a run writing here
      # (a writable manager would delete the run's unfinished N.orbax-checkpoint-tmp).
      ocp = _orbax()
      self._manager = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(
          read_only=True, enable_async_checkpointing=False))
    if self._manager is None:
      ocp = _orbax()
      policies = ocp.checkpoint_managers
      me = jax.process_index()
      processes = (ocp.options.MultiprocessingOptions(
          primary_host=me, active_processes={me}, barrier_sync_key_prefix=f"process{me}")
                   if self._local else ocp.options.MultiprocessingOptions())
      if create and self._local:  # Orbax leaves creating the folder to a subset of processes
        os.makedirs(self.directory, exist_ok=True)
      options = ocp.CheckpointManagerOptions(
          create=create and not self._local, enable_async_checkpointing=False,
          cleanup_tmp_directories=True, multiprocessing_options=processes,
          preservation_policy=policies.AnyPreservationPolicy([
              policies.LatestN(2),
              policies.BestN(get_metric_fn=lambda metrics: metrics["loss"], reverse=True, n=1,
                             keep_checkpoints_without_metrics=False)]))
      self._manager = ocp.CheckpointManager(self.directory, options=options)
    return self._manager

  def _saved_form(self, tree):
    """What Orbax writes: over several processes, a run of one process's arrays as NumPy arrays
    (Orbax refuses process-local jax.Arrays there)."""
    return sharding.to_host(tree) if self._local else tree

  def epochs(self) -> list[int]:
    """The epochs with a complete checkpoint, newest first."""
    if self._manager is None and not os.path.isdir(self.directory):
      return []
    return sorted(self._open().all_steps(), reverse=True)

  def latest_epoch(self) -> int | None:
    return next(iter(self.epochs()), None)

  def save(self, epoch: int, state, model: dict, manifest: dict, loss: float,
           stacked: bool = True) -> None:
    """Writes the checkpoint of ``epoch``; ``loss`` ranks it (lowest kept: validation loss).

    ``stacked``: the state and model have a member axis; without one (a single
    model), they are saved with a member axis of size 1, so every checkpoint
    has the same form. UserError if it cannot be written (a full disk): the
    previous one is kept.
    """
    assert not self._read_only, "a read-only Checkpoints cannot save"
    ocp = _orbax()
    if not stacked:
      state, model = _with_member_axis((state, model))
    arrays = _arrays(state)
    manifest = {**manifest, "digests": {"state": digest(arrays), "model": digest(model)}}
    manifest["digest"] = _manifest_digest(manifest)
    # Not self.latest_epoch(): whether the folder exists yet must not decide, since another
    # process of the run may be creating it now (and every process must open Orbax alike).
    # Without a manager, restore() found no checkpoint.
    previous = max(self._manager.all_steps(), default=None) if self._manager else None
    try:
      manager = self._open(create=True)
      manager.save(epoch, args=ocp.args.Composite(
          state=ocp.args.StandardSave(self._saved_form(arrays)),
          model=ocp.args.StandardSave(self._saved_form(model)),
          record=ocp.args.JsonSave(manifest)), metrics={"loss": loss}, force=True)
      manager.wait_until_finished()
    except Exception as e:  # any failure to write is one line
      kept = f"the checkpoint of epoch {previous} is kept" if previous else "none was saved before"
      raise UserError(f"could not write the checkpoint of epoch {epoch} in {self.directory} "
                      f"({_reason(e)}); {kept}") from e

  def verified_manifest(self, epoch: int) -> dict:
    """The manifest of ``epoch`` alone (no arrays), its digest checked; Damaged if it fails."""
    ocp = _orbax()
    try:
      manifest = self._open().restore(epoch, args=ocp.args.Composite(
          record=ocp.args.JsonRestore())).record
    except Exception as e:  # damage, not a bug
      raise Damaged(f"unreadable record: {_reason(e)}") from e
    if not isinstance(manifest, dict) or manifest.get("digest") != _manifest_digest(manifest):
      raise Damaged("its record does not match its digest")
    return manifest

  def _verified(self, epoch: int, check: Callable[[dict], None], items: dict) -> tuple:
    """The manifest and the ``items`` (name -> abstract target or None) of ``epoch``, verified.

    A None target restores NumPy arrays shaped as saved (whatever devices and
    processes wrote them).
    """
    ocp = _orbax()
    manifest = self.verified_manifest(epoch)
    check(manifest)
    try:
      targets = {name: self._as_saved(epoch, name) if target is None else target
                 for name, target in items.items()}
      restored = self._open().restore(epoch, args=ocp.args.Composite(**{
          name: ocp.args.StandardRestore(target) for name, target in targets.items()}))
    except Exception as e:  # damage, not a bug
      raise Damaged(f"unreadable arrays: {_reason(e)}") from e
    for name in items:
      if digest(restored[name]) != manifest["digests"][name]:
        raise Damaged(f"its {name} arrays do not match their digest")
    return manifest, restored

  def _as_saved(self, epoch: int, name: str):
    """Empty NumPy arrays shaped like item ``name`` of ``epoch``, from its metadata."""
    return _empty(_orbax().StandardCheckpointer().metadata(
        os.path.join(self.directory, str(epoch), name)).item_metadata.tree)

  def _newest_good(self, check: Callable[[dict], None], items: dict):
    """(epoch, manifest, restored items) of the newest checkpoint that passes; None if none exist."""
    epochs = self.epochs()
    if not epochs:
      return None
    damaged = []
    for epoch in epochs:
      try:
        manifest, restored = self._verified(epoch, check, items)
      except Damaged as e:
        damaged.append((epoch, str(e)))
        continue
      if damaged:
        logging.warning("%s; using the checkpoint of epoch %d", "; ".join(
            f"the checkpoint of epoch {e} in {self.directory} failed verification ({why})"
            for e, why in damaged), epoch)
      return epoch, manifest, restored
    raise UserError(f"no usable checkpoint in {self.directory}: "
                    f"{'; '.join(f'epoch {e}: {why}' for e, why in damaged)}; move that folder "
                    "away to start over")

  def restore(self, like, check: Callable[[dict], None],
              stacked: bool = True) -> Saved | None:
    """The newest good checkpoint, arrays shaped and placed like ``like``'s; None if none.

    ``check(manifest)`` raises (a UserError) if the checkpoint belongs to
    another run. ``stacked``: as in ``save``. Failed checkpoints newer than
    the one used are deleted: the run continues from the good one and will
    write them again.
    """
    if not self.epochs():  # a fresh run needs no Orbax before its first step
      return None
    if not stacked:
      saved = self.restore(_with_member_axis(like), check)
      return saved._replace(state=_member(saved.state, 0), model=_member(saved.model, 0))
    ocp = _orbax()
    targets = (_arrays(like), like.variables)
    abstract = (_empty(targets) if self._local
                else jax.tree.map(ocp.utils.to_shape_dtype_struct, targets))
    found = self._newest_good(check, {"state": abstract[0], "model": abstract[1]})
    if found is None:
      return None
    epoch, manifest, restored = found
    for newer in [e for e in self.epochs() if e > epoch]:
      self._open().delete(newer)
    if self._local:  # NumPy arrays, placed where ``like``'s are
      restored = {name: jax.tree.map(lambda a, t: jax.device_put(a, t.sharding), restored[name],
                                     target) for name, target in zip(("state", "model"), targets)}
    saved = restored["state"]
    state = like.replace(
        step=saved["step"], params=saved["params"], opt_state=saved["opt_state"],
        batch_stats=saved["batch_stats"], penalty=type(like.penalty)(**saved["penalty"]),
        dropout=saved["dropout"], key=jax.random.wrap_key_data(saved["dropout_key"]))
    return Saved(epoch, state, restored["model"], manifest)

  def restore_model(self) -> tuple[dict, dict]:
    """The newest good checkpoint's prediction variables (no target structure) and manifest.

    Opened ``read_only``, this changes nothing on disk.
    """
    found = self._newest_good(lambda manifest: None, {"model": None})
    if found is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    _, manifest, restored = found
    return restored["model"], manifest
