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

Events are tensorboardX's summary protos (a maintained library that needs
only protobuf: clu's metric_writers would import TensorFlow,
torch.utils.tensorboard PyTorch), framed as TFRecords (``_EventFile``) and
appended an epoch at a time from the training thread, whole or not at all: a
full disk or a vanished folder is an OSError naming the file where it
happens, and the file still ends with the last whole epoch. A resumed run
adds a new event file; the epochs it trains again after the checkpoint it
resumed from have the same values as before (resuming is exact).
"""

import os
import socket
import struct
import time

from tensorboardX import summary
from tensorboardX.proto import event_pb2
from tensorboardX.record_writer import masked_crc32c

from data import files
from experiments.training.settings import config as config_lib

METRICS = tuple(f"{split}/{name}" for split in ("train", "validation", "test")
                for name in ("loss", "accuracy"))


def _hparam(value):
  """A setting as the HParams plugin takes it: a number, string or bool (tuples as text)."""
  if isinstance(value, (bool, int, float, str)):
    return value
  if isinstance(value, tuple):
    return ",".join("=".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in value)
  return str(value)


class _EventFile:
  """One TensorBoard event file: TFRecords of Event protos, each framed as
  length (u64), crc(length), data, crc(data) with masked CRC-32C; the first
  record names the format version. ``write`` appends whole records or none."""

  def __init__(self, folder: str):
    self.path = os.path.join(
        folder, f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}")
    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    self.write([event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")])

  def write(self, events: list) -> None:
    records = []
    for event in events:
      data = event.SerializeToString()
      length = struct.pack("<Q", len(data))
      records += [length, struct.pack("<I", masked_crc32c(length)), data,
                  struct.pack("<I", masked_crc32c(data))]
    files.append_whole(self._fd, b"".join(records), self.path)

  def close(self) -> None:
    os.close(self._fd)


class Log:
  """One event file per model of a run; ``epoch`` after each epoch, ``close`` at the end."""

  def __init__(self, directory: str, members, folds: bool, schedule, updates_per_epoch: int):
    root = os.path.join(directory, "tensorboard")
    label = "fold" if folds else "member"
    folders = [root] if len(members) == 1 else [os.path.join(root, f"{label}_{k}")
                                               for k in range(len(members))]
    self._members, self._schedule, self._updates = members, schedule, updates_per_epoch
    self._files = []
    for folder, member in zip(folders, members):
      os.makedirs(folder, exist_ok=True)
      self._files.append(_EventFile(folder))
      settings = config_lib.to_json(member)
      hparams = {k: _hparam(v) for k, v in settings.items()
                 if k not in config_lib.OUTPUT_SETTINGS and v is not None}
      experiment, session_start, _ = summary.hparams(hparams, {m: 0.0 for m in METRICS})
      self._files[-1].write([event_pb2.Event(wall_time=time.time(), summary=proto)
                             for proto in (experiment, session_start)])

  def epoch(self, epoch: int, rows: list[dict | None]) -> None:
    """Adds member k's ``rows[k]`` (an epoch_row; None: nothing new, e.g. it had diverged)."""
    for file, member, row in zip(self._files, self._members, rows):
      if row is None:
        continue
      values = {"learning_rate": member.learning_rate * float(
          self._schedule(epoch * self._updates - 1)), "images_per_second": row["images_per_second"]}
      values.update({m: row.get(m.replace("/", "_")) for m in METRICS})
      file.write([event_pb2.Event(wall_time=time.time(), step=epoch,
                                  summary=summary.scalar(tag, value))
                  for tag, value in values.items() if value is not None])

  def close(self, finished: bool) -> None:
    """Closes the files; ``finished``: training ended, which the HParams plugin shows."""
    for file in self._files:
      try:
        if finished:
          _, _, session_end = summary.hparams({}, {})
          file.write([event_pb2.Event(wall_time=time.time(), summary=session_end)])
      finally:
        file.close()
