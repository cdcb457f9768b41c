"""Checkpoints on real MNIST: resume after SIGKILL bit for bit, early stopping."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from experiments.training import train
from experiments.training.settings.config import TrainConfig
from experiments.training.storage import checkpoints
from tests.helpers import ROOT

pytestmark = pytest.mark.slow


def _flags(data_dir, workdir, *extra):
  return ["--model=mlp", "--hidden_sizes=64", "--num_epochs=6", "--validation_size=1000",
          "--batch_size=64", "--dropout=0.2", "--checkpoint_every_epoch", "--noplots",
          "--noprogress", f"--tfds_data_dir={data_dir}", f"--workdir={workdir}", *extra]


def _saved(workdir):
  model, record = checkpoints.Checkpoints(str(workdir)).restore_model()
  return jax.tree.map(np.asarray, model), record


def _untimed(rows):
  return [{k: v for k, v in r.items() if k not in ("images_per_second", "epoch_seconds")}
          for r in rows]


def _history(workdir):
  return _untimed(
      json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines())


def _kill_when(workdir, ready, data_dir):
  """Starts a run, SIGKILLs it as soon as ``ready(checkpoint dir names)`` holds."""
  process = subprocess.Popen([sys.executable, "-m", "experiments.mnist",
                              *_flags(data_dir, workdir)], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  directory = workdir / "checkpoints"
  deadline = time.monotonic() + 300
  while process.poll() is None and time.monotonic() < deadline:
    if directory.exists() and ready(os.listdir(directory)):
      process.send_signal(signal.SIGKILL)
      break
    time.sleep(0.001)
  process.wait()
  return process.returncode


def test_a_run_killed_at_any_point_resumes_to_the_same_parameters(
    mnist_data_dir, tmp_path, run_module):
  """Kill points: while a checkpoint is being written (its temporary folder exists), and
  right after the checkpoint of epoch 3 is complete. The resumed run must end with
  exactly (bitwise) the parameters, batch statistics and metrics of an uninterrupted run.
  """
  whole = tmp_path / "whole"
  result = run_module("experiments.mnist", *_flags(mnist_data_dir, whole))
  assert result.returncode == 0, result.stderr[-2000:]

  killed = tmp_path / "killed"
  mid_write = _kill_when(killed, lambda names: any("tmp" in n for n in names), mnist_data_dir)
  after_third = _kill_when(killed, lambda names: any(n.isdigit() and int(n) >= 3 for n in names),
                           mnist_data_dir)
  assert mid_write == -signal.SIGKILL and after_third == -signal.SIGKILL  # killed, not finished
  assert checkpoints.Checkpoints(str(killed)).latest_epoch() < 6
  result = run_module("experiments.mnist", *_flags(mnist_data_dir, killed))
  assert result.returncode == 0, result.stderr[-2000:]
  assert "resuming from the checkpoint of epoch" in result.stderr

  (want, want_record), (got, got_record) = _saved(whole), _saved(killed)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
    np.testing.assert_array_equal(a, b)
  assert _history(killed) == _history(whole)
  assert ([_untimed(r["history"]) for r in got_record["records"]]
          == [_untimed(r["history"]) for r in want_record["records"]])

  # Passing the default explicitly is the same run (another run's settings are refused:
  # test_faults, test_loop), and a finished one is not trained again.
  result = run_module("experiments.mnist", *_flags(mnist_data_dir, killed, "--learning_rate=1e-3"))
  assert result.returncode == 0, result.stderr[-2000:]
  assert "this run is already complete" in result.stderr
  assert json.loads((killed / "summary.json").read_text())["epochs_trained"] == 6


def _config(data_dir, **changes):
  settings = dict(model="mlp", hidden_sizes=(32,), num_epochs=4, validation_size=1000,
                  checkpoint_every_epoch=True, plots=False, progress=False,
                  tfds_data_dir=data_dir)
  return TrainConfig(**{**settings, **changes}).resolve()


def test_early_stopping_keeps_the_best_epochs_model(mnist_data_dir, tmp_path):
  """SGD warming up to α = 6 overshoots: validation loss 0.34, 0.71, ... (measured), so with
  patience 1 training stops after epoch 2 and the saved model is epoch 1's."""
  config = _config(mnist_data_dir, optimizer="sgd", learning_rate=6.0, num_epochs=3,
                   schedule="warmup_cosine", warmup_epochs=2.9, patience=1)
  summary = train.train_and_evaluate(config, str(tmp_path))
  history = _history(tmp_path)
  assert [r["epoch"] for r in history] == [1, 2]
  assert history[1]["validation_loss"] > history[0]["validation_loss"]
  assert summary["stopped_early"] and summary["epoch"] == 1 and summary["epochs_trained"] == 2
  assert summary["test_accuracy"] == history[0]["test_accuracy"]
  assert summary["test_metrics"]["accuracy"] == pytest.approx(history[0]["test_accuracy"])
  # A rerun does not train on past the stop.
  again = train.train_and_evaluate(config, str(tmp_path))
  assert again["epochs_trained"] == 2 and again["test_accuracy"] == summary["test_accuracy"]
  assert again["already_complete"]
