"""Monitoring a deployed model: labelled predictions in a sliding window, a crash-safe feedback log.

Each prediction the server makes gets an id; feedback gives its true label.
``Window`` keeps the last ``size`` labelled predictions as a confusion matrix
C (C[t, p]: true class t predicted as p), updated as they come and go, and
reports accuracy = Σ_k C[k, k] / Σ C and, per class k,

    precision_k = C[k, k] / Σ_t C[t, k],  recall_k = C[k, k] / Σ_p C[k, p],
    F1_k = 2 precision_k recall_k / (precision_k + recall_k),

each 0 where its denominator is 0 (scikit-learn's ``zero_division=0``).

``FeedbackLog`` appends each labelled prediction to a JSON-lines file, one
``os.write`` of whole lines per request, fsynced before the answer, under an
exclusive lock (one server per log). A restarted server reads it back and
continues its window: lines that do not parse (a line cut by a crash) or do
not fit the model are skipped and counted, never guessed at.
"""

import collections
import fcntl
import json
import os

import numpy as np

from data import files
from data.errors import UserError


class Window:
  """The confusion matrix of the last ``size`` labelled predictions."""

  def __init__(self, num_classes: int, size: int = 1000):
    self.num_classes = num_classes
    self._pairs = collections.deque(maxlen=size)
    self.confusion = np.zeros((num_classes, num_classes), np.int64)

  def add(self, label: int, predicted: int) -> None:
    if len(self._pairs) == self._pairs.maxlen:
      old_label, old_predicted = self._pairs[0]
      self.confusion[old_label, old_predicted] -= 1
    self._pairs.append((label, predicted))
    self.confusion[label, predicted] += 1

  def __len__(self) -> int:
    return len(self._pairs)

  def report(self, class_names) -> dict:
    """Accuracy, per-class precision, recall, F1 and support, and the confusion matrix, as JSON."""
    c = self.confusion.astype(np.float64)
    correct = np.diag(c)
    precision = np.divide(correct, c.sum(0), out=np.zeros_like(correct), where=c.sum(0) > 0)
    recall = np.divide(correct, c.sum(1), out=np.zeros_like(correct), where=c.sum(1) > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(correct), where=total > 0)
    n = len(self._pairs)
    return {
        "labelled": n,
        "window": self._pairs.maxlen,
        "accuracy": float(correct.sum() / n) if n else None,
        "macro_f1": float(f1.mean()) if n else None,
        "per_class": [{"class": k, "label": name, "precision": float(precision[k]),
                       "recall": float(recall[k]), "f1": float(f1[k]),
                       "support": int(c[k].sum())} for k, name in enumerate(class_names)],
        "confusion_matrix": self.confusion.tolist(),
    }


class FeedbackLog:
  """An append-only JSON-lines file of labelled predictions, held by one server at a time."""

  def __init__(self, path: str):
    self.path = os.path.abspath(path)
    files.check_writable(os.path.dirname(self.path))
    try:
      self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
      raise UserError(f"cannot open the feedback log {self.path}: {e.strerror}") from None
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      os.close(self._fd)
      raise UserError(f"the feedback log {self.path} is in use by another server; give each "
                      "server its own --feedback_log") from None

  def read(self, model: str, num_classes: int) -> tuple[list[dict], int]:
    """The records of ``model`` in the log, oldest first, and how many lines were skipped.

    A last line cut short by a crash is closed with a newline, so the next
    record starts a line of its own (the cut line stays, skipped).
    """
    with open(self.path, "rb") as f:
      data = f.read()
    if data and not data.endswith(b"\n"):
      os.write(self._fd, b"\n")
    records, skipped = [], 0
    for line in data.splitlines():
      try:
        record = json.loads(line)
        valid = (isinstance(record, dict) and isinstance(record.get("id"), str)
                 and all(type(record.get(k)) is int and 0 <= record[k] < num_classes
                         for k in ("label", "predicted")))
      except ValueError:
        valid = False
      if not valid:
        skipped += 1
      elif record.get("model") == model:
        records.append(record)
    return records, skipped

  def append(self, records: list[dict]) -> None:
    """Appends ``records`` as whole lines and syncs them to disk; OSError (the log as it
    was) if it cannot."""
    data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()
    files.append_whole(self._fd, data, self.path)

  def close(self) -> None:
    os.close(self._fd)
