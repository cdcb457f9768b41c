"""A run resolved once: the update plan, the split sizes, what members must share."""

import dataclasses

import pytest

from data.errors import UserError
from experiments.training.loop import run as run_lib
from experiments.training.settings.config import TrainConfig

MLP = TrainConfig(model="mlp", hidden_sizes=(16,), validation_size=100, progress=False)


@pytest.mark.parametrize("num_batches,expected", [(429, 39), (10, 1), (7, 1), (100, 10), (97, 1)])
def test_a_block_divides_the_epoch(num_batches, expected):
  block = run_lib.block_size(num_batches)
  assert block == expected and num_batches % block == 0


@pytest.mark.parametrize("mode,batch_size,updates", [
    ("minibatch", 128, 7), ("stochastic", 1, 900), ("full_batch", 900, 1)])
def test_examples_per_update_follow_the_gd_mode(mode, batch_size, updates):
  plan = run_lib.plan_updates(dataclasses.replace(MLP, gd_mode=mode, num_epochs=3).resolve(), 900)
  assert (plan.batch_size, plan.updates_per_epoch) == (batch_size, updates)
  assert plan.total_steps == 3 * updates


def test_folds_train_every_model_on_the_same_number_of_examples():
  config = dataclasses.replace(MLP, folds=7).resolve()
  assert run_lib.num_train_examples(config, 103) == 103 - 14
  assert run_lib.num_train_examples(MLP.resolve(), 1000) == 900
  assert run_lib.num_train_examples(dataclasses.replace(MLP, train_size=300).resolve(), 1000) == 300
  with pytest.raises(UserError, match="^--train_size takes a subset after a holdout split"):
    dataclasses.replace(MLP, folds=7, train_size=300).resolve()


@pytest.mark.parametrize("change,examples,message", [
    ({"folds": 20}, 10, "folds must be at most the 10 training examples, got 20"),
    ({"validation_size": 100}, 100, "validation_size must be less than the 100 training examples"),
    ({"train_size": 901}, 1000, "train_size must be at most the 900 training examples left after "
                                "the validation split, got 901"),
    ({"batch_size": 1000}, 1000, "batch_size 1000 exceeds the 900 examples each model trains on"),
    ({"schedule": "warmup_cosine", "warmup_epochs": 10.0}, 1000,
     "warmup must last between 1 and 69 updates, got 70"),
])
def test_splits_and_batches_that_do_not_fit_the_data_are_refused(change, examples, message):
  config = dataclasses.replace(MLP, **change)
  with pytest.raises(UserError, match=message):
    run_lib.make_run([config.resolve()], (8, 8, 1), 10, examples)


def test_members_may_differ_only_in_member_settings():
  members = [dataclasses.replace(MLP, seed=s, data_seed=0, learning_rate=lr, l2=l2, dropout=p)
             for s, lr, l2, p in ((0, 0.1, 0.0, 0.0), (1, 0.01, 1e-4, 0.0))]
  run = run_lib.make_run([m.resolve() for m in members], (8, 8, 1), 10, 1000)
  assert run.size == 2 and run.terms == run_lib.Terms(dropout=False, l1=False, l2=True,
                                                       weight_decay=False)
  with pytest.raises(UserError, match="models trained together must share hidden_sizes: "
                                        r"\(16,\) and \(32,\)"):
    run_lib.make_run([MLP.resolve(), dataclasses.replace(MLP, hidden_sizes=(32,)).resolve()],
                     (8, 8, 1), 10, 1000)
  with pytest.raises(UserError, match="must share data_seed"):  # each seed splits otherwise
    run_lib.make_run([MLP.resolve(), dataclasses.replace(MLP, seed=1).resolve()], (8, 8, 1), 10,
                     1000)
