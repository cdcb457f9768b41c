"""experiments/serving/monitor.py and drift.py: the window's figures against scikit-learn, the log."""

import json
import os
import resource
import signal

import numpy as np
import pytest
from sklearn import metrics as sk

from data.errors import UserError
from experiments.serving import drift
from experiments.serving import monitor


def test_window_figures_equal_scikit_learns_over_the_last_n():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 10, 700)
  predicted = np.where(rng.random(700) < 0.7, labels, rng.integers(0, 10, 700))
  predicted[predicted == 9] = 8  # class 9 never predicted: its precision is 0/0
  window = monitor.Window(10, size=500)
  for t, p in zip(labels, predicted):
    window.add(int(t), int(p))
  report = window.report([str(k) for k in range(10)])
  t, p = labels[-500:], predicted[-500:]  # the window: the last 500
  precision, recall, f1, support = sk.precision_recall_fscore_support(
      t, p, labels=range(10), zero_division=0)
  assert report["labelled"] == 500
  assert report["accuracy"] == pytest.approx(sk.accuracy_score(t, p), abs=1e-12)
  assert report["macro_f1"] == pytest.approx(f1.mean(), abs=1e-12)
  np.testing.assert_allclose([r["precision"] for r in report["per_class"]], precision, atol=1e-12)
  np.testing.assert_allclose([r["recall"] for r in report["per_class"]], recall, atol=1e-12)
  np.testing.assert_allclose([r["f1"] for r in report["per_class"]], f1, atol=1e-12)
  assert [r["support"] for r in report["per_class"]] == support.tolist()
  assert report["confusion_matrix"] == sk.confusion_matrix(t, p, labels=range(10)).tolist()


def test_an_empty_window_reports_no_accuracy():
  report = monitor.Window(3).report(["a", "b", "c"])
  assert report["labelled"] == 0 and report["accuracy"] is None
  assert all(r["f1"] == 0 for r in report["per_class"])


def test_psi_is_zero_for_equal_histograms_and_matches_its_formula():
  p = np.array([0.5, 0.3, 0.2, 0.0])
  assert drift.psi(p, p * 7) == pytest.approx(0.0, abs=1e-15)  # counts or fractions alike
  q = np.array([0.2, 0.3, 0.4, 0.1])
  pf, qf = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
  assert drift.psi(p, q) == pytest.approx(np.sum((qf - pf) * np.log(qf / pf)), rel=1e-12)


def test_drift_window_flags_a_shifted_histogram_only_past_min_images():
  rng = np.random.default_rng(0)
  train = (rng.random((500, 8, 8, 1)) < 0.2).astype(np.uint8) * 255  # sparse bright ink
  window = drift.Window(drift.statistics(train), size=300)
  window.add(train[:200])
  assert window.report()["psi"] < 0.05 and not window.report()["drifted"]
  gray = rng.integers(60, 200, (drift.MIN_IMAGES - 1, 8, 8, 1)).astype(np.uint8)
  small = drift.Window(drift.statistics(train))
  small.add(gray)
  assert small.report()["psi"] > drift.THRESHOLD and not small.report()["drifted"]
  window.add(np.concatenate([gray, gray, gray, gray]))  # 396 gray images push the sparse ones out
  report = window.report()
  assert report["images"] == 300 and report["drifted"]
  assert report["pixel_mean"] == pytest.approx(float(np.mean(np.concatenate([gray] * 4)[-300:]))
                                               / 255, rel=1e-9)


def _record(i, label=1, predicted=1, model="m"):
  return {"id": f"p{i}", "label": label, "predicted": predicted, "confidence": 0.9, "time": 1.0,
          "model": model}


def test_feedback_log_reads_back_and_skips_what_it_cannot_trust(tmp_path):
  path = tmp_path / "feedback.jsonl"
  log = monitor.FeedbackLog(str(path))
  log.append([_record(0), _record(1, label=2)])
  log.append([_record(2, model="another model")])
  log.close()
  with open(path, "ab") as f:
    f.write(b'{"id": "p3", "label": 12, "predicted": 1}\n')  # no class 12
    f.write(b'{"id": "p4", "label"')  # cut by a crash
  log = monitor.FeedbackLog(str(path))
  records, skipped = log.read("m", num_classes=10)
  assert [r["id"] for r in records] == ["p0", "p1"] and skipped == 2
  log.append([_record(5)])  # starts its own line after the cut one
  log.close()
  again = monitor.FeedbackLog(str(path))
  records, skipped = again.read("m", 10)
  assert [r["id"] for r in records] == ["p0", "p1", "p5"] and skipped == 2
  again.close()


def test_one_server_per_feedback_log_and_no_symlinks(tmp_path):
  path = tmp_path / "feedback.jsonl"
  first = monitor.FeedbackLog(str(path))
  with pytest.raises(UserError, match="in use by another server"):
    monitor.FeedbackLog(str(path))
  first.close()
  victim = tmp_path / "victim"
  victim.write_text("keep\n")
  os.symlink(victim, tmp_path / "link.jsonl")
  with pytest.raises(UserError, match="cannot open the feedback log"):
    monitor.FeedbackLog(str(tmp_path / "link.jsonl"))
  assert victim.read_text() == "keep\n"


def test_a_full_disk_fails_the_append_and_keeps_every_whole_line(tmp_path):
  path = tmp_path / "feedback.jsonl"
  log = monitor.FeedbackLog(str(path))
  log.append([_record(0)])
  size = path.stat().st_size
  old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
  old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
  resource.setrlimit(resource.RLIMIT_FSIZE, (size + 40, old_limit[1]))
  try:
    with pytest.raises(OSError):
      log.append([_record(i) for i in range(1, 20)])
  finally:
    resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
    signal.signal(signal.SIGXFSZ, old_handler)
  log.close()
  log = monitor.FeedbackLog(str(path))
  records, skipped = log.read("m", 10)
  assert [r["id"] for r in records] == ["p0"] and skipped == 0  # cut back to the whole line
  log.close()
  assert json.loads(path.read_bytes().splitlines()[0])["id"] == "p0"


def test_the_serving_library_never_imports_the_training_library():
  import subprocess
  import sys

  from tests.helpers import ROOT
  code = ("import sys; import experiments.serving.routes; "
          "print(sorted(m for m in sys.modules if m.startswith(('experiments.training', 'models'))))")
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == "[]"
