"""A checkpoint's manifest (what it records about its run) and the checks a run makes
against a workdir before anything else.

``make_manifest`` is the JSON a checkpoint keeps beside its arrays
(``checkpoints.py`` stores it, with its digest): the members' settings and
records and what predicting needs. Before any data are prepared or any epoch
is trained, a run checks that its workdir and the checkpoint folders in it are
writable (``check_writable``) and that the checkpoint there, if any, is this
run's (``check_same_run``, ``check_same_members``: the training settings
compared one by one).
"""

import dataclasses
import os

from data import files
from data.errors import UserError
from experiments.training.settings import config as config_lib
from experiments.training.storage.checkpoints import Checkpoints
from experiments.training.storage.checkpoints import Damaged


def check_writable(workdir: str) -> None:
  """UserError (one line) unless ``workdir`` and the checkpoint folders already in it are writable.

  Checked before any work, so that a run does not find out after an epoch.
  """
  files.check_writable(workdir)
  for folder, subfolders, names in os.walk(workdir):
    if "checkpoints" in names:
      raise UserError(f"{os.path.join(folder, 'checkpoints')} is a file where the run keeps its "
                      "checkpoints folder; move it away")
    if "checkpoints" in subfolders:  # a folder, or a link to one (os.walk does not follow it)
      files.check_writable(os.path.join(folder, "checkpoints"))
      subfolders.remove("checkpoints")


def check_same_run(directory: str, members) -> None:
  """UserError before any work if ``directory``'s newest readable checkpoint is another run's.

  Reads the manifest alone (no arrays), so a resume with other settings (say
  another dataset) is refused before the data are prepared; the full check
  runs again when the checkpoint is restored.
  """
  reader = Checkpoints(directory, read_only=True)
  for epoch in reader.epochs():
    try:
      manifest = reader.verified_manifest(epoch)
    except Damaged:
      continue
    check_same_members(members, manifest, directory)
    return


def check_same_members(members, saved: dict, directory: str) -> None:
  """UserError if the checkpoint in ``directory`` was trained with other settings."""
  before = [config_lib.from_json(m).training_settings() for m in saved["members"]]
  now = [m.training_settings() for m in members]
  if len(before) != len(now):
    raise UserError(f"{directory} holds a checkpoint of another run ({len(before)} models "
                      f"there, {len(now)} here); resume with its settings, or use another "
                      "--workdir")
  for there, here in zip(before, now):
    for key, value in here.items():
      if there.get(key) != value:
        raise UserError(
            f"{directory} holds a checkpoint of another run ({key} {there.get(key)!r} there, "
            f"{value!r} here); resume with its settings, or use another --workdir")


def make_manifest(run, records, finished: bool, test_metrics, data, scaling) -> dict:
  """A checkpoint's manifest: the members' settings and records, and what predicting needs."""
  return {
      "members": [config_lib.to_json(m) for m in run.members],
      "records": [dataclasses.asdict(r) for r in records],
      "finished": finished,
      "test_metrics": test_metrics if finished else None,
      "input_shape": list(run.input_shape),
      "class_names": list(data.class_names),
      "pixel_scaling": [list(s) for s in scaling],
  }
