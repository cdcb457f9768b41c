r"""How long a training command takes to start: warm start-to-first-step, and its imports.

    python -m scripts.benchmark_startup --archive_dir=../shared/data

Runs ``python -m experiments.mnist --model=mlp`` (one epoch on 1000 training
images, nothing but the summary written) once to warm the compilation cache
and prepare the dataset, then --repeats times more, and prints the median
of its own ``seconds_to_first_step`` (from the process's start, before its
imports, to the first training step's completion: imports, flags, data,
model, compiling or loading the step). Then ``python -X importtime -c "import
experiments.mnist"``'s total and its five slowest top-level packages
(cumulative). Writes --output (JSON). Time with nothing else running.
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile

from absl import flags

from data import errors
from data import files
from experiments import cli

flags.DEFINE_integer("repeats", 5, "Timed starts after the warming one.")
flags.DEFINE_string("output", "benchmark_startup.json", "Where to write the JSON results.")
FLAGS = flags.FLAGS

COMMAND = ["-m", "experiments.mnist", "--model=mlp", "--num_epochs=1", "--validation_size=59000",
           "--noplots", "--notensorboard", "--noprogress"]


def first_step_seconds(workdir: str) -> float:
  """One start of ``COMMAND`` in a fresh workdir: its summary's seconds_to_first_step."""
  command = [sys.executable, *COMMAND, f"--workdir={workdir}"]
  if FLAGS.archive_dir:
    command.append(f"--archive_dir={FLAGS.archive_dir}")
  if FLAGS.tfds_data_dir:
    command.append(f"--tfds_data_dir={FLAGS.tfds_data_dir}")
  result = subprocess.run(command, capture_output=True, text=True, check=False)
  if result.returncode:
    raise errors.UserError(f"experiments.mnist failed: {result.stderr.strip().splitlines()[-1]}")
  return files.read_json(os.path.join(workdir, "summary.json"))["seconds_to_first_step"]


PROJECT = ("experiments", "data", "models", "scripts")


def import_times(module: str = "experiments.mnist") -> tuple[float, list[tuple[str, float]]]:
  """``-X importtime``'s cumulative seconds for ``module``, and the five slowest third-party
  packages it loads (each package's own cumulative time, which includes what it imports)."""
  result = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                          capture_output=True, text=True, check=True)
  seconds = {name: int(cumulative) / 1e6 for cumulative, name in re.findall(
      r"^import time:\s+\d+ \|\s+(\d+) \|\s+(\S+)$", result.stderr, re.M)}
  packages = {name: t for name, t in seconds.items()
              if "." not in name and not name.startswith(("_", *PROJECT))
              and name not in sys.stdlib_module_names}
  return seconds[module], sorted(packages.items(), key=lambda kv: -kv[1])[:5]


def main(argv):
  del argv
  errors.check_integer("repeats", FLAGS.repeats, 1, 100)
  with tempfile.TemporaryDirectory() as folder:
    first_step_seconds(os.path.join(folder, "warm"))
    starts = [first_step_seconds(os.path.join(folder, str(i))) for i in range(FLAGS.repeats)]
  total, slowest = import_times()
  median = statistics.median(starts)
  print(f"warm start-to-first-step of the MLP: median {median:.2f} s of {FLAGS.repeats} "
        f"({', '.join(f'{s:.2f}' for s in starts)})")
  print(f"import experiments.mnist: {total:.2f} s; slowest packages: "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in slowest))
  files.write_json(FLAGS.output, {"first_step_seconds": starts, "median": median,
                                  "import_seconds": total, "slowest_imports": slowest})
  print(f"written to {FLAGS.output}")


if __name__ == "__main__":
  cli.run(main)
