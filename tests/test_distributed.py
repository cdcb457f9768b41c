"""Training over several processes (jax.distributed, gloo on CPU) equals training in one.

Every layout runs in its own processes: XLA fixes a process's devices when its
backend starts, so these are slow-tier tests (the layouts themselves are
unit-tested on two forced devices in test_sharding). The MLP on a small
generated dataset through ``loop.fit``, and the entrypoints on real MNIST
through ``scripts.launch``: equal final parameters, equal sweep results, a
killed process resumed bitwise, and bad set-ups refused in one line.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from data import files
from data.errors import UserError
from experiments.training.processes import distributed
from scripts import launch
from tests.helpers import COMPILATION_CACHE
from tests.helpers import ROOT

# One generated run: initialize from the launcher's flags (if any), fit, save the kept
# parameters (process 0) and the layout the loop chose.
SCRIPT = """
import json, sys
import jax
import numpy as np
from experiments.training.loop import loop, run as run_lib
from experiments.training.processes import distributed, sharding
from experiments.training.settings.config import TrainConfig
from tests import helpers
flags = dict((a[2:] + "=").split("=")[:2] for a in sys.argv[2:])
if "distributed" in flags:  # JAX finds the processes itself (SLURM's variables)
  distributed.initialize(timeout_seconds=30, auto=True)
elif flags:
  distributed.initialize(flags["coordinator_address"], int(flags["num_processes"]),
                         int(flags["process_id"]), timeout_seconds=30)
data = helpers.synthetic_data()
config = TrainConfig(model="mlp", hidden_sizes=(16,), optimizer="adam", learning_rate=0.01,
                     batch_size=32, num_epochs=2, validation_size=128, progress=False,
                     plots=False).resolve()
run = run_lib.make_run([config], data.input_shape, 10, data.num_examples)
result = loop.fit(run, data)
kept = sharding.to_host(result.kept)
if distributed.is_leader():
  np.savez(sys.argv[1], *jax.tree.leaves(kept))
  print(json.dumps({**{k: result.timing[k] for k in ("devices", "processes")},
                    "history": result.records[0].history[-1]}))
"""


def _env(devices: int = 1) -> dict:
  return {**os.environ, "PYTHONPATH": ROOT, "JAX_COMPILATION_CACHE_DIR": COMPILATION_CACHE,
          "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _launched(processes: int, *command: str) -> list[str]:
  """``command`` as one process, or as ``processes`` through scripts.launch."""
  if processes == 1:
    return list(command)
  return [sys.executable, "-m", "scripts.launch", f"--num_processes={processes}", "--", *command]


def _generated_run(tmp_path, name: str, devices: int = 1, processes: int = 1):
  out = str(tmp_path / f"{name}.npz")
  result = subprocess.run(_launched(processes, sys.executable, "-c", SCRIPT, out), cwd=ROOT,
                          env=_env(devices), capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
  summary = json.loads([line for line in result.stdout.splitlines() if "history" in line][-1]
                       .removeprefix("[0] "))
  with np.load(out) as saved:
    return summary, [saved[k] for k in saved.files]


@pytest.mark.slow  # three runs in their own processes, two of them joined by gloo
def test_two_processes_train_the_mlp_as_one_process_does(tmp_path):
  two, two_params = _generated_run(tmp_path, "two", processes=2)
  pair, pair_params = _generated_run(tmp_path, "pair", devices=2)
  one, one_params = _generated_run(tmp_path, "one")
  assert (two["devices"], two["processes"]) == (2, 2)
  assert (pair["devices"], pair["processes"]) == (2, 1)
  assert (one["devices"], one["processes"]) == (1, 1)
  # 2 processes x 1 device split each batch as 1 process x 2 devices does: the
  # same partial sums, added by gloo instead of in process (measured bitwise equal).
  for a, b in zip(two_params, pair_params):
    np.testing.assert_array_equal(a, b)
  # vs 1 device: the gradient's sum over 32 examples is two partial sums of 16
  # (float32), then 40 Adam steps (measured <= 1e-6 relative).
  for a, b in zip(two_params, one_params):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  assert two["history"]["test_accuracy"] == pytest.approx(one["history"]["test_accuracy"])


@pytest.mark.slow  # the same run as the test above, the processes found another way
def test_under_slurm_the_processes_find_each_other_from_its_variables(tmp_path):
  # What srun sets for a 2-task job step on one node; JAX's SLURM detection
  # derives the coordinator's port from the job id (61440 + id mod 4096).
  job = next(j for j in np.random.default_rng().permutation(4096) if _port_is_free(61440 + j))
  out = str(tmp_path / "slurm.npz")
  processes = [subprocess.Popen(
      [sys.executable, "-c", SCRIPT, out, "--distributed"], cwd=ROOT, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True,
      env={**_env(), "SLURM_JOB_ID": str(job), "SLURM_STEP_NODELIST": "localhost",
           "SLURM_NTASKS": "2", "SLURM_PROCID": str(i), "SLURM_LOCALID": str(i)})
      for i in range(2)]
  outputs = [p.communicate(timeout=300) for p in processes]
  assert [p.returncode for p in processes] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
  summary = json.loads(outputs[0][0].strip().splitlines()[-1])
  assert (summary["devices"], summary["processes"]) == (2, 2)
  _, pair_params = _generated_run(tmp_path, "pair", devices=2)
  with np.load(out) as saved:
    for k, want in zip(saved.files, pair_params):
      np.testing.assert_array_equal(saved[k], want)


def _port_is_free(port: int) -> bool:
  with socket.socket() as s:
    try:
      s.bind(("127.0.0.1", port))
    except OSError:
      return False
  return True


@pytest.mark.parametrize("args, message", [
    (("127.0.0.1:1234", 2, 2), r"process_id must be in 0\.\.1 \(--num_processes=2\), got 2"),
    (("127.0.0.1:1234", 2, -1), r"process_id must be in 0\.\.1"),
    (("127.0.0.1:1234", 0, 0), r"num_processes must be an integer in \[1, 65536\], got 0"),
    (("127.0.0.1:1234", 2**40, 0), r"num_processes must be an integer in \[1, 65536\]"),
    (("127.0.0.1:1234", None, 1), r"go together"),
    (("1234", 2, 1), r"coordinator_address must be host:port with a port in 1\.\.65535, got "
                     "'1234'"),
    (("garbage", 2, 0), r"coordinator_address must be host:port"),  # process 0 checks too
    (("127.0.0.1:99999", 1, 0), r"with a port in 1\.\.65535, got '127\.0\.0\.1:99999'"),
])
def test_bad_process_settings_are_refused_before_joining(args, message):
  with pytest.raises(UserError, match=message):
    distributed.initialize(*args, timeout_seconds=1)


def test_a_coordinator_that_never_answers_is_one_line_after_the_timeout():
  address = f"127.0.0.1:{launch.free_port()}"
  start = time.monotonic()
  with pytest.raises(UserError, match=rf"the coordinator at {address} did not answer within 1 s"):
    distributed.initialize(address, 2, 1, timeout_seconds=1)
  assert time.monotonic() - start < 10


@pytest.mark.parametrize("codes, reported", [
    ([None, None], None), ([0, None], None), ([1, None], 0), ([None, 2], 1),
    ([1, -9], 1),  # a peer of a killed process fails on the broken connection: the kill is the cause
    ([-15, -9], 0), ([0, 1, 3], 1)])
def test_the_launcher_reports_the_failure_that_caused_the_others(codes, reported):
  assert launch._first_failure(codes) == reported


def test_a_collective_failed_by_a_lost_peer_is_named_whatever_it_interrupted(monkeypatch):
  gloo = RuntimeError("UNKNOWN: Gloo all-reduce failed: [pair.cc:547] Connection closed by peer")
  try:
    try:
      raise gloo
    except RuntimeError as e:
      raise UserError("could not write the checkpoint of epoch 1 (Gloo AllGather failed)") from e
  except UserError as e:
    wrapped = e
  assert distributed.lost_peer(wrapped) is None  # a single process: never a lost peer
  monkeypatch.setattr(distributed, "_joined", True)
  for error in (gloo, wrapped):
    message = distributed.lost_peer(error)
    assert message.startswith("lost contact with another process of this run (")
    assert message.endswith("rerun every process to resume from the last checkpoint")
  assert distributed.lost_peer(ValueError("a bug")) is None


def test_without_process_settings_nothing_is_joined():
  distributed.initialize()  # a single process: no coordinator, no error
  assert distributed.is_leader()


# Real MNIST through the entrypoints.

# Batches of 512: 107 steps per epoch (each step's gradient crosses processes through
# gloo, ~20 ms on 2 cores).
MLP = ["--model=mlp", "--hidden_sizes=64", "--num_epochs=1", "--batch_size=512",
       "--validation_size=1000", "--noplots", "--noprogress"]


def _launch(processes: int, module: str, *flags, devices: int = 1, timeout=600):
  return subprocess.run(_launched(processes, sys.executable, "-m", module, *flags), cwd=ROOT,
                        env=_env(devices), capture_output=True, text=True, timeout=timeout)


def _kept(workdir) -> list[np.ndarray]:
  from experiments.training.storage import checkpoints
  model, _ = checkpoints.Checkpoints(str(workdir)).restore_model()
  import jax
  return [np.asarray(a) for a in jax.tree.leaves(model)]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["vmapped", "sequential"])
def test_a_sweep_over_two_processes_equals_one(mnist_data_dir, tmp_path, strategy):
  flags = [*MLP, "--hidden_sizes=32", "--seeds=0,1,2,3", "--noshared_batches",
           f"--strategy={strategy}", f"--tfds_data_dir={mnist_data_dir}"]
  two = _launch(2, "scripts.sweep", *flags, f"--workdir={tmp_path / 'two'}")
  assert two.returncode == 0, (two.stdout + two.stderr)[-3000:]
  one = _launch(1, "scripts.sweep", *flags, f"--workdir={tmp_path / 'one'}")
  assert one.returncode == 0, one.stderr[-3000:]
  got, want = (json.loads((tmp_path / n / "sweep.json").read_text())["runs"] for n in ("two", "one"))
  assert [r["seed"] for r in got] == [r["seed"] for r in want] == [0, 1, 2, 3]
  for a, b in zip(got, want):
    # vmapped: each process trains 2 of the 4 members, as 1 process trains all 4
    # (measured equal); sequential: each run trained alone by one process (equal).
    for metric in ("train_loss", "validation_loss", "test_loss", "test_accuracy"):
      assert a[metric] == pytest.approx(b[metric], rel=1e-6), metric
  if strategy == "vmapped":
    assert "4 models, minibatch descent" in two.stdout
    assert "members split over 2 devices of 2 processes" in two.stdout
  else:  # dealt out: runs 0 and 2 to process 0, 1 and 3 to process 1, each writing its own
    assert sorted(os.listdir(tmp_path / "two" / "runs")) == [f"00-00{r}" for r in range(4)]
    for r in range(4):
      assert (tmp_path / "two" / "runs" / f"00-00{r}" / "metrics.jsonl").exists()


@pytest.mark.slow
def test_a_killed_process_stops_the_other_and_the_rerun_resumes_bitwise(mnist_data_dir, tmp_path):
  """The entrypoint on 2 processes equals 1 process of 2 devices (the same partial sums,
  measured bitwise equal), and a run whose process 1 is killed resumes to the same bits."""
  flags = [*MLP, "--num_epochs=2", "--checkpoint_every_epoch", f"--tfds_data_dir={mnist_data_dir}"]
  for name, processes, devices in (("whole", 2, 1), ("pair", 1, 2)):
    result = _launch(processes, "experiments.mnist", *flags, f"--workdir={tmp_path / name}",
                     devices=devices)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    summary = json.loads((tmp_path / name / "summary.json").read_text())
    assert (summary["devices"], summary["processes"]) == (2, processes)
  assert not os.path.exists(tmp_path / "whole" / "summary.json.tmp")
  for a, b in zip(_kept(tmp_path / "whole"), _kept(tmp_path / "pair"), strict=True):
    np.testing.assert_array_equal(a, b)

  workdir = tmp_path / "killed"
  command = _launched(2, sys.executable, "-m", "experiments.mnist", *flags,
                      f"--workdir={workdir}")
  launcher = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 300
  while not os.path.isdir(workdir / "checkpoints" / "1"):  # mid-epoch 2
    assert launcher.poll() is None and time.monotonic() < deadline
    time.sleep(0.05)
  os.kill(int(files.lock_holder(str(workdir / ".lock.process1"))), signal.SIGKILL)
  out, err = launcher.communicate(timeout=120)
  assert launcher.returncode == 1
  assert err.strip().splitlines()[-1] == ("error: process 1 of 2 was killed by SIGKILL; "
                                          "the other processes were stopped")
  rerun = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True,
                         timeout=600)
  assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
  assert "resuming from the checkpoint of epoch 1" in rerun.stdout
  for a, b in zip(_kept(workdir), _kept(tmp_path / "whole"), strict=True):
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("killed", [0, 1])  # 0 also hosts the coordinator
def test_without_the_launcher_the_survivor_of_a_killed_peer_says_so_in_one_line(
    mnist_data_dir, tmp_path, killed):
  address = f"127.0.0.1:{launch.free_port()}"
  workdir = tmp_path / "w"
  processes = [subprocess.Popen(
      [sys.executable, "-m", "experiments.mnist", *MLP, "--num_epochs=3",
       f"--tfds_data_dir={mnist_data_dir}", f"--workdir={workdir}",
       f"--coordinator_address={address}", "--num_processes=2", f"--process_id={i}"],
      cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for i in range(2)]
  deadline = time.monotonic() + 300
  while not os.path.isdir(workdir / "checkpoints" / "1"):
    assert all(p.poll() is None for p in processes) and time.monotonic() < deadline
    time.sleep(0.05)
  # Into epoch 2's steps, past the checkpoint's closing barrier: a coordinator killed during
  # that barrier makes JAX's client abort the other process from C++ (README, fault table).
  time.sleep(1.0)
  processes[killed].kill()
  start = time.monotonic()
  _, err = processes[1 - killed].communicate(timeout=120)
  assert time.monotonic() - start < 30, err[-3000:]  # not JAX's shutdown barrier (100 s)
  processes[killed].wait()
  if killed == 0 and processes[1].returncode == -signal.SIGABRT:
    # The coordinator's loss reached JAX's client thread first: it aborts the process from
    # C++ before Python sees the failed collective (the README's documented limit).
    assert "another task died" in err
    return
  assert processes[1 - killed].returncode == 1, err[-3000:]
  ours = [line for line in err.splitlines() if line.startswith("error: ")]
  assert ours == [ours[0]] and ours[0].startswith(
      "error: lost contact with another process of this run (")
  if killed == 1:  # the line is the last; with the coordinator gone, JAX's client thread logs
    assert err.strip().splitlines()[-1] == ours[0]  # its own C++ lines meanwhile (README)
  assert "Traceback" not in err


@pytest.mark.slow
def test_bad_setups_are_one_line_before_training(mnist_data_dir, tmp_path):
  data = f"--tfds_data_dir={mnist_data_dir}"
  cases = [
      (1, ["--coordinator_address=127.0.0.1:1234", "--num_processes=2", "--process_id=2"],
       "error: process_id must be in 0..1 (--num_processes=2), got 2"),
      (1, [f"--coordinator_address=127.0.0.1:{launch.free_port()}", "--num_processes=2",
           "--process_id=1", "--distributed_timeout=2"], "did not answer within 2 s"),
      (2, ["--batch_size=127"], "error: a batch of 127 examples does not split over the 2 "
       "devices of 2 processes; choose --batch_size a multiple of 2"),
  ]
  for processes, flags, message in cases:
    result = _launch(processes, "experiments.mnist", *MLP, data, *flags,
                     f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert any(message in line for line in lines), lines[-5:]
    assert "Traceback" not in result.stdout + result.stderr
    assert not os.path.exists(tmp_path / "w" / "checkpoints")


@pytest.mark.slow
def test_workers_die_with_a_killed_launcher(tmp_path):
  """SIGKILL gives the launcher no chance to stop them: the kernel does (PR_SET_PDEATHSIG)."""
  pids = tmp_path / "pids"
  worker = f"import os, time; open('{pids}', 'a').write(f'{{os.getpid()}}\\n'); time.sleep(120)"
  launcher = subprocess.Popen(
      [sys.executable, "-m", "scripts.launch", "--num_processes=2", "--", sys.executable, "-c",
       worker], cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 60
  while (not pids.exists() or len(pids.read_text().split()) < 2) and time.monotonic() < deadline:
    time.sleep(0.05)
  workers = [int(p) for p in pids.read_text().split()]
  launcher.kill()
  launcher.wait()
  deadline = time.monotonic() + 10
  alive = workers
  while alive and time.monotonic() < deadline:
    alive = [p for p in workers if _running(p)]
    time.sleep(0.05)
  assert not alive, f"orphaned workers {alive}"


def _running(pid: int) -> bool:
  try:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
      return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
  except FileNotFoundError:
    return False


@pytest.mark.slow
def test_a_stopped_launcher_stops_every_process_in_one_line(tmp_path):
  worker = "import time; time.sleep(120)"
  launcher = subprocess.Popen(
      [sys.executable, "-m", "scripts.launch", "--num_processes=2", "--", sys.executable, "-c",
       worker], cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  time.sleep(3)
  launcher.send_signal(signal.SIGTERM)
  _, stderr = launcher.communicate(timeout=60)
  assert launcher.returncode == 128 + signal.SIGTERM
  assert stderr.strip().splitlines() == ["error: stopped by SIGTERM: every process was stopped"]
