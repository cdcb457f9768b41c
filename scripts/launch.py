r"""Run one training command as N processes on this machine, joined by JAX's distributed runtime.

    python -m scripts.launch --num_processes=2 -- \
        python -m experiments.mnist --model=mlp --archive_dir=../shared/data

Starts N copies of the command with ``--coordinator_address=127.0.0.1:<free
port> --num_processes=N --process_id=i`` added, prints their output line by
line prefixed with ``[i]``, and exits 0 when all exit 0. When one fails (a
nonzero exit, or killed by a signal), it says which in one line, stops the
others and exits 1. Each process sees its own devices (on CPU: one, or as many
as ``--xla_force_host_platform_device_count`` in XLA_FLAGS gives it). Across
machines, use the cluster's own launcher instead (README: SLURM, Cloud TPU).
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import flags

from experiments import cli
from data.errors import UserError

flags.DEFINE_integer("num_processes", 2, "Processes to start.")
flags.DEFINE_float("grace_seconds", 5.0, "After one process fails, how long the others get to "
                   "stop (SIGTERM) before they are killed.")
FLAGS = flags.FLAGS


def free_port() -> int:
  """A TCP port nobody listens on now (the coordinator binds it a moment later)."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _forward(process: subprocess.Popen, prefix: str, lock: threading.Lock) -> None:
  for line in process.stdout:
    with lock:
      sys.stdout.write(f"{prefix}{line}")
      sys.stdout.flush()


def _why(code: int) -> str:
  if code < 0:
    return f"was killed by {signal.Signals(-code).name}"
  return f"exited with status {code}"


def launch(command: list[str], num_processes: int, grace_seconds: float) -> int:
  """Runs the N processes to the end; the exit status: 0 when all succeed, else 1."""
  port = free_port()
  env = {**os.environ, "PYTHONUNBUFFERED": "1"}
  processes, lock = [], threading.Lock()
  for i in range(num_processes):
    process = subprocess.Popen(
        [*command, f"--coordinator_address=127.0.0.1:{port}", f"--num_processes={num_processes}",
         f"--process_id={i}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=env)
    processes.append(process)
  forwarders = [threading.Thread(target=_forward, args=(p, f"[{i}] ", lock), daemon=True)
                for i, p in enumerate(processes)]
  for thread in forwarders:
    thread.start()
  try:
    while True:
      codes = [p.poll() for p in processes]
      failed = next((i for i, code in enumerate(codes) if code), None)  # the first to fail
      if failed is not None or all(code == 0 for code in codes):
        break
      time.sleep(0.1)
  except KeyboardInterrupt:
    failed = "interrupted"
  if failed is not None:
    _stop([p for p in processes if p.poll() is None], grace_seconds)
  for thread in forwarders:
    thread.join(timeout=5)
  if failed == "interrupted":
    raise UserError("interrupted: every process was stopped")
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


def _interrupt(signum, frame):
  del signum, frame
  raise KeyboardInterrupt


def main(argv):
  command = argv[1:]
  if not command:
    raise UserError("give the command to run after --, e.g. "
                    "python -m scripts.launch --num_processes=2 -- python -m experiments.mnist")
  if not 1 <= FLAGS.num_processes <= 1024:
    raise UserError(f"num_processes must be in 1..1024, got {FLAGS.num_processes}")
  signal.signal(signal.SIGTERM, _interrupt)  # stopped from outside: stop the processes too
  launch(command, FLAGS.num_processes, FLAGS.grace_seconds)


if __name__ == "__main__":
  cli.run(main, takes_arguments=True)
