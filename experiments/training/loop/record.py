"""Each member's record: its epochs' metrics, early stopping, divergence, the model to keep.

After every epoch each member gets one row of metrics ({split}_{metric} for
train, validation and test, the objective's metrics: {split}_loss and
{split}_accuracy for a classifier, with the epoch's timing).
``MemberRecord.update`` then applies the run's two rules:

- divergence (the objective's ``divergence``: for a classifier, a loss that
  is NaN or infinite, or a mean training cross-entropy over 3 ln K): such a
  model is no longer usable: its row is not recorded, it stops, and the model
  it keeps is its last good epoch's.
- early stopping (``patience`` P > 0): a member whose validation loss has not
  improved on its best for P epochs stops; the model it keeps is the best
  epoch's. Without patience, the model kept is the last epoch's.

A member that stopped or diverged trains on with the others in the compiled
program (its state is simply not read again); the run ends when every
member has stopped, diverged or finished its epochs. Records are plain JSON,
saved with every checkpoint.
"""

import dataclasses

from data import errors

SPLITS = ("train", "validation", "test")


class TrainingDiverged(errors.UserError):
  """Every model of a run diverged; the message says where and what was kept."""


def epoch_row(epoch: int, results: dict, seconds: float, images: int,
              extra: dict | None = None) -> dict:
  """One member's metrics row: {split}_{metric} from its ``results`` {split: dict}, then the
  objective's ``extra`` figures of the epoch."""
  row = {"epoch": epoch}
  for split, values in results.items():
    row.update({f"{split}_{name}": value for name, value in values.items()})
  row.update(extra or {})
  row["images_per_second"] = images / seconds if seconds else None
  row["epoch_seconds"] = seconds
  return row


@dataclasses.dataclass
class MemberRecord:
  """One member's history and state of play; JSON round-trips with ``dataclasses.asdict``."""

  history: list = dataclasses.field(default_factory=list)
  best_epoch: int | None = None  # the epoch of the model kept
  stopped_early: bool = False
  diverged: str | None = None  # e.g. "epoch 3 (train loss nan)"

  @property
  def done(self) -> bool:
    return self.stopped_early or self.diverged is not None

  def update(self, row: dict, patience: int, reason: str | None) -> bool:
    """Records ``row`` unless the member is done or ``reason`` says it diverged (the
    objective's ``divergence``); returns whether its kept model is now this epoch's."""
    if self.done:
      return False
    if reason:
      self.diverged = f"epoch {row['epoch']} ({reason})"
      return False
    self.history.append(row)
    if not patience:
      self.best_epoch = row["epoch"]
      return True
    improved = (self.best_epoch is None
                or row["validation_loss"] < self.kept_row["validation_loss"])
    if improved:
      self.best_epoch = row["epoch"]
    self.stopped_early = row["epoch"] - self.best_epoch >= patience
    return improved

  @property
  def kept_row(self) -> dict | None:
    """The metrics row of the kept model's epoch (None if no epoch was good)."""
    if self.best_epoch is None:
      return None
    return next(r for r in self.history if r["epoch"] == self.best_epoch)


def metrics_rows(records: list[MemberRecord], label: str | None) -> list[dict]:
  """metrics.jsonl's rows: each member's epochs, tagged with ``label`` (e.g. "fold") when given."""
  if label is None:
    return list(records[0].history)
  return [{label: k, **row} for k, r in enumerate(records) for row in r.history]


def from_json(saved: dict) -> MemberRecord:
  return MemberRecord(**saved)
