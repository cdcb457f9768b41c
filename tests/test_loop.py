"""loop.fit: K members trained together equal K runs alone; folds; resume; divergence; patience.

All on a small learnable synthetic dataset (tests/helpers.py) so they run in
the fast tier; the decisions and hooks have their own tests (test_hooks.py), without training.
"""

import dataclasses
import os
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data import datasets
from data.errors import UserError
from experiments.training.loop import batches as batches_lib
from experiments.training.loop import loop as loop_lib
from experiments.training.loop import programs
from experiments.training.loop import run as run_lib
from experiments.training.objectives import classification
from experiments.training.settings.config import TrainConfig
from tests import helpers

DATA = helpers.synthetic_data()
BASE = TrainConfig(model="mlp", hidden_sizes=(16,), optimizer="momentum", learning_rate=0.2,
                   batch_size=32, num_epochs=3, validation_size=128, data_seed=0, plots=False,
                   progress=False)


def fit(members, directory=None, **kwargs):
  run = run_lib.make_run([m.resolve() for m in members], DATA.input_shape, 10, DATA.num_examples)
  return loop_lib.fit(run, DATA, directory, **kwargs)


def member(result, k):
  """Member k's kept variables; a single model's have no member axis."""
  if result.run.size == 1:
    return jax.tree.map(np.asarray, result.kept)
  return jax.tree.map(lambda a: np.asarray(a[k]), result.kept)


def test_one_model_learns_and_reports_every_epoch():
  result = fit([BASE])
  (record,) = result.records
  assert [r["epoch"] for r in record.history] == [1, 2, 3] and record.best_epoch == 3
  assert record.history[-1]["train_loss"] < 0.5 * record.history[0]["train_loss"]
  assert record.history[-1]["validation_accuracy"] > 0.9  # measured: 1.0
  assert result.test_metrics[0]["accuracy"] == pytest.approx(record.history[-1]["test_accuracy"])
  assert result.test_outputs.shape == (200, 10)  # no member axis for a single model
  assert jax.tree.leaves(result.kept)[0].ndim == jax.tree.leaves(result.state.params)[0].ndim
  assert result.timing["train_images_per_second"] > 0


# Members differ in seed, α, γ, penalties and dropout; each must equal the same model alone.
MEMBERS = [dataclasses.replace(BASE, seed=s, learning_rate=lr, momentum=m, l2=l2, dropout=p)
           for s, lr, m, l2, p in ((0, 0.2, 0.9, 0.0, 0.2), (1, 0.06, 0.5, 1e-3, 0.0),
                                   (2, 0.5, 0.0, 0.0, 0.5))]


@pytest.mark.parametrize("shared_batches", [True, False])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_members_trained_together_equal_members_trained_alone(shared_batches, batch_norm):
  members = [dataclasses.replace(m, shared_batches=shared_batches, batch_norm=batch_norm)
             for m in MEMBERS]
  together = fit(members)
  assert together.run.terms.dropout and together.run.terms.l2
  for k, config in enumerate(members):
    alone = fit([config])
    assert not alone.run.terms.l2 or config.l2  # alone, a member computes only its own terms
    # float32: vmapped matmuls may sum in another order (measured differences ~1e-7).
    helpers.assert_trees_close(member(together, k), member(alone, 0), rtol=1e-5, atol=1e-6)
    for got, want in zip(together.records[k].history, alone.records[0].history):
      np.testing.assert_allclose(got["validation_loss"], want["validation_loss"], rtol=1e-5)


def test_fold_i_of_a_cross_validation_equals_a_run_validating_on_fold_i():
  """k = 3 members trained together vs 3 runs of one; and fold i is split_indices' fold i."""
  config = dataclasses.replace(BASE, folds=3)
  together = fit([dataclasses.replace(config, fold=i) for i in range(3)])
  splits = batches_lib.splits(together.run, DATA)
  for i in range(3):
    train, validation = datasets.split_indices(DATA.num_examples, 0, folds=3, fold=i)
    np.testing.assert_array_equal(splits.train[i], train)
    np.testing.assert_array_equal(splits.validation[i], validation)
    alone = fit([dataclasses.replace(config, fold=i)])
    helpers.assert_trees_close(member(together, i), member(alone, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(together.records[i].history[-1]["validation_loss"],
                               alone.records[0].history[-1]["validation_loss"], rtol=1e-5)
  losses = [r.history[-1]["validation_loss"] for r in together.records]
  assert len(set(losses)) == 3  # each fold validates on different examples


class Interrupted(Exception):
  pass


class StopAfterEpoch(loop_lib.Hook):
  def __init__(self, epoch):
    self._epoch = epoch

  def epoch(self, loop):
    if loop.epoch == self._epoch:
      raise Interrupted


@pytest.mark.parametrize("members", [[BASE], MEMBERS[:2]])
def test_an_interrupted_run_resumes_to_the_same_bits(members, tmp_path):
  members = [dataclasses.replace(m, checkpoint_every_epoch=True, num_epochs=4) for m in members]
  whole = fit(members, str(tmp_path / "whole"))

  with pytest.raises(Interrupted):
    fit(members, str(tmp_path / "cut"), hooks=[StopAfterEpoch(2)])
  resumed = fit(members, str(tmp_path / "cut"))
  assert resumed.resumed_from == 2
  helpers.assert_trees_equal(resumed.kept, whole.kept)
  for got, want in zip(resumed.records, whole.records):
    assert _untimed(got.history) == _untimed(want.history)
  again = fit(members, str(tmp_path / "cut"))  # finished: nothing trained, same results
  assert again.already_finished and again.test_metrics == whole.test_metrics
  helpers.assert_trees_equal(again.kept, whole.kept)


def _untimed(rows):
  return [{k: v for k, v in r.items() if k not in ("images_per_second", "epoch_seconds")}
          for r in rows]


def test_a_checkpoint_of_other_settings_is_refused_in_one_line(tmp_path):
  fit([BASE], str(tmp_path))
  with pytest.raises(UserError) as raised:
    fit([dataclasses.replace(BASE, learning_rate=0.01)], str(tmp_path))
  assert str(raised.value) == (f"{tmp_path} holds a checkpoint of another run (learning_rate "
                               "0.2 there, 0.01 here); resume with its settings, or use "
                               "another --workdir")
  fit([dataclasses.replace(BASE, plots=True)], str(tmp_path))  # output settings may change


def test_a_diverging_member_is_recorded_and_the_others_train_on(tmp_path):
  members = [dataclasses.replace(BASE, seed=0, learning_rate=1e38, schedule="constant",
                                 hidden_sizes=()),
             dataclasses.replace(BASE, seed=1, learning_rate=0.05, schedule="constant",
                                 hidden_sizes=())]
  result = fit(members, str(tmp_path))
  diverged, fine = result.records
  assert diverged.diverged.startswith("epoch 1 (") and diverged.history == []
  assert diverged.best_epoch is None and result.test_metrics[0] is None
  assert fine.diverged is None and len(fine.history) == 3 and result.checkpoint_epoch == 3


def test_when_every_member_diverges_the_last_good_checkpoint_stays(tmp_path, monkeypatch):
  """A loss that turns NaN in epoch 3 (injected into the compiled steps)."""
  config = dataclasses.replace(BASE, checkpoint_every_epoch=True, num_epochs=4)
  updates = run_lib.make_run([config.resolve()], DATA.input_shape, 10, DATA.num_examples).plan
  real = programs.train_steps

  def nan_after_two_epochs(objective, state, *args, **kwargs):
    state, sums = real(objective, state, *args, **kwargs)
    nan = jnp.where(state.step > 2 * updates.updates_per_epoch, jnp.nan, 0.0)
    return state, {**sums, "loss": sums["loss"] + nan}

  monkeypatch.setattr(programs, "train_steps", nan_after_two_epochs)
  result = fit([config], str(tmp_path))
  (record,) = result.records
  assert record.diverged == "epoch 3 (train loss nan)" and [r["epoch"] for r in record.history] == [1, 2]
  assert result.checkpoint_epoch == 2
  assert result.test_metrics[0]["accuracy"] == pytest.approx(record.history[1]["test_accuracy"])


def test_a_sweeps_run_whose_every_member_diverged_is_finished_and_not_trained_again(
    tmp_path, monkeypatch):
  """Member 0 diverges in epoch 1 (α = 1e38), member 1 in epoch 3 (a NaN loss injected)."""
  members = [dataclasses.replace(BASE, seed=0, learning_rate=1e38, num_epochs=4),
             dataclasses.replace(BASE, seed=1, num_epochs=4)]
  updates = run_lib.make_run([members[1].resolve()], DATA.input_shape, 10,
                             DATA.num_examples).plan.updates_per_epoch
  real = programs.train_steps

  def nan_after_two_epochs(objective, state, *args, **kwargs):
    state, sums = real(objective, state, *args, **kwargs)
    nan = jnp.where(state.step > 2 * updates, jnp.nan, 0.0)
    return state, {**sums, "loss": sums["loss"] + nan}

  monkeypatch.setattr(programs, "train_steps", nan_after_two_epochs)
  first = fit(members, str(tmp_path), diverged_is_finished=True)
  assert first.finished and not first.all_diverged and first.checkpoint_epoch == 3
  assert [r.diverged.split(" (")[0] for r in first.records] == ["epoch 1", "epoch 3"]
  assert first.test_metrics[0] is None and first.test_metrics[1] is not None
  def not_again(*args, **kwargs):
    raise AssertionError("trained again")

  monkeypatch.setattr(programs, "train_steps", not_again)
  again = fit(members, str(tmp_path), diverged_is_finished=True)
  assert again.already_finished
  assert [r.diverged for r in again.records] == [r.diverged for r in first.records]
  assert again.test_metrics == first.test_metrics


def test_each_member_stops_early_on_its_own_validation_loss():
  """Constant α = 1 overshoots (validation loss measured 1.76, 2.65, ...), α = 0.05 does not:
  with patience 1 the first member stops after epoch 2 keeping epoch 1's model."""
  members = [dataclasses.replace(BASE, seed=s, learning_rate=lr, schedule="constant", patience=1,
                                 num_epochs=4) for s, lr in ((0, 1.0), (1, 0.05))]
  result = fit(members)
  stopped, running = result.records
  assert stopped.stopped_early and stopped.best_epoch == 1 and len(stopped.history) == 2
  assert not running.stopped_early and running.best_epoch == 4 and len(running.history) == 4
  assert result.test_metrics[0]["accuracy"] == pytest.approx(stopped.history[0]["test_accuracy"])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A run of 3 epochs with a checkpoint after each, and what it returned."""
  workdir = tmp_path_factory.mktemp("finished")
  config = dataclasses.replace(BASE, checkpoint_every_epoch=True, num_epochs=3)
  return config, workdir, fit([config], str(workdir))


@pytest.mark.parametrize("item,truncate,reason", [
    ("state", False, "its state arrays do not match their digest"),
    ("model", False, "its model arrays do not match their digest"),
    ("record", False, "unreadable record: "),  # the flipped byte breaks its UTF-8
    ("state", True, "unreadable arrays: its array data cannot be read: a file is damaged or "
                    "truncated"),
])
def test_a_damaged_checkpoint_falls_back_to_the_newest_good_one(finished, tmp_path, caplog, item,
                                                                truncate, reason):
  """A flipped byte in each part of a checkpoint, or a file a full disk cut short."""
  config, workdir, whole = finished
  cut = tmp_path / "cut"
  shutil.copytree(workdir, cut, ignore=shutil.ignore_patterns(".lock*"))
  damaged = helpers.damage(str(cut / "checkpoints" / "3" / item))
  if truncate:
    os.truncate(damaged, os.path.getsize(damaged) // 3)
  resumed = fit([config], str(cut))
  assert resumed.resumed_from == 2 and not resumed.already_finished
  warning = f"the checkpoint of epoch 3 in {cut}/checkpoints failed verification ({reason}"
  assert warning in caplog.text
  assert re.search(re.escape(warning) + r"[^\n]*\); using the checkpoint of epoch 2$", caplog.text,
                   re.MULTILINE)
  helpers.assert_trees_equal(resumed.kept, whole.kept)  # epoch 3 trained again, same bits
  assert resumed.test_metrics == whole.test_metrics


@pytest.mark.parametrize("item", ["model", "record"])
def test_with_every_checkpoint_damaged_nothing_is_changed(tmp_path, item):
  config = dataclasses.replace(BASE, checkpoint_every_epoch=True, num_epochs=2)
  fit([config], str(tmp_path))
  for epoch in ("1", "2"):
    helpers.damage(str(tmp_path / "checkpoints" / epoch / item))
  before = helpers.snapshot(str(tmp_path))
  with pytest.raises(UserError) as raised:
    fit([config], str(tmp_path))
  assert str(raised.value).startswith(f"no usable checkpoint in {tmp_path}/checkpoints: epoch 2: ")
  assert "\n" not in str(raised.value)
  assert helpers.snapshot(str(tmp_path)) == before


@pytest.mark.parametrize("loss,expected", [
    (2.0, None), (6.9, None), (7.0, "train loss 7 > 3 ln 10 = 6.91"),
    (float("nan"), "train loss nan"), (float("inf"), "train loss inf")])
def test_a_model_diverges_when_its_loss_is_not_finite_or_far_worse_than_guessing(loss, expected):
  row = {"epoch": 2, "train_loss": loss, "validation_loss": 1.0}
  assert classification.CLASSIFICATION.divergence(row, num_classes=10) == expected
