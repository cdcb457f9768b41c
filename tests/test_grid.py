"""A sweep's grid: groups and members, the settings each applies to, one-line errors; tables."""

import numpy as np
import pytest

from data.errors import UserError
from experiments.training.outputs import tables
from experiments.training.settings import grid as grid_lib
from experiments.training.settings.config import TrainConfig

BASE = TrainConfig(model="mlp", hidden_sizes=(16,), num_epochs=1, validation_size=1000,
                   progress=False)


def test_group_settings_make_groups_and_member_settings_make_members():
  groups = grid_lib.expand(BASE, {
      "optimizer": ["sgd", "momentum"], "learning_rate_multiplier": [1.0, 3.0],
      "seed": [0, 1], "momentum": [0.5, 0.9], "l2": [0.0, 1e-4]})
  sgd, momentum = groups
  assert {m.optimizer for m in sgd} == {"sgd"} and len(sgd) == 2 * 2 * 2  # α x seeds x l2
  assert {m.learning_rate for m in sgd} == {0.5, 1.5}  # the table's 0.5 x multipliers
  assert {m.momentum for m in sgd} == {None}  # sgd takes no momentum
  assert len(momentum) == 2 * 2 * 2 * 2
  assert {m.learning_rate for m in momentum} == {0.05, 0.15}
  assert {m.momentum for m in momentum} == {0.5, 0.9}
  assert {m.data_seed for g in groups for m in g} == {0}  # one split for every model
  assert all(m == m.resolve() for g in groups for m in g)


def test_architecture_grids_apply_to_the_models_that_have_the_setting():
  groups = grid_lib.expand(BASE, {"model": ["mlp", "cnn_small"], "hidden_sizes": [(64,), ()],
                                  "batch_norm": [False, True]})
  shapes = [(g[0].model, g[0].hidden_sizes, g[0].batch_norm) for g in groups]
  assert shapes == [("mlp", (64,), False), ("mlp", (64,), True), ("mlp", (), False),
                    ("mlp", (), True), ("cnn_small", None, False), ("cnn_small", None, True)]


def test_folds_give_every_configuration_k_members():
  groups = grid_lib.expand(TrainConfig(model="mlp", folds=3), {"l2": [0.0, 1e-4]})
  (members,) = groups
  assert [(m.l2, m.fold) for m in members] == [(0.0, 0), (0.0, 1), (0.0, 2),
                                               (1e-4, 0), (1e-4, 1), (1e-4, 2)]


@pytest.mark.parametrize(
    "base,grid,message",
    [
        (BASE, {"optimizer": []}, "empty grid: the optimizer grid needs at least one value"),
        (BASE, {"seed": [0, 0]}, r"the seed grid repeats a value: \[0, 0\]"),
        (BASE, {"optimizer": ["lbfgs"]}, "unknown optimizer 'lbfgs'; choose one of sgd, "),
        (BASE, {"learning_rate": [0.1, -1.0]}, r"learning_rate must be a finite number in \(0, inf\), got -1.0"),
        (BASE, {"learning_rate": [0.1], "learning_rate_multiplier": [1.0]}, "not both"),
        (BASE, {"optimizer": ["sgd", "adam"], "momentum": [0.9]},
         "the momentum grid applies to none of adam, sgd: none has momentum"),
        (TrainConfig(model="cnn"), {"hidden_sizes": [(64,)]},
         "the hidden_sizes grid applies to none of cnn: none has hidden_sizes"),
        (BASE, {"optimizer": ["momentum"], "momentum": [1.5]}, r"momentum must be a finite number in \[0, 1\)"),
        (BASE, {"dropout": [0.5, 1.0]}, r"dropout must be a finite number in \[0, 1\)"),
        (BASE, {"width": [1]}, "cannot sweep 'width'; sweepable: model, "),
    ],
)
def test_bad_grids_are_refused_in_one_line(base, grid, message):
  with pytest.raises(UserError, match=message):
    grid_lib.expand(base, grid)


def _row(lr, seed, val, test, diverged=False, fold=0):
  metrics = {f"{s}_{m}": (None if diverged and m == "loss" else v)
             for s, v in (("train", val), ("validation", val), ("test", test))
             for m in ("loss", "accuracy")}
  return {"optimizer": "sgd", "learning_rate": lr, "seed": seed, "fold": fold,
          "configuration": f"sgd, α = {lr:g}", "diverged": diverged, "diverged_at": None,
          "epoch": 1, **metrics}


def test_aggregate_and_select_use_validation_and_skip_diverged():
  rows = [_row(0.1, 0, 0.90, 0.99), _row(0.1, 1, 0.92, 0.99),  # best test, worse validation
          _row(0.3, 0, 0.95, 0.90), _row(0.3, 1, 0.97, 0.90),
          _row(3.0, 0, 0.99, 0.99, diverged=True), _row(3.0, 1, 0.99, 0.99)]
  columns = tables.table_columns(["learning_rate", "seed"])
  assert columns == ["learning_rate"]
  table = tables.aggregate(rows, columns)
  assert [r["learning_rate"] for r in table] == [0.1, 0.3, 3.0]
  np.testing.assert_allclose(table[1]["validation_accuracy_mean"], 0.96)
  np.testing.assert_allclose(table[1]["validation_accuracy_std"], 0.01)
  assert table[2]["diverged"] and table[2]["test_accuracy_mean"] is None
  best = tables.select(table)
  assert best["learning_rate"] == 0.3  # chosen on validation, not test
  assert "| 0.3 * | 2 | 96.00 ± 1.00 |" in tables.markdown_table(table, best, columns)
  single = tables.aggregate(rows[2:3], columns)  # one model: no spread to show
  assert "| 0.3 * | 1 | 95.00 | 0.9500 | 90.00 | 0.9500 |" in tables.markdown_table(
      single, single[0], columns)


def test_the_folds_table_lists_each_model_and_the_mean():
  rows = [_row(0.1, 0, v, 0.9, fold=f) for f, v in enumerate((0.90, 0.92, 0.94))]
  text = tables.folds_table(rows)
  assert "| 0 | 1 | 1 | 0.9200 | 0.9200 | 92.00 | 90.00 |" in text
  assert ("| mean ± std | | | 0.9200 ± 0.0163 | 0.9200 ± 0.0163 | 92.00 ± 1.63 | 90.00 ± 0.00 |"
          in text)
