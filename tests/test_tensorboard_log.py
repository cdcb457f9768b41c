"""TensorBoard event files, written by tensorboard_log.Log from given rows and read back with
TensorBoard's own EventAccumulator."""

import dataclasses
import math
import os
import resource
import signal

import pytest

from experiments.training.outputs import tensorboard_log
from models import schedules
from tests import test_loop

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator")
plugin_data = pytest.importorskip("tensorboard.plugins.hparams.plugin_data_pb2")


def _read(folder):
  events = event_accumulator.EventAccumulator(folder, size_guidance={"scalars": 0, "tensors": 0})
  events.Reload()
  return events


def _scalars(events, tag):
  """{step: value} of a scalar tag (tensorboardX writes scalars as simple_value)."""
  return {e.step: e.value for e in events.Scalars(tag)}


def _rows(epoch, k):
  return {"epoch": epoch, "train_loss": 1.0 / (epoch + k), "train_accuracy": 0.5 + 0.1 * epoch,
          "validation_loss": 1.5 / (epoch + k), "validation_accuracy": 0.4 + 0.1 * epoch,
          "test_loss": 1.2 / (epoch + k), "test_accuracy": 0.45 + 0.1 * epoch,
          "images_per_second": 1000.0 * epoch, "epoch_seconds": 1.0}


def test_every_member_has_its_curves_and_hyperparameters(tmp_path):
  members = [dataclasses.replace(test_loop.BASE, seed=s, learning_rate=lr).resolve()
             for s, lr in ((0, 0.2), (1, 0.05))]
  updates, total = 10, 30
  schedule = schedules.learning_rate_schedule("cosine", 1.0, total)
  log = tensorboard_log.Log(str(tmp_path), members, False, schedule, updates)
  for epoch in (1, 2, 3):  # member 1 diverged in epoch 3: no row
    log.epoch(epoch, [_rows(epoch, 0), _rows(epoch, 1) if epoch < 3 else None])
  log.close(finished=True)
  root = tmp_path / "tensorboard"
  assert sorted(os.listdir(root)) == ["member_0", "member_1"]
  for k, lr in enumerate((0.2, 0.05)):
    events = _read(str(root / f"member_{k}"))
    epochs = (1, 2, 3) if k == 0 else (1, 2)
    for tag in ("train/loss", "validation/accuracy", "test/loss", "images_per_second"):
      key = tag.replace("/", "_")
      assert _scalars(events, tag) == pytest.approx(
          {e: _rows(e, k)[key] for e in epochs}, rel=1e-6), tag
    # The cosine schedule at each epoch's last update t: α (1 + cos(π t / T)) / 2.
    rates = _scalars(events, "learning_rate")
    assert rates[2] == pytest.approx(lr * 0.5 * (1 + math.cos(math.pi * 19 / total)), rel=1e-5)
    assert rates[1] > rates[2]
    session = events.PluginTagToContent("hparams")
    start = plugin_data.HParamsPluginData.FromString(session["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["learning_rate"].number_value == pytest.approx(lr)
    assert hparams["seed"].number_value == k and hparams["optimizer"].string_value == "momentum"
    assert hparams["hidden_sizes"].string_value == "16"
    end = plugin_data.HParamsPluginData.FromString(session["_hparams_/session_end_info"])
    assert end.session_end_info.status == 1  # STATUS_SUCCESS


def test_one_model_writes_one_folder_and_a_run_can_turn_it_off(tmp_path):
  config = test_loop.BASE.resolve()
  log = tensorboard_log.Log(str(tmp_path / "on"), [config], False,
                            schedules.learning_rate_schedule("constant", 1.0, 10), 5)
  log.epoch(1, [_rows(1, 0)])
  log.close(finished=False)
  assert set(_read(str(tmp_path / "on" / "tensorboard")).Tags()["scalars"]) >= {
      "train/loss", "validation/loss", "test/accuracy", "learning_rate"}
  test_loop.fit([dataclasses.replace(test_loop.BASE, tensorboard=False, num_epochs=1)],
                  str(tmp_path / "off"))
  assert not (tmp_path / "off" / "tensorboard").exists()


def test_a_full_disk_names_the_event_file_and_leaves_it_ending_with_the_last_whole_epoch(
    tmp_path):
  log = tensorboard_log.Log(str(tmp_path), [test_loop.BASE.resolve()], False,
                            schedules.learning_rate_schedule("constant", 1.0, 10), 5)
  log.epoch(1, [_rows(1, 0)])
  (path,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
  size = path.stat().st_size
  old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
  old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
  resource.setrlimit(resource.RLIMIT_FSIZE, (size + 60, old_limit[1]))  # room for ~1 record of 8
  try:
    with pytest.raises(OSError) as error:
      log.epoch(2, [_rows(2, 0)])
  finally:
    resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
    signal.signal(signal.SIGXFSZ, old_handler)
  assert error.value.filename == str(path)
  assert path.stat().st_size == size  # cut back: no partial record
  log.epoch(3, [_rows(3, 0)])  # room again: appends after epoch 1
  log.close(finished=False)
  assert _scalars(_read(str(tmp_path / "tensorboard")), "train/loss") == pytest.approx(
      {1: _rows(1, 0)["train_loss"], 3: _rows(3, 0)["train_loss"]})
