"""TensorBoard event files: each model's per-epoch curves and its hyperparameters.

    tensorboard --logdir=WORKDIR

A run writes ``DIRECTORY/tensorboard/`` for one model and
``DIRECTORY/tensorboard/{fold,member}_k/`` for K models trained together, so
every model of a run, and of a sweep (``runs/<group>-<run>/``), is one
TensorBoard run. Each epoch adds the scalars ``{train,validation,test}/
{loss,accuracy}``, ``learning_rate`` (α s(t) at the epoch's last update) and
``images_per_second``; the HParams plugin gets the model's resolved settings
and those metrics when it starts, and its end when training finishes, so a
sweep's models compare in TensorBoard's table.

Written with tensorboardX's synchronous ``EventsWriter`` and its summary
protos (a maintained writer that needs only protobuf: clu's metric_writers
would import TensorFlow, torch.utils.tensorboard PyTorch), one record at a
time from the training thread, so a full disk or a vanished folder is an
OSError where it happens rather than a lost write in a background thread.
A resumed run adds a new event file; the epochs it trains again after the
checkpoint it resumed from have the same values as before (resuming is exact).
"""

import contextlib
import os
import time

from tensorboardX import summary
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto import event_pb2

from experiments.training import config as config_lib

METRICS = tuple(f"{split}/{name}" for split in ("train", "validation", "test")
                for name in ("loss", "accuracy"))


def _hparam(value):
  """A setting as the HParams plugin takes it: a number, string or bool (tuples as text)."""
  if isinstance(value, (bool, int, float, str)):
    return value
  if isinstance(value, tuple):
    return ",".join("=".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in value)
  return str(value)


class Log:
  """One event file per model of a run; ``epoch`` after each epoch, ``close`` at the end."""

  def __init__(self, directory: str, members, folds: bool, schedule, updates_per_epoch: int):
    root = os.path.join(directory, "tensorboard")
    label = "fold" if folds else "member"
    folders = [root] if len(members) == 1 else [os.path.join(root, f"{label}_{k}")
                                               for k in range(len(members))]
    self._members, self._schedule, self._updates = members, schedule, updates_per_epoch
    self._writers, self._folders = [], []
    for folder, member in zip(folders, members):
      os.makedirs(folder, exist_ok=True)
      writer = EventsWriter(os.path.join(folder, "events"))
      self._folders.append(folder)
      settings = config_lib.to_json(member)
      hparams = {k: _hparam(v) for k, v in settings.items()
                 if k not in config_lib.OUTPUT_SETTINGS and v is not None}
      experiment, session_start, _ = summary.hparams(hparams, {m: 0.0 for m in METRICS})
      for proto in (experiment, session_start):
        writer.write_event(event_pb2.Event(wall_time=time.time(), summary=proto))
      writer.flush()
      self._writers.append(writer)

  def epoch(self, epoch: int, rows: list[dict | None]) -> None:
    """Adds member k's ``rows[k]`` (an epoch_row; None: nothing new, e.g. it had diverged)."""
    for folder, writer, member, row in zip(self._folders, self._writers, self._members, rows):
      with _naming(folder):
        self._add(epoch, writer, member, row)

  def _add(self, epoch: int, writer, member, row: dict | None) -> None:
    if row is None:
      return
    values = {"learning_rate": member.learning_rate * float(
        self._schedule(epoch * self._updates - 1)), "images_per_second": row["images_per_second"]}
    values.update({m: row[m.replace("/", "_")] for m in METRICS
                   if row.get(m.replace("/", "_")) is not None})
    for tag, value in values.items():
      if value is not None:
        writer.write_event(event_pb2.Event(wall_time=time.time(), step=epoch,
                                           summary=summary.scalar(tag, value)))
    writer.flush()

  def close(self, finished: bool) -> None:
    """Closes the files; ``finished``: training ended, which the HParams plugin shows."""
    for folder, writer in zip(self._folders, self._writers):
      with _naming(folder):
        if finished:
          _, _, session_end = summary.hparams({}, {})
          writer.write_event(event_pb2.Event(wall_time=time.time(), summary=session_end))
        writer.close()


@contextlib.contextmanager
def _naming(folder: str):
  """An OSError that names no file (a full disk) raised again naming the event folder."""
  try:
    yield
  except OSError as e:
    if e.filename:
      raise
    raise OSError(e.errno, e.strerror or str(e), os.path.join(folder, "events")) from e
