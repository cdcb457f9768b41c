"""Sweeps on real MNIST: strategies agree, the script's outputs, one-line errors, kill and resume."""

import functools
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from data.errors import UserError
from experiments.training import sweep
from experiments.training.loop import memory
from experiments.training.settings.config import TrainConfig
from tests.helpers import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mnist_base(mnist_data_dir):
  return TrainConfig(model="mlp", hidden_sizes=(16,), num_epochs=1, validation_size=1000,
                     tfds_data_dir=mnist_data_dir, progress=False, plots=False)


def _losses(results):
  return [[m.record.history[-1][f"{s}_loss"] for s in ("train", "validation", "test")]
          for m in results]


@pytest.mark.parametrize("shared_batches", [True, False])
def test_vmapped_and_sequential_sweeps_agree_on_real_mnist(mnist_base, shared_batches, tmp_path):
  # Stable step sizes: at 3x sgd's default, training is chaotic and amplifies float32
  # rounding differences between the programs to ~1e-3 over 460 steps.
  base = TrainConfig(**{**mnist_base.__dict__, "shared_batches": shared_batches})
  grid = {"optimizer": ["sgd", "adam"], "learning_rate_multiplier": [0.3, 1.0], "seed": [0, 1]}
  run = functools.partial(sweep.run_sweep, base, grid)
  together = run(str(tmp_path / "v"), strategy="vmapped")
  alone = run(str(tmp_path / "s"), strategy="sequential")
  assert len(together) == len(alone) == 8
  assert {m.strategy for m in together} == {"vmapped"}
  assert {m.strategy for m in alone} == {"sequential"}
  assert [m.config for m in together] == [m.config for m in alone]
  # float32: batched and single matmuls round differently and 460 steps grow it
  # (measured up to 2e-5 relative).
  np.testing.assert_allclose(_losses(together), _losses(alone), rtol=1e-4)
  accuracy = [m.record.history[-1]["test_accuracy"] for m in together]
  assert min(accuracy) > 0.7  # measured: >= 0.786 (adam at 0.3x)


def test_a_group_that_does_not_fit_in_memory_is_refused_before_compiling(
    mnist_base, monkeypatch, tmp_path):
  monkeypatch.setattr(memory, "available_bytes", lambda: 300 * 2**20)  # 300 MiB
  base = TrainConfig(**{**mnist_base.__dict__, "hidden_sizes": (512, 512)})
  with pytest.raises(UserError, match=r"64 mlp models of adam in one program need about "
                                        r".* set --models_per_program to at most \d+"):
    sweep.run_sweep(base, {"seed": list(range(64))}, str(tmp_path))
  assert not os.path.exists(tmp_path / "runs")


def test_the_sweep_script_writes_tables_and_figures(run_module, mnist_data_dir, tmp_path):
  result = run_module(
      "scripts.sweep", "--noprogress", "--model=mlp", "--hidden_sizes=16", "--num_epochs=1",
      "--optimizers=sgd,momentum", "--learning_rate_multipliers=1,30", "--seeds=0,1",
      "--momentums=0.5,0.9", "--l2s=0,1e-4", "--validation_size=1000",
      f"--tfds_data_dir={mnist_data_dir}", f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "selected on validation: " in result.stdout
  assert "| optimizer | α | γ | l2 | models | val acc % | val loss | test acc % | train loss |" \
      in result.stdout
  assert "aggregate images/s ->" in result.stderr  # the calibration says what it chose
  saved = json.loads((tmp_path / "sweep.json").read_text())
  assert len(saved["runs"]) == 2 * 2 * 2 + 2 * 2 * 2 * 2
  assert saved["swept"] == ["optimizer", "learning_rate", "momentum", "l2", "seed"]
  assert saved["selected"]["validation_accuracy_mean"] == max(
      r["validation_accuracy_mean"] or 0 for r in saved["table"])
  csv_lines = (tmp_path / "sweep.csv").read_text().splitlines()
  assert len(csv_lines) == 1 + 24 and "l2" in csv_lines[0].split(",")
  for png in ("loss_curves.png", "validation_accuracy.png"):
    assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  # Predicting with the sweep's workdir uses the selected configuration's first model.
  chosen = next(r for r in saved["runs"] if r["configuration"] == saved["selected"]["configuration"])
  digit = tmp_path / "digit.png"
  Image.fromarray(np.full((28, 28), 255, np.uint8)).save(digit)
  direct = run_module("scripts.predict", f"--workdir={tmp_path / chosen['run']}",
                      f"--member={chosen['member']}", str(digit))
  via_sweep = run_module("scripts.predict", f"--workdir={tmp_path}", str(digit))
  assert via_sweep.returncode == 0, via_sweep.stderr[-2000:]
  assert via_sweep.stdout == direct.stdout
  assert (f"is a sweep: using its selected configuration ({chosen['configuration']}), model "
          f"{chosen['member']} of {chosen['run']}") in via_sweep.stderr


def test_a_cross_validated_sweep_selects_on_the_mean_over_folds(run_module, mnist_data_dir,
                                                                tmp_path):
  result = run_module(
      "scripts.sweep", "--noprogress", "--model=mlp", "--hidden_sizes_grid=8;32",
      "--num_epochs=1", "--folds=3", "--strategy=vmapped", f"--tfds_data_dir={mnist_data_dir}",
      f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr[-3000:]
  saved = json.loads((tmp_path / "sweep.json").read_text())
  assert len(saved["runs"]) == 2 * 3 and {r["fold"] for r in saved["runs"]} == {0, 1, 2}
  wide = [r for r in saved["runs"] if r["hidden_sizes"] == [32]]
  assert saved["selected"]["hidden_sizes"] == [32]  # measured: 32 units beat 8 on every fold
  np.testing.assert_allclose(saved["selected"]["validation_accuracy_mean"],
                             np.mean([r["validation_accuracy"] for r in wide]))
  assert "folds of the selected configuration (hidden 32):" in result.stdout
  assert (tmp_path / "cross_validation.png").exists()


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--optimizers="], "error: empty grid: the optimizer grid needs at least one value"),
        (["--optimizers=sgd,lbfgs"], "error: unknown optimizer 'lbfgs'; choose one of sgd, "
                                     "momentum, adagrad, adadelta, rmsprop, adam"),
        (["--learning_rates=0.1,-2"], "error: learning_rate must be a finite number in (0, inf), "
                                      "got -2.0"),
        (["--seeds=a"], "error: --seeds must be integers, got a"),
        (["--model=cnn", "--hidden_sizes_grid=64;128"],
         "error: the hidden_sizes grid applies to none of cnn: none has hidden_sizes"),
        (["--folds=1"], "error: folds must be 0 (a holdout split) or an integer in "
                        "[2, 2147483647], got 1"),
    ],
)
def test_the_sweep_script_refuses_bad_grids_in_one_line(run_module, flags, message, tmp_path):
  result = run_module("scripts.sweep", *flags, f"--workdir={tmp_path}")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [message]
  assert not os.listdir(tmp_path)


def _sweep_flags(data_dir, workdir):
  return ["--noprogress", "--noplots", "--model=mlp", "--hidden_sizes=16", "--num_epochs=3",
          "--optimizers=sgd,adam", "--seeds=0,1", "--l2s=0,1e-4", "--strategy=vmapped",
          "--models_per_program=2", "--checkpoint_every_epoch", "--validation_size=1000",
          f"--tfds_data_dir={data_dir}", f"--workdir={workdir}"]


def _numbers(workdir):
  runs = json.loads((workdir / "sweep.json").read_text())["runs"]
  return [{k: v for k, v in r.items() if k not in ("history",)}
          | {"history": [{k: v for k, v in h.items() if k not in ("images_per_second",
                                                                    "epoch_seconds")}
                         for h in r["history"]]} for r in runs]


def test_a_killed_sweep_rerun_continues_to_the_same_results(run_module, mnist_data_dir, tmp_path):
  """SIGKILL once the second run of the first group has a checkpoint; the rerun skips the
  finished run, resumes the interrupted one, and sweep.json equals an uninterrupted sweep's."""
  whole = tmp_path / "whole"
  result = run_module("scripts.sweep", *_sweep_flags(mnist_data_dir, whole))
  assert result.returncode == 0, result.stderr[-3000:]

  killed = tmp_path / "killed"
  process = subprocess.Popen([sys.executable, "-m", "scripts.sweep",
                              *_sweep_flags(mnist_data_dir, killed)], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  target = killed / "runs" / "00-001" / "checkpoints"
  deadline = time.monotonic() + 300
  while process.poll() is None and time.monotonic() < deadline:
    if target.exists() and any(n.isdigit() for n in os.listdir(target)):
      process.send_signal(signal.SIGKILL)
      break
    time.sleep(0.005)
  assert process.wait() == -signal.SIGKILL
  assert not (killed / "sweep.json").exists()
  result = run_module("scripts.sweep", *_sweep_flags(mnist_data_dir, killed))
  assert result.returncode == 0, result.stderr[-3000:]
  assert "this run is already complete (the checkpoint of epoch 3 in" in result.stderr
  assert "resuming from the checkpoint of epoch" in result.stderr
  assert _numbers(killed) == _numbers(whole)


def test_a_rerun_keeps_the_strategy_auto_chose_instead_of_timing_again(run_module, mnist_data_dir,
                                                                        tmp_path):
  """Calibration times the machine as loaded now; a rerun (after a kill) must not choose again,
  or its numbers could differ in the last digits from the first attempt's (plan.json)."""
  flags = ["--noprogress", "--noplots", "--model=mlp", "--hidden_sizes=16", "--num_epochs=1",
           "--seeds=0,1", "--strategy=auto", "--validation_size=1000",
           f"--tfds_data_dir={mnist_data_dir}", f"--workdir={tmp_path}"]
  first = run_module("scripts.sweep", *flags)
  assert first.returncode == 0, first.stderr[-3000:]
  assert "group 0: vmapped " in first.stderr  # timed: "vmapped N vs sequential M ... -> choice"
  chosen = json.loads((tmp_path / "plan.json").read_text())["0"]
  assert chosen in ("vmapped", "sequential")
  other = "sequential" if chosen == "vmapped" else "vmapped"
  # As if killed after calibrating and before any checkpoint, the other strategy recorded.
  (tmp_path / "plan.json").write_text(json.dumps({"0": other}))
  for name in ("runs", "sweep.json"):
    subprocess.run(["rm", "-r", str(tmp_path / name)], check=True)
  rerun = run_module("scripts.sweep", *flags)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert "group 0: vmapped " not in rerun.stderr
  assert f"({other}, " in rerun.stderr
  assert {r["strategy"] for r in json.loads((tmp_path / "sweep.json").read_text())["runs"]} == {
      other}
