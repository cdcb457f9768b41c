"""TensorBoard event files of a run, read back with TensorBoard's own EventAccumulator."""

import dataclasses
import math
import os

import pytest

from tests import test_engine

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


def test_every_member_has_its_curves_and_hyperparameters(tmp_path):
  members = [dataclasses.replace(test_engine.BASE, seed=s, learning_rate=lr)
             for s, lr in ((0, 0.2), (1, 0.05))]
  result = test_engine.fit(members, str(tmp_path))
  root = tmp_path / "tensorboard"
  assert sorted(os.listdir(root)) == ["member_0", "member_1"]
  for k, lr in enumerate((0.2, 0.05)):
    events = _read(str(root / f"member_{k}"))
    history = result.records[k].history
    for tag in ("train/loss", "validation/accuracy", "test/loss", "images_per_second"):
      key = tag.replace("/", "_")
      assert _scalars(events, tag) == pytest.approx(
          {row["epoch"]: row[key] for row in history}, rel=1e-6), tag
    # The cosine schedule at each epoch's last update t: α (1 + cos(π t / T)) / 2.
    rates = _scalars(events, "learning_rate")
    updates = result.run.plan.updates_per_epoch
    total = 3 * updates
    assert rates[3] == pytest.approx(lr * 0.5 * (1 + math.cos(math.pi * (total - 1) / total)),
                                     rel=1e-5)
    assert rates[1] > rates[2] > rates[3]
    session = events.PluginTagToContent("hparams")
    start = plugin_data.HParamsPluginData.FromString(session["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["learning_rate"].number_value == pytest.approx(lr)
    assert hparams["seed"].number_value == k and hparams["optimizer"].string_value == "momentum"
    assert hparams["hidden_sizes"].string_value == "16"
    end = plugin_data.HParamsPluginData.FromString(session["_hparams_/session_end_info"])
    assert end.session_end_info.status == 1  # STATUS_SUCCESS


def test_one_model_writes_one_folder_and_can_be_turned_off(tmp_path):
  test_engine.fit([test_engine.BASE], str(tmp_path / "on"))
  assert set(_read(str(tmp_path / "on" / "tensorboard")).Tags()["scalars"]) >= {
      "train/loss", "validation/loss", "test/accuracy", "learning_rate"}
  test_engine.fit([dataclasses.replace(test_engine.BASE, tensorboard=False)], str(tmp_path / "off"))
  assert not (tmp_path / "off" / "tensorboard").exists()
