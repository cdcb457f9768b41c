"""Sweep grids, their one-line errors, and sweeps on real MNIST."""

import functools
import json

import numpy as np
import pytest

from experiments import sweep
from experiments.config import ConfigError
from experiments.config import TrainConfig

BASE = TrainConfig(model="mlp", hidden_sizes=(16,), num_epochs=1, validation_size=1000,
                   progress=False)


def test_the_grid_is_grouped_by_optimizer_and_hyperparameters_go_to_their_takers():
  groups = sweep.make_groups(BASE, ["sgd", "momentum"], [], [1.0, 3.0], [0, 1],
                             {"momentum": [0.5, 0.9]})
  assert [g.optimizer for g in groups] == ["sgd", "momentum"]
  sgd, momentum = groups
  assert len(sgd.members) == 2 * 2  # α x seeds; sgd takes no momentum
  assert {m.learning_rate for m in sgd.members} == {0.5, 1.5}  # default 0.5 x multipliers
  assert len(momentum.members) == 2 * 2 * 2
  assert {m.hyperparameters["momentum"] for m in momentum.members} == {0.5, 0.9}
  assert {m.learning_rate for m in momentum.members} == {0.05, 0.15}


@pytest.mark.parametrize(
    "optimizers,rates,multipliers,seeds,grids,message",
    [
        ([], [0.1], [], [0], {}, "empty grid: --optimizers needs at least one value"),
        (["sgd"], [0.1], [], [], {}, "empty grid: --seeds needs at least one value"),
        (["sgd"], [], [], [0], {}, "empty grid: give --learning_rates or"),
        (["lbfgs"], [0.1], [], [0], {}, "unknown optimizer 'lbfgs'"),
        (["sgd"], [0.1, -1.0], [], [0], {}, "must be > 0, got -1.0"),
        (["sgd"], [0.1], [], [0, 0], {}, "must not repeat a value"),
        (["sgd", "adam"], [0.1], [], [0], {"momentum": [0.9]}, "none of sgd, adam"),
        (["momentum"], [0.1], [], [0], {"momentum": []}, "empty grid: --momentums"),
        (["momentum"], [0.1], [], [0], {"momentum": [1.5]}, r"momentum must be in \[0, 1\)"),
    ],
)
def test_bad_grids_are_refused_in_one_line(optimizers, rates, multipliers, seeds, grids, message):
  with pytest.raises(ConfigError, match=message):
    sweep.make_groups(BASE, optimizers, rates, multipliers, seeds, grids)


def test_aggregate_and_select_use_validation_and_skip_diverged():
  def row(lr, seed, val, test, diverged=False):
    return {"optimizer": "sgd", "learning_rate": lr, "seed": seed, "diverged": diverged,
            **{f"{s}_{m}": (None if diverged and m == "loss" else v)
               for s, v in (("train", val), ("validation", val), ("test", test))
               for m in ("loss", "accuracy")}}
  rows = [row(0.1, 0, 0.90, 0.99), row(0.1, 1, 0.92, 0.99),   # best test, worse validation
          row(0.3, 0, 0.95, 0.90), row(0.3, 1, 0.97, 0.90),
          row(3.0, 0, 0.99, 0.99, diverged=True), row(3.0, 1, 0.99, 0.99)]
  table = sweep.aggregate(rows)
  assert [r["learning_rate"] for r in table] == [0.1, 0.3, 3.0]
  np.testing.assert_allclose(table[1]["validation_accuracy_mean"], 0.96)
  np.testing.assert_allclose(table[1]["validation_accuracy_std"], 0.01)
  assert table[2]["diverged"] and table[2]["test_accuracy_mean"] is None
  best = sweep.select(table)
  assert best["learning_rate"] == 0.3  # chosen on validation, not test
  assert "| sgd * | 0.3 |" in sweep.markdown_table(table, best)


def test_a_k_that_does_not_fit_is_refused_before_compiling(mnist_data_dir, monkeypatch):
  monkeypatch.setattr(sweep, "available_bytes", lambda: 300 * 2**20)  # 300 MiB
  config = TrainConfig(model="mlp", num_epochs=1, tfds_data_dir=mnist_data_dir, progress=False)
  groups = sweep.make_groups(config, ["adam"], [1e-3], [], list(range(64)), {})
  with pytest.raises(ConfigError, match=r"64 mlp models of adam in one program need about "
                                        r".* set --models_per_program to at most \d+"):
    sweep.run_sweep(config, groups)


@pytest.fixture(scope="module")
def mnist_base(mnist_data_dir):
  return TrainConfig(model="mlp", hidden_sizes=(16,), num_epochs=1, validation_size=1000,
                     tfds_data_dir=mnist_data_dir, progress=False)


@pytest.mark.parametrize("shared_batches", [True, False])
def test_vmapped_and_sequential_sweeps_agree_on_real_mnist(mnist_base, shared_batches):
  # Stable step sizes: at 3x sgd's default, training is chaotic and amplifies float32
  # rounding differences between the programs to ~1e-3 over 460 steps.
  groups = sweep.make_groups(mnist_base, ["sgd", "adam"], [], [0.3, 1.0], [0, 1], {})
  run = functools.partial(sweep.run_sweep, mnist_base, groups, shared_batches=shared_batches)
  together, alone = run(strategy="vmapped"), run(strategy="sequential")
  assert len(together) == len(alone) == 8
  assert {r["strategy"] for r in together} == {"vmapped"}
  for a, b in zip(together, alone):
    assert sweep.configuration(a) == sweep.configuration(b) and a["seed"] == b["seed"]
    for key in ("train_loss", "validation_loss", "test_loss"):
      # float32: batched and single matmuls round differently and 460 steps grow it
      # (measured up to 2e-5 relative).
      np.testing.assert_allclose(a[key], b[key], rtol=1e-4)
  assert min(r["test_accuracy"] for r in together) > 0.7  # measured: >= 0.786 (adam at 0.3x)


def test_the_sweep_script_writes_tables_and_figures(run_module, mnist_data_dir, tmp_path):
  result = run_module(
      "scripts.sweep", "--noprogress", "--model=mlp", "--hidden_sizes=16", "--num_epochs=1",
      "--optimizers=sgd,momentum", "--learning_rate_multipliers=1,30", "--seeds=0,1",
      "--momentums=0.5,0.9", "--validation_size=1000", f"--tfds_data_dir={mnist_data_dir}",
      f"--workdir={tmp_path}", f"--compilation_cache_dir={tmp_path / 'cache'}",
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert "selected on validation: optimizer = " in result.stdout
  assert "| optimizer | α | γ | seeds | val acc % | test acc % | train loss |" in result.stdout
  assert "aggregate images/s ->" in result.stderr  # the calibration says what it chose
  saved = json.loads((tmp_path / "sweep.json").read_text())
  assert len(saved["runs"]) == 2 * 2 + 2 * 2 * 2
  assert saved["selected"]["validation_accuracy_mean"] == max(
      r["validation_accuracy_mean"] or 0 for r in saved["table"])
  assert len((tmp_path / "sweep.csv").read_text().splitlines()) == 1 + 12
  for png in ("loss_curves.png", "accuracy_vs_learning_rate.png"):
    assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--optimizers="], "error: empty grid: --optimizers needs at least one value"),
        (["--optimizers=sgd,lbfgs"], "error: unknown optimizer 'lbfgs'; choose one of sgd, momentum, adagrad, "
                                     "adadelta, rmsprop, adam"),
        (["--learning_rates=0.1,-2"], "error: learning rates and multipliers must be > 0, got -2.0"),
        (["--seeds=a"], "error: --seeds must be numbers, got a"),
    ],
)
def test_the_sweep_script_refuses_bad_grids_in_one_line(run_module, flags, message, tmp_path):
  result = run_module("scripts.sweep", *flags, f"--workdir={tmp_path}")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [message]
