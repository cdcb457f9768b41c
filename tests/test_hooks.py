"""The training loop's decisions, checkpointing, signals and each hook on its own, with a
hand-made Loop: no training, no compiling.

The loop's run, pipeline and program are stand-ins holding what the decisions
and hooks read (the run's settings and plan, the test labels, an outputs function).
"""

import dataclasses
import json
import logging
import os
import re
import signal
import types

import jax
import numpy as np
import optax
import pytest

from data.errors import UserError
from experiments.training.loop import decisions
from experiments.training.loop import loop as loop_lib
from experiments.training.loop import record as record_lib
from experiments.training.loop import resume
from experiments.training.loop import run as run_lib
from experiments.training.loop import signals as signals_lib
from experiments.training.loop import state as state_lib
from experiments.training.objectives import classification
from experiments.training.outputs import output_hooks
from experiments.training.settings import config as config_lib
from experiments.training.settings.config import TrainConfig
from experiments.training.storage import checkpoints as checkpoints_lib
from models import networks
from tests import helpers

CONFIG = TrainConfig(model="mlp", hidden_sizes=(4,), num_epochs=3).resolve()
TEST_LABELS = np.array([0, 1, 1, 0], np.int32)


def _loop(size=1, patience=0, num_epochs=3, variables=None, outputs=None, **config):
  configs = [TrainConfig(model="mlp", hidden_sizes=(4,), seed=k, num_epochs=num_epochs,
                         patience=patience, **config).resolve() for k in range(size)]
  plan = run_lib.UpdatePlan(batch_size=8, updates_per_epoch=5, total_steps=5 * num_epochs,
                            block_size=1, schedule=optax.constant_schedule(1.0))
  run = types.SimpleNamespace(members=configs, config=configs[0], size=size, num_classes=2,
                              plan=plan, input_shape=(2, 2, 1),
                              objective=classification.CLASSIFICATION)
  data = types.SimpleNamespace(test_labels=TEST_LABELS, class_names=("a", "b"))
  # Logits favouring class 0 for every test example: accuracy 0.5.
  outputs = outputs or (lambda variables, split: np.tile([[2.0, 0.0]], (size, 4, 1))[
      0 if size == 1 else slice(None)])
  variables = variables or {"params": {"w": np.zeros((size, 3) if size > 1 else (3,))}}
  return loop_lib.Loop(
      run=run, pipeline=types.SimpleNamespace(data=data, pixel_scaling=[(0.0, 1.0)] * size,
                                              layout=types.SimpleNamespace(devices=1,
                                                                           processes=1)),
      program=types.SimpleNamespace(outputs=outputs, compile_seconds=1.5),
      state=types.SimpleNamespace(variables=variables, params=variables["params"]),
      kept=jax.tree.map(np.copy, variables), records=[record_lib.MemberRecord()
                                                      for _ in range(size)])


def _row(epoch, loss, validation_loss=None):
  row = {"epoch": epoch, "train_loss": loss, "train_accuracy": 0.5, "test_loss": 0.7,
         "test_accuracy": 0.5, "epoch_seconds": 2.0, "images_per_second": 20.0}
  if validation_loss is not None:
    row.update(validation_loss=validation_loss, validation_accuracy=0.5)
  return row


def _epoch(loop, rows, weights):
  """The loop after an epoch whose training left ``weights`` (member k's in row k)."""
  loop.epoch = rows[0]["epoch"]
  loop.rows = rows
  loop.state.variables = {"params": {"w": np.asarray(weights, np.float32)}}
  decisions.decide(loop)


def test_the_decisions_keep_each_members_last_good_model_and_skip_a_diverged_one():
  loop = _loop(size=2)
  _epoch(loop, [_row(1, 0.6), _row(1, 0.6)], [[1, 1, 1], [2, 2, 2]])
  _epoch(loop, [_row(2, float("nan")), _row(2, 0.5)], [[9, 9, 9], [3, 3, 3]])
  assert loop.records[0].diverged == "epoch 2 (train loss nan)"
  assert loop.new_rows[0] is None and loop.new_rows[1]["epoch"] == 2
  np.testing.assert_array_equal(loop.kept["params"]["w"], [[1, 1, 1], [3, 3, 3]])
  assert not loop.finished and not loop.all_diverged
  _epoch(loop, [_row(3, float("nan")), _row(3, 0.4)], [[9, 9, 9], [4, 4, 4]])
  assert loop.finished  # the last epoch: the kept models are tested
  assert loop.test_metrics[0] is not None and loop.test_metrics[1]["accuracy"] == 0.5


def test_the_run_ends_without_keeping_when_every_member_still_training_diverged():
  loop = _loop(size=1)
  _epoch(loop, [_row(1, 0.6)], [1, 1, 1])
  _epoch(loop, [_row(2, float("inf"))], [9, 9, 9])
  assert loop.all_diverged and not loop.finished
  np.testing.assert_array_equal(loop.kept["params"]["w"], [1, 1, 1])
  decisions.evaluate_test(loop)  # the test split still evaluates the kept model
  assert loop.test_metrics[0]["accuracy"] == 0.5


def test_a_sweeps_run_whose_every_member_diverged_is_finished_and_tested():
  loop = _loop(size=2)
  _epoch(loop, [_row(1, 0.6), _row(1, 0.6)], [[1, 1, 1], [2, 2, 2]])
  loop.epoch, loop.rows = 2, [_row(2, float("nan")), _row(2, float("nan"))]
  decisions.decide(loop, diverged_is_finished=True)
  assert loop.finished and not loop.all_diverged
  assert [m["accuracy"] for m in loop.test_metrics] == [0.5, 0.5]


def test_with_patience_a_single_model_keeps_its_best_epoch_and_stops_early():
  loop = _loop(size=1, patience=1, num_epochs=5)
  _epoch(loop, [_row(1, 0.6, validation_loss=0.5)], [1, 1, 1])
  kept = loop.kept["params"]["w"]
  loop.state.variables["params"]["w"][:] = 7  # the next block reuses the state's buffers
  np.testing.assert_array_equal(kept, [1, 1, 1])  # the kept model is a copy
  _epoch(loop, [_row(2, 0.5, validation_loss=0.8)], [2, 2, 2])
  assert loop.records[0].stopped_early and loop.records[0].best_epoch == 1
  assert loop.finished
  np.testing.assert_array_equal(loop.kept["params"]["w"], [1, 1, 1])


def test_a_checkpoint_is_ranked_by_the_mean_validation_loss_of_the_good_members():
  rows = [_row(1, 0.6, validation_loss=0.2), _row(1, 0.6, validation_loss=0.4)]
  records = [record_lib.MemberRecord(), record_lib.MemberRecord()]
  assert decisions.ranking_loss(rows, records) == pytest.approx(0.3)
  records[1].diverged = "epoch 1 (train loss nan)"
  assert decisions.ranking_loss(rows, records) == pytest.approx(0.2)
  assert decisions.ranking_loss([_row(1, 0.6)], records[:1]) == pytest.approx(0.6)


def _real_loop(size, **config):
  """A loop whose state is a real TrainState of a tiny MLP (Orbax saves real arrays)."""
  model = networks.create_model("mlp", 2, hidden_sizes=(4,))
  state = helpers.one_state(model, optax.sgd(0.1), input_shape=(2, 2, 1))
  if size > 1:
    state = state_lib.stack([state] * size)
  loop = _loop(size=size, checkpoint_every_epoch=True, **config)
  loop.state, loop.kept = state, state.variables
  return loop


@pytest.mark.parametrize("size", [1, 2])
def test_a_saved_epoch_is_resumed_by_a_new_loop(tmp_path, size):
  loop = _real_loop(size)
  loop.epoch, loop.rows = 1, [_row(1, 0.6)] * size
  decisions.decide(loop)
  saving = checkpoints_lib.Checkpoints(str(tmp_path))
  resume.save(loop, saving)
  assert saving.latest_epoch() == 1
  fresh = _real_loop(size)
  assert resume.resume(fresh, checkpoints_lib.Checkpoints(str(tmp_path)), str(tmp_path)) is None
  assert fresh.resumed_from == fresh.epoch == 1 and not fresh.finished
  assert [r.history for r in fresh.records] == [r.history for r in loop.records]
  helpers.assert_trees_equal(fresh.state.params, loop.state.params)
  helpers.assert_trees_equal(fresh.kept, loop.kept)
  # On disk every checkpoint has a member axis, a single model's of size 1.
  model, record = checkpoints_lib.Checkpoints(str(tmp_path), read_only=True).restore_model()
  assert jax.tree.leaves(model)[0].shape[0] == size and len(record["members"]) == size


def test_saving_writes_nothing_on_an_all_diverged_epoch_or_between_epochs_by_default(tmp_path):
  loop = _real_loop(1)
  loop.run.config = loop.run.members[0] = dataclasses.replace(loop.run.config,
                                                              checkpoint_every_epoch=False)
  loop.epoch, loop.rows = 1, [_row(1, 0.6)]
  resume.save(loop, checkpoints_lib.Checkpoints(str(tmp_path)))
  loop.all_diverged = loop.finished = True
  resume.save(loop, checkpoints_lib.Checkpoints(str(tmp_path)))
  assert not (tmp_path / "checkpoints").exists()


def test_a_checkpoint_of_another_run_is_refused_before_anything_changes(tmp_path):
  loop = _real_loop(1)
  loop.epoch, loop.rows = 1, [_row(1, 0.6)]
  resume.save(loop, checkpoints_lib.Checkpoints(str(tmp_path)))
  other = _real_loop(1)
  other.run.members = [dataclasses.replace(other.run.config, learning_rate=0.5)]
  before = helpers.snapshot(str(tmp_path))
  with pytest.raises(UserError, match=r"holds a checkpoint of another run "
                                                 r"\(learning_rate 0.001 there, 0.5 here\)"):
    resume.resume(other, checkpoints_lib.Checkpoints(str(tmp_path)), str(tmp_path))
  assert helpers.snapshot(str(tmp_path)) == before


def test_the_metrics_file_has_a_line_per_member_and_epoch_and_skips_a_stopped_epoch(tmp_path):
  path = tmp_path / "metrics.jsonl"
  loop = _loop(size=2)
  _epoch(loop, [_row(1, 0.6), _row(1, 0.5)], [[1, 1, 1], [2, 2, 2]])
  output_hooks.MetricsFile(str(path), "fold").epoch(loop)
  lines = [json.loads(line) for line in path.read_text().splitlines()]
  assert [(r["fold"], r["epoch"], r["train_loss"]) for r in lines] == [(0, 1, 0.6), (1, 1, 0.5)]
  one = _loop(size=1)
  _epoch(one, [_row(1, 0.6)], [1, 1, 1])
  output_hooks.MetricsFile(str(path), "fold").epoch(one)
  assert "fold" not in json.loads(path.read_text())  # a single model's lines have no label
  _epoch(one, [_row(2, float("nan"))], [9, 9, 9])
  output_hooks.MetricsFile(str(path), "fold").epoch(one)
  assert len(path.read_text().splitlines()) == 1


def test_the_config_file_is_the_resolved_config(tmp_path):
  output_hooks.ConfigFile(str(tmp_path / "config.json"), CONFIG).start(_loop())
  saved = json.loads((tmp_path / "config.json").read_text())
  assert config_lib.from_json(saved) == CONFIG


class _Bar:
  def __init__(self):
    self.n = 0

  def update(self, n):
    self.n += n


def test_progress_moves_a_shared_bar_by_every_members_updates_resumed_ones_included():
  loop = _loop(size=2)
  loop.epoch = 2  # resumed after epoch 2 of 3: 2 x 5 updates of 2 members already done
  bar = _Bar()
  progress = output_hooks.Progress(bar)
  progress.start(loop)
  assert bar.n == 20
  for _ in range(5):
    progress.block(loop, 1)
  assert bar.n == 30  # the total of 3 epochs x 5 updates x 2 members


def test_the_clock_times_the_first_step_the_epochs_and_the_speed(monkeypatch):
  """Two epochs of 2 s each, the first block done 3 s after the start; compiling (0.5 s
  during epoch 1) is left out of the epoch's time."""
  loop = _loop(size=2)
  now = iter([10.0, 13.0, 12.5, 20.0, 22.0])  # the clock's reads, in order
  monkeypatch.setattr(loop_lib.time, "perf_counter", lambda: next(now))
  clock = loop_lib._Clock(started_at=10.0)
  clock.start_epoch(loop.program)  # reads 10.0
  clock.block(1)  # 13.0: the first step, 3 s after the start
  loop.program.compile_seconds = 2.0  # 0.5 s compiling during the epoch
  assert clock.end_epoch(loop.program) == 2.0  # 12.5 - 10.0 - 0.5
  loop.program.compile_seconds = 1.5
  clock.start_epoch(loop.program)  # 20.0
  assert clock.end_epoch(loop.program) == 2.0  # 22.0
  t = clock.timing(loop)
  assert t["train_seconds"] == 4.0 and t["steps_in_first_block"] == 1
  assert t["train_images_per_second"] == 2 * 5 * 8 * 2 / 4.0  # epochs x updates x B x K / s
  assert t["seconds_to_first_step"] == 3.0 and t["num_params"] == 3


def test_the_console_logs_one_line_per_epoch(caplog):
  caplog.set_level(logging.INFO)
  one = _loop(size=1)
  one.epoch, one.rows = 1, [_row(1, 0.25, validation_loss=0.5)]
  output_hooks.Console().epoch(one)
  assert "epoch 1: train loss 0.2500 acc 0.5000 | validation loss 0.5000 acc 0.5000 | test loss " \
         "0.7000 acc 0.5000 | 20 images/s" in caplog.text
  many = _loop(size=2)
  many.epoch, many.rows = 1, [_row(1, 0.25, validation_loss=0.5)] * 2
  many.records[1].diverged = "epoch 1 (train loss nan)"
  output_hooks.Console().epoch(many)
  assert "epoch 1: 2 models, validation accuracy 0.5000 ± 0.0000 (min 0.5000, max 0.5000), " \
         "1 diverged | 40 images/s (all models)" in caplog.text


@pytest.mark.parametrize("signum", signals_lib.SIGNALS)
def test_a_signal_is_noted_and_the_handlers_are_back_afterwards(signum):
  """Each signal is only noted (the block of steps goes on; ``fit`` checks it at each step
  boundary); the first one received is the one reported. (test_faults sends SIGTERM to a
  real run.)"""
  before = {s: signal.getsignal(s) for s in signals_lib.SIGNALS}
  with signals_lib.caught() as received:
    assert received.signum is None
    os.kill(os.getpid(), signum)  # delivered to the main thread, which runs this test
    assert received.signum == signum
    os.kill(os.getpid(), signal.SIGHUP if signum != signal.SIGHUP else signal.SIGINT)
    assert received.signum == signum
  assert {s: signal.getsignal(s) for s in signals_lib.SIGNALS} == before


def test_an_interrupted_run_ends_in_one_line_naming_the_kept_checkpoint(tmp_path):
  error = signals_lib.interrupted(signal.SIGTERM, 2, 2, str(tmp_path))
  assert str(error) == (
      f"stopped by SIGTERM after epoch 2: the checkpoint of epoch 2 in "
      f"{tmp_path / 'checkpoints'} is kept; rerun the same command to resume from it")
  assert error.exit_status == 128 + signal.SIGTERM
  error = signals_lib.interrupted(signal.SIGINT, 0, None, str(tmp_path))
  assert str(error) == "stopped by SIGINT after epoch 0: no epoch had finished, so nothing was saved"


def test_no_hook_writes_the_loop():
  """Hooks observe: no assignment to a Loop field (``loop.x = ...``) outside ``fit`` and its
  decisions, anywhere in the project."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  allowed = {os.path.join("experiments", "training", "loop", name)
             for name in ("loop.py", "decisions.py", "resume.py")}
  fields = "|".join(f.name for f in dataclasses.fields(loop_lib.Loop))
  pattern = re.compile(rf"\b(loop|result)\.({fields})\s*(=|\+=)(?!=)")
  found = []
  for folder in ("experiments", "scripts", "models", "data"):
    for directory, _, names in os.walk(os.path.join(root, folder)):
      for name in names:
        path = os.path.join(directory, name)
        if name.endswith(".py") and os.path.relpath(path, root) not in allowed:
          with open(path, encoding="utf-8") as f:
            found += [f"{os.path.relpath(path, root)}: {line.strip()}" for line in f
                      if pattern.search(line)]
  assert not found
