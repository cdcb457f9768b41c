r"""Run one training command as N processes on this machine, joined by JAX's distributed runtime.

    python -m scripts.launch --num_processes=2 -- \
        python -m experiments.mnist --model=mlp --archive_dir=../shared/data

Starts N copies of the command with ``--coordinator_address=127.0.0.1:<free
port> --num_processes=N --process_id=i`` added, prints their output line by
line prefixed with ``[i]``, and exits 0 when all exit 0. When one fails (a
nonzero exit, or killed by a signal), it says which in one line, stops the
others and exits 1. Stopped itself (Ctrl-C, SIGTERM, SIGHUP), it stops them
(each stops at a step boundary) and exits 128 + the signal's number; killed
outright (SIGKILL), it takes them with it: the kernel sends each SIGTERM when
the launcher dies (Linux's ``PR_SET_PDEATHSIG``), so no orphan keeps the
workdir's lock or the CPUs. Each process sees its own devices (on CPU: one, or as many
as ``--xla_force_host_platform_device_count`` in XLA_FLAGS gives it). Across
machines, use the cluster's own launcher instead (README: SLURM, Cloud TPU).
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import flags

from data import errors
from data.errors import UserError
from experiments import cli

flags.DEFINE_integer("num_processes", 2, "Processes to start.")
flags.DEFINE_float("grace_seconds", 5.0, "After one process fails, how long the others get to "
                   "stop (SIGTERM) before they are killed.")
FLAGS = flags.FLAGS


def free_port() -> int:
  """A TCP port nobody listens on now (the coordinator binds it a moment later)."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _forward(process: subprocess.Popen, prefix: str, lock: threading.Lock,
             quiet: threading.Event) -> None:
  """Copies the process's lines, prefixed; once ``quiet`` is set (another process failed and
  this one is being stopped), its dying noise is dropped."""
  for line in process.stdout:
    if quiet.is_set():
      continue
    with lock:
      sys.stdout.write(f"{prefix}{line}")
      sys.stdout.flush()


def _why(code: int) -> str:
  if code < 0:
    return f"was killed by {signal.Signals(-code).name}"
  return f"exited with status {code}"


def _first_failure(codes: list[int | None]) -> int | None:
  """The process whose failure to report among those seen failed in one poll: one killed by a
  signal first (its peers then fail on the broken connection, often within the same 0.1 s
  poll, and exit with a status), else the lowest index; None when none failed."""
  failed = [i for i, code in enumerate(codes) if code]
  killed = [i for i in failed if codes[i] < 0]
  return (killed or failed or [None])[0]


def _die_with_launcher(launcher: int) -> None:
  """In a worker before it runs: SIGTERM when the launcher dies (Linux; elsewhere nothing)."""
  try:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
  except (OSError, AttributeError):
    return
  if os.getppid() != launcher:  # the launcher died before the line above
    os.kill(os.getpid(), signal.SIGTERM)


def launch(command: list[str], num_processes: int, grace_seconds: float) -> int:
  """Runs the N processes to the end; the exit status: 0 when all succeed, else 1."""
  port = free_port()
  env = {**os.environ, "PYTHONUNBUFFERED": "1"}
  processes, lock, me = [], threading.Lock(), os.getpid()
  for i in range(num_processes):
    process = subprocess.Popen(
        [*command, f"--coordinator_address=127.0.0.1:{port}", f"--num_processes={num_processes}",
         f"--process_id={i}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=env, preexec_fn=lambda: _die_with_launcher(me))  # the child dies with the launcher
    processes.append(process)
  quiet = [threading.Event() for _ in processes]  # set for the others once one fails
  forwarders = [threading.Thread(target=_forward, args=(p, f"[{i}] ", lock, quiet[i]),
                                 daemon=True) for i, p in enumerate(processes)]
  for thread in forwarders:
    thread.start()
  interrupted = None
  try:
    while True:
      codes = [p.poll() for p in processes]
      failed = _first_failure(codes)
      if failed is not None or all(code == 0 for code in codes):
        break
      time.sleep(0.1)
  except errors.Interrupted as e:  # cli.py's handlers: Ctrl-C, SIGTERM, SIGHUP
    interrupted = e
  if failed is not None or interrupted:
    for i, event in enumerate(quiet):
      if failed is not None and i != failed:
        event.set()
    _stop([p for p in processes if p.poll() is None], grace_seconds)
  for thread in forwarders:
    thread.join(timeout=5)
  if interrupted:
    raise errors.Interrupted(f"{interrupted}: every process was stopped", interrupted.signum)
  if failed is not None:
    raise UserError(f"process {failed} of {num_processes} {_why(processes[failed].returncode)}; "
                    "the other processes were stopped")
  return 0


def _stop(processes: list[subprocess.Popen], grace_seconds: float) -> None:
  """SIGTERM, then SIGKILL for those still running after ``grace_seconds``."""
  for p in processes:
    p.terminate()
  deadline = time.monotonic() + grace_seconds
  for p in processes:
    try:
      p.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      p.kill()
      p.wait()


def main(argv):
  command = argv[1:]
  if not command:
    raise UserError("give the command to run after --, e.g. "
                    "python -m scripts.launch --num_processes=2 -- python -m experiments.mnist")
  errors.check_integer("num_processes", FLAGS.num_processes, 1, 1024)
  errors.check_number("grace_seconds", FLAGS.grace_seconds, 0.0, 3600.0)
  launch(command, FLAGS.num_processes, FLAGS.grace_seconds)


if __name__ == "__main__":
  cli.run(main, takes_arguments=True)
