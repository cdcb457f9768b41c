"""Faults as a hostile environment makes them, through the entrypoints on real MNIST.

Each fault must end in a warning line and a correct result, or in one error
line and exit status 1; never a traceback, never a changed saved file, never
a confident wrong answer.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from data import archives
from data import datasets
from data.errors import UserError
from tests import helpers
from tests.test_files import READ_ONLY

pytestmark = pytest.mark.slow

FLAGS = ["--model=mlp", "--hidden_sizes=32", "--num_epochs=3", "--checkpoint_every_epoch",
         "--validation_size=1000", "--noplots", "--noprogress"]


def _errors(result) -> list[str]:
  """stderr without absl's log lines (I/W + date)."""
  return [line for line in result.stderr.splitlines()
          if line and not (line[:1] in "IW" and line[1:5].isdigit())]


def _one_line(result, start: str, status: int = 1) -> None:
  assert result.returncode == status, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  lines = _errors(result)
  assert len(lines) == 1 and lines[0].startswith(f"error: {start}"), lines


def _numbers(summary: dict) -> dict:
  timing = ("train_seconds", "train_images_per_second", "compile_seconds",
            "seconds_to_first_step", "steps_in_first_block", "already_complete", "checkpoint")
  return {k: v for k, v in summary.items() if k not in timing}


@pytest.fixture(scope="module")
def trained(mnist_data_dir, tmp_path_factory):
  """A finished workdir (checkpoints of epochs 2 and 3 kept) and its summary."""
  workdir = tmp_path_factory.mktemp("trained")
  result = subprocess.run(
      [sys.executable, "-m", "experiments.mnist", *FLAGS, f"--tfds_data_dir={mnist_data_dir}",
       f"--workdir={workdir}"], cwd=helpers.ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "3"]
  return workdir, json.loads((workdir / "summary.json").read_text())


@pytest.fixture
def copy(trained, tmp_path):
  shutil.copytree(trained[0], tmp_path / "work")
  return tmp_path / "work"


def test_a_damaged_checkpoint_is_named_and_the_run_ends_as_an_intact_one(
    trained, copy, run_module, mnist_data_dir):
  """A state file a full disk cut short (every part, flipped or cut: test_loop)."""
  damaged = helpers.damage(str(copy / "checkpoints" / "3" / "state"))
  os.truncate(damaged, os.path.getsize(damaged) // 3)
  result = run_module("experiments.mnist", *FLAGS, f"--tfds_data_dir={mnist_data_dir}",
                      f"--workdir={copy}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
  assert f"the checkpoint of epoch 3 in {copy}/checkpoints failed verification" in result.stderr
  assert "resuming from the checkpoint of epoch 2" in result.stderr
  assert _numbers(json.loads((copy / "summary.json").read_text())) == _numbers(trained[1])


def test_every_checkpoint_damaged_is_one_line_and_changes_nothing(copy, run_module,
                                                                   mnist_data_dir):
  for epoch in ("2", "3"):
    helpers.damage(str(copy / "checkpoints" / epoch / "model"))
  before = helpers.snapshot(str(copy))
  result = run_module("experiments.mnist", *FLAGS, f"--tfds_data_dir={mnist_data_dir}",
                      f"--workdir={copy}")
  _one_line(result, f"no usable checkpoint in {copy}/checkpoints: epoch 3: its model arrays "
                    "do not match their digest; epoch 2: ")
  assert helpers.snapshot(str(copy)) == before


def test_predict_verifies_the_model_it_loads(copy, run_module, mnist_data_dir, tmp_path):
  arrays = datasets.load_arrays("mnist", tfds_data_dir=mnist_data_dir)
  image = tmp_path / "digit.png"
  Image.fromarray(arrays["test_images"][0][..., 0]).save(image)
  label = str(arrays["test_labels"][0])
  intact = run_module("scripts.predict", f"--workdir={copy}", str(image))
  helpers.damage(str(copy / "checkpoints" / "3" / "model"))
  fallback = run_module("scripts.predict", f"--workdir={copy}", str(image))
  assert fallback.returncode == 0 and "using the checkpoint of epoch 2" in fallback.stderr
  assert fallback.stdout.split(": ")[1][0] == intact.stdout.split(": ")[1][0] == label
  helpers.damage(str(copy / "checkpoints" / "2" / "model"))
  _one_line(run_module("scripts.predict", f"--workdir={copy}", str(image)),
            f"no usable checkpoint in {copy}/checkpoints")


def test_a_finite_divergence_never_replaces_a_good_checkpoint(run_module, mnist_data_dir,
                                                              tmp_path):
  """SGD warming up to α = 20 on a tanh MLP: the training loss goes 1.54, 4.80, then 12.4
  in epoch 3 (measured, compiled as users' runs are: a chaotic trajectory, which rounding
  changes): finite, but far worse than guessing (3 ln 10 = 6.91)."""
  result = run_module(
      "experiments.mnist", "--model=mlp", "--hidden_sizes=64", "--activation=tanh",
      "--optimizer=sgd", "--learning_rate=20", "--schedule=warmup_cosine", "--warmup_epochs=2.9",
      "--num_epochs=4", "--checkpoint_every_epoch", "--noplots", "--noprogress",
      f"--workdir={tmp_path}", f"--tfds_data_dir={mnist_data_dir}", env=helpers.USERS_COMPILER)
  _one_line(result, "training diverged at epoch 3 (train loss ")
  assert _errors(result)[0].endswith(" > 3 ln 10 = 6.91); lower the learning rate; the "
                                     "checkpoint of epoch 2 and metrics.jsonl of the epochs "
                                     "before are kept")
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  assert [json.loads(line)["epoch"] for line in open(tmp_path / "metrics.jsonl")] == [1, 2]


def test_without_config_json_the_checkpoint_still_decides(copy, trained, run_module,
                                                          mnist_data_dir):
  config = (copy / "config.json").read_text()
  (copy / "config.json").unlink()
  mlp_only = [f for f in FLAGS if not f.startswith("--hidden_sizes")]  # cnn_small refuses it
  for flags, setting in (([*FLAGS, "--learning_rate=0.01"], "learning_rate 0.001 there, 0.01 here"),
                         ([*mlp_only, "--model=cnn_small"], "model 'mlp' there, 'cnn_small' here")):
    result = run_module("experiments.mnist", *flags, f"--tfds_data_dir={mnist_data_dir}",
                        f"--workdir={copy}")
    _one_line(result, f"{copy} holds a checkpoint of another run ({setting})")
    assert not (copy / "config.json").exists()
  result = run_module("experiments.mnist", *FLAGS, f"--tfds_data_dir={mnist_data_dir}",
                      f"--workdir={copy}")
  assert result.returncode == 0 and "already complete" in result.stderr
  assert (copy / "config.json").read_text() == config
  assert _numbers(json.loads((copy / "summary.json").read_text())) == _numbers(trained[1])


def test_a_second_process_on_a_running_workdir_is_refused(run_module, mnist_data_dir, tmp_path):
  flags = [*FLAGS, f"--tfds_data_dir={mnist_data_dir}", f"--workdir={tmp_path}"]
  first = subprocess.Popen([sys.executable, "-m", "experiments.mnist", *flags], cwd=helpers.ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 120
  while not (tmp_path / "config.json").exists() and time.monotonic() < deadline:
    time.sleep(0.01)
  first.send_signal(signal.SIGSTOP)  # still running, however fast its training would be
  try:
    second = run_module("experiments.mnist", *flags, "--learning_rate=0.1")
  finally:
    first.send_signal(signal.SIGCONT)
  _one_line(second, f"{tmp_path} is in use by another process (pid {first.pid}); wait for it "
                    "to finish, or use another --workdir")
  assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
  assert json.loads((tmp_path / "config.json").read_text())["learning_rate"] == 0.001


def test_two_processes_preparing_one_tfds_dir_take_turns(archive_dir, mnist_data_dir):
  """Both prepare Fashion-MNIST beside MNIST (whose archives have the same file names)."""
  code = ("import sys; from data import datasets; a = datasets.load_arrays('fashion_mnist', "
          "sys.argv[1], sys.argv[2]); print(a['test_images'].sum())")
  processes = [subprocess.Popen([sys.executable, "-c", code, archive_dir, mnist_data_dir],
                                cwd=helpers.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
  outputs = [p.communicate(timeout=600) for p in processes]
  assert [p.returncode for p in processes] == [0, 0], [e[-2000:] for _, e in outputs]
  sums = [out.splitlines()[-1] for out, _ in outputs]  # tfds prints progress before it
  fashion = datasets.load_arrays("fashion_mnist", tfds_data_dir=mnist_data_dir)
  mnist = datasets.load_arrays("mnist", tfds_data_dir=mnist_data_dir)
  assert sums[0] == sums[1] == str(fashion["test_images"].sum())
  np.testing.assert_array_equal(np.bincount(fashion["test_labels"]), [1000] * 10)
  assert not np.array_equal(fashion["test_images"], mnist["test_images"])


def _shift_labels(path):
  with np.load(path) as cached:
    arrays = dict(cached)
  arrays["test_labels"] = (arrays["test_labels"] + 1) % 10  # a valid file, wrong labels
  np.savez(path, **arrays)


TAMPERING = {
    "truncate": lambda data, path: open(path, "wb").write(data[:len(data) // 2]),
    "flip_byte": lambda data, path: open(path, "wb").write(
        data[:1000] + bytes([data[1000] ^ 1]) + data[1001:]),
    "random_bytes": lambda data, path: open(path, "wb").write(os.urandom(1000)),
    "shift_labels": lambda data, path: _shift_labels(path),
    "missing_digest": lambda data, path: os.remove(path + ".sha256"),
}


@pytest.fixture
def tfds_copy(mnist_data_dir, tmp_path):
  """A copy of the session's prepared tfds dir (with its verified array cache)."""
  shutil.copytree(mnist_data_dir, tmp_path / "tfds", ignore=shutil.ignore_patterns("*.lock"))
  return tmp_path / "tfds"


def _flip_record_bytes(version):
  path = next(version.glob("*train.tfrecord*"))
  data = bytearray(path.read_bytes())
  data[len(data) // 2:len(data) // 2 + 64] = bytes(b ^ 0xFF for b in data[len(data) // 2:
                                                                         len(data) // 2 + 64])
  path.write_bytes(bytes(data))


PREPARED_DAMAGE = {
    "flipped_record": (_flip_record_bytes, "DataLossError: corrupted record at"),
    "garbage_info": (lambda v: (v / "dataset_info.json").write_text("{garbage"), "ParseError"),
    "deleted_shard": (lambda v: next(v.glob("*test.tfrecord*")).unlink(), "NotFoundError"),
}


def _damaged_prepared_copy(tfds_copy, damage: str) -> str:
  """Damages the copy's prepared MNIST (its array cache removed, so tfds's files are read);
  the reason the error must give."""
  os.remove(datasets.cache_path("mnist", str(tfds_copy)))
  damage_it, reason = PREPARED_DAMAGE[damage]
  damage_it(next((tfds_copy / "mnist").iterdir()))
  return reason


def _prepared_error(tfds_copy, reason: str) -> str:
  """The one line's pattern (the reason goes on with TensorFlow's own words)."""
  folder = re.escape(f"{tfds_copy}/mnist")
  return (f"the prepared mnist in {folder} cannot be read \\({re.escape(reason)}.*\\); "
          f"delete {folder} to prepare it again from the archives$")


@pytest.mark.parametrize("damage", ["garbage_info", "deleted_shard"])
def test_damaged_prepared_tfds_data_is_a_user_error_saying_how_to_prepare_again(damage,
                                                                                tfds_copy):
  reason = _damaged_prepared_copy(tfds_copy, damage)
  with pytest.raises(UserError, match=_prepared_error(tfds_copy, reason)):
    datasets.load_arrays("mnist", tfds_data_dir=str(tfds_copy))


def test_a_damaged_prepared_record_is_one_line_before_any_workdir(tfds_copy, run_module,
                                                                  tmp_path):
  reason = _damaged_prepared_copy(tfds_copy, "flipped_record")
  result = run_module("experiments.mnist", *FLAGS, f"--tfds_data_dir={tfds_copy}",
                      f"--workdir={tmp_path / 'w'}")
  _one_line(result, "")
  assert re.fullmatch(_prepared_error(tfds_copy, reason), _errors(result)[0][len("error: "):])
  assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("tamper", TAMPERING)
def test_a_tampered_array_cache_is_rebuilt_from_tfds(tamper, tfds_copy, mnist_data_dir, caplog,
                                                     monkeypatch):
  """Each tampering is detected and the cache written again from what tfds reads. tfds's
  reading is the session's arrays here (TensorFlow's import and the decoding take ~7 s a
  case); the next test rebuilds from the prepared tfds files for real."""
  expected = datasets.load_arrays("mnist", tfds_data_dir=mnist_data_dir)
  with np.load(datasets.cache_path("mnist", mnist_data_dir)) as intact:
    version = str(intact["tfds_version"])
  monkeypatch.setattr(archives, "prepare_and_read", lambda *args: (expected, version))
  cache = datasets.cache_path("mnist", str(tfds_copy))
  TAMPERING[tamper](open(cache, "rb").read(), cache)
  arrays = datasets.load_arrays("mnist", tfds_data_dir=str(tfds_copy))
  assert f"the array cache {cache} is damaged" in caplog.text and "rebuilding" in caplog.text
  for key, value in expected.items():
    np.testing.assert_array_equal(arrays[key], value)
  rebuilt = datasets.load_arrays("mnist", tfds_data_dir=str(tfds_copy))  # from the new cache
  assert "damaged" not in caplog.text.split("rebuilding")[-1]
  for key, value in expected.items():
    np.testing.assert_array_equal(rebuilt[key], value)


def test_a_run_on_a_damaged_cache_warns_and_trains_on_the_real_data(tfds_copy, run_module,
                                                                     tmp_path, mnist_data_dir):
  cache = datasets.cache_path("mnist", str(tfds_copy))
  _shift_labels(cache)  # a valid file whose labels are wrong: accuracy would be ~1%
  result = run_module("experiments.mnist", "--model=mlp", "--hidden_sizes=32", "--num_epochs=1",
                      "--noplots", "--noprogress", f"--tfds_data_dir={tfds_copy}",
                      f"--workdir={tmp_path / 'work'}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert f"the array cache {cache} is damaged" in result.stderr
  assert json.loads((tmp_path / "work" / "summary.json").read_text())["test_accuracy"] > 0.9
  # rebuilt from the prepared tfds files: the same arrays as the session's cache
  with np.load(cache) as rebuilt, np.load(datasets.cache_path("mnist", mnist_data_dir)) as intact:
    for key in datasets.ARRAYS:
      np.testing.assert_array_equal(rebuilt[key], intact[key])


def test_os_faults_before_training_are_one_line(run_module, mnist_data_dir, tmp_path):
  a_file = tmp_path / "a_file"
  a_file.write_text("")
  cases = [([f"--workdir={a_file}"], f"cannot write to {a_file}: it is a file, not a directory"),
           ([f"--workdir={a_file}/sub"], f"cannot write to {a_file}/sub: Not a directory"),
           (["--workdir="], "a directory to write to must be given, got ''")]
  if READ_ONLY:
    cases += [([f"--workdir={READ_ONLY}/work"], f"cannot write to {READ_ONLY}/work: "),
              ([f"--tfds_data_dir={READ_ONLY}/tfds", f"--workdir={tmp_path / 'w'}"],
               f"cannot write to {READ_ONLY}/tfds/perceptrax_arrays: ")]
    (tmp_path / "ro").mkdir()
    os.symlink(READ_ONLY, tmp_path / "ro" / "checkpoints")  # a run folder that cannot be written
    cases.append(([f"--workdir={tmp_path / 'ro'}"],
                  f"cannot write to {tmp_path / 'ro'}/checkpoints: Permission denied"))
  (tmp_path / "plain").mkdir()
  (tmp_path / "plain" / "checkpoints").write_text("")
  cases.append(([f"--workdir={tmp_path / 'plain'}"],
                 f"{tmp_path / 'plain'}/checkpoints is a file where the run keeps its "
                 "checkpoints folder; move it away"))
  for flags, message in cases:
    result = run_module("experiments.mnist", "--model=mlp", "--noprogress",
                        f"--tfds_data_dir={mnist_data_dir}", *flags)
    _one_line(result, message)


def test_resuming_with_another_dataset_is_refused_before_it_is_prepared(copy, run_module,
                                                                       tmp_path):
  tfds_dir = tmp_path / "tfds"  # empty: preparing Fashion-MNIST would fill it
  before = helpers.snapshot(str(copy))
  result = run_module("experiments.mnist", *FLAGS, "--dataset=fashion_mnist",
                      f"--tfds_data_dir={tfds_dir}", f"--workdir={copy}")
  _one_line(result, f"{copy} holds a checkpoint of another run (dataset 'mnist' there, "
                    "'fashion_mnist' here)")
  assert not tfds_dir.exists() or not os.listdir(tfds_dir)
  assert helpers.snapshot(str(copy)) == before


LIMITED = """
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(
    copy, trained, run_module, mnist_data_dir):
  """Epoch 3's checkpoint is removed, so the rerun trains epoch 3 and must write it, with
  files limited to 64 KiB (the kernel refuses larger writes: File too large)."""
  shutil.rmtree(copy / "checkpoints" / "3")
  flags = [*FLAGS, f"--tfds_data_dir={mnist_data_dir}", f"--workdir={copy}",
           "--compilation_cache_dir="]
  result = subprocess.run([sys.executable, "-c", LIMITED, str(64 * 1024), "-m",
                           "experiments.mnist", *flags], cwd=helpers.ROOT, capture_output=True,
                          text=True, timeout=600)
  _one_line(result, f"could not write the checkpoint of epoch 3 in {copy}/checkpoints (File too "
                    "large); the checkpoint of epoch 2 is kept")
  result = run_module("experiments.mnist", *flags)  # room again: resumes from epoch 2
  assert result.returncode == 0, result.stderr[-2000:]
  assert _numbers(json.loads((copy / "summary.json").read_text())) == _numbers(trained[1])


@pytest.mark.parametrize("module,flags,message", [  # the full lists: test_config.py
    ("experiments.mnist", ["--eps=inf"], "eps must be a finite number in (0, inf), got inf"),
    ("scripts.sweep", ["--dropouts=0.5,2"], "dropout must be a finite number in [0, 1), got 2.0"),
    ("experiments.classic", ["--c=inf"], "c must be a finite number in (0, inf), got inf"),
    ("experiments.backprop_example", ["--c=nan"], "c must be a finite number in (0, inf), got nan"),
    ("scripts.benchmark", ["--repeats=0"], "repeats must be an integer in [1, 1000], got 0"),
    ("scripts.predict", ["--member=-1", "x.png"], "member must be an integer in [0, "),
    ("experiments.mnist", ["--learning_rate=1e-300"],
     "learning_rate must be 0 or of magnitude 1.18e-38 to 3.4e+38 to keep its value in float32"),
    ("experiments.classic", ["--algorithm=lms", "--dataset=blobs", "--c=1e308"],
     "c must be 0 or of magnitude"),
    ("experiments.mnist", ["--model=mlp", "--hidden_sizes="], "hidden_sizes needs widths"),
    ("scripts.sweep", ["--model=mlp", "--hidden_sizes_grid=64;;32"], "hidden_sizes needs widths"),
    ("scripts.launch", ["--grace_seconds=nan", "--", "true"],
     "grace_seconds must be a finite number in [0, 3600), got nan"),
    ("scripts.launch", ["--num_processes=0", "--", "true"],
     "num_processes must be an integer in [1, 1024], got 0"),
    # before any data: without archives or a prepared dataset these would say "not prepared"
    ("scripts.benchmark", ["--mode=sweep", "--ks=0", "--tfds_data_dir=/nonexistent"],
     "ks must be an integer in [1, 1024], got 0"),
    ("scripts.benchmark", ["--models=resnet", "--tfds_data_dir=/nonexistent"],
     "unknown model 'resnet'; choose one of "),
    ("scripts.monitor_replay", ["--url=garbage", "--tfds_data_dir=/nonexistent"],
     "cannot reach garbage: "),
])
def test_bad_numbers_are_one_line_on_every_entrypoint(module, flags, message, run_module,
                                                      tmp_path):
  where = {"experiments.backprop_example": [], "scripts.launch": [], "scripts.monitor_replay": [],
           "scripts.benchmark": [f"--output={tmp_path / 'b.json'}"]}.get(
               module, [f"--workdir={tmp_path / 'w'}"])
  _one_line(run_module(module, *flags, *where), message)


def _signalled(command, ready, signum):
  """Runs ``command``, sends ``signum`` once ``ready()`` holds; the finished process's result."""
  process = subprocess.Popen(command, cwd=helpers.ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 300
  while not ready() and time.monotonic() < deadline:
    time.sleep(0.01)
  process.send_signal(signum)
  _, stderr = process.communicate(timeout=300)
  return subprocess.CompletedProcess(command, process.returncode, "", stderr)


def test_a_signal_stops_at_a_step_boundary_keeps_the_last_epoch_and_the_rerun_resumes_exactly(
    trained, mnist_data_dir, tmp_path):
  """SIGTERM, as a scheduler or the launcher sends it (each signal's handling: test_hooks)."""
  signum = signal.SIGTERM
  workdir = tmp_path / "w"
  command = [sys.executable, "-m", "experiments.mnist", *FLAGS, f"--tfds_data_dir={mnist_data_dir}",
             f"--workdir={workdir}"]
  result = _signalled(command, (workdir / "checkpoints" / "1").exists, signum)
  name = signal.Signals(signum).name
  _one_line(result, f"stopped by {name} after epoch ", status=128 + signum)
  assert "is kept; rerun the same command to resume from it" in _errors(result)[0]
  kept = sorted(os.listdir(workdir / "checkpoints"))
  assert kept and "3" not in kept  # the run did not finish
  rerun = subprocess.run(command, cwd=helpers.ROOT, capture_output=True, text=True, timeout=600)
  assert rerun.returncode == 0, rerun.stderr[-2000:]
  assert "resuming from the checkpoint of epoch" in rerun.stderr
  assert _numbers(json.loads((workdir / "summary.json").read_text())) == _numbers(trained[1])


def test_a_signal_before_training_is_one_line(mnist_data_dir, tmp_path):
  """Ctrl-C while the run loads its data (main() has made the workdir): one line, exit 130."""
  workdir = tmp_path / "w"
  command = [sys.executable, "-m", "experiments.mnist", *FLAGS, f"--tfds_data_dir={mnist_data_dir}",
             f"--workdir={workdir}"]
  result = _signalled(command, workdir.exists, signal.SIGINT)
  if result.returncode == 0:
    pytest.skip("the run finished before the signal")
  _one_line(result, "stopped by SIGINT", status=130)
  assert not (workdir / "checkpoints").exists()
