"""Shared test set-up: strict JAX numerics, the offline archive folder, prepared MNIST.

Two tiers: tests marked ``slow`` train on real data or run entrypoints in
subprocesses; ``pytest -m "not slow"`` runs the unit and numerical tests alone.
Real-data tests need the official archives: pass ``--archive_dir=DIR`` (one
subfolder per dataset) or set ``PERCEPTRAX_ARCHIVE_DIR``; without either
they are skipped. MNIST is prepared once per session into a temporary tfds
data dir, so the tests never touch ``~/tensorflow_datasets``.
"""

import os
import pathlib
import subprocess
import sys

# Compiling is most of a test's time, and XLA's backend optimizations are most of
# compiling: the tests compile with them mostly off (JAX's jax_disable_most_optimizations:
# LLVM at -O0, no expensive passes), here and in the processes they start, which inherit
# the variable. The programs compute the same math, and every test checks it against the
# same independent references. Tests that run a ConvNet long enough for the slower code to
# cost more than it saves, or that depend on the users' exact numerics (a divergence's
# trajectory), run with ``helpers.USERS_COMPILER``. JAX_DISABLE_MOST_OPTIMIZATIONS=0 runs
# the whole suite with the users' compiler settings.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import jax
import pytest

from data import archives
from data import files
from tests.helpers import COMPILATION_CACHE
from tests.helpers import ROOT
from tests.helpers import USERS_COMPILER

# Catch silent broadcasting and dtype promotion bugs.
jax.config.update("jax_numpy_rank_promotion", "raise")

# Most of a test's time is XLA compiling small programs (an eager random
# initializer of a new shape compiles for 0.3-1 s on CPU). JAX's persistent
# compilation cache keeps them for the next run, here and in the entrypoints
# the tests start; $JAX_COMPILATION_CACHE_DIR overrides the folder.
jax.config.update("jax_compilation_cache_dir", COMPILATION_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_addoption(parser):
  parser.addoption(
      "--archive_dir",
      default=None,
      help=f"folder of dataset archives (default: ${archives.ARCHIVE_DIR_ENV}); "
      "real-data tests are skipped without it",
  )


def _real_data_skipped(config) -> str | None:
  """Why this run's real-data tests skip, or None when MNIST's archives are there."""
  path = archives.resolve_archive_dir(config.getoption("--archive_dir"))
  if not path:
    return f"no --archive_dir or ${archives.ARCHIVE_DIR_ENV}: the real-data tests skip"
  folder = os.path.join(path, "mnist")
  missing = [f for f in archives.ARCHIVES["mnist"] if not os.path.isfile(os.path.join(folder, f))]
  if missing:
    return f"{', '.join(missing)} missing from {folder}: the real-data tests skip"
  return None


def pytest_report_header(config):
  skipped = _real_data_skipped(config)
  return f"perceptrax: {skipped}" if skipped else None


def pytest_terminal_summary(terminalreporter, config):
  skipped = _real_data_skipped(config)
  if skipped:
    terminalreporter.write_line(f"perceptrax: {skipped}", yellow=True, bold=True)


@pytest.fixture(scope="session")
def archive_dir(request):
  skipped = _real_data_skipped(request.config)
  if skipped:
    pytest.skip(skipped)
  return os.path.abspath(archives.resolve_archive_dir(request.config.getoption("--archive_dir")))


@pytest.fixture(scope="session")
def mnist_data_dir(archive_dir, tmp_path_factory):
  """A tfds data dir with MNIST prepared from the archives (and its array cache).

  One folder for the whole session, shared by the parallel test processes
  (pytest-xdist's workers have sibling temporary folders): the first prepares
  MNIST as a user's first run does, the README's main job for one epoch with
  its console going to a file (``first_run_console``), and the others wait.
  """
  root = _session_folder(tmp_path_factory)
  data_dir = root / "tfds"
  with files.exclusive_lock(str(root / "first_run.lock")):
    if not (root / "first_run" / "summary.json").exists():
      with open(root / "first_run.console", "w", encoding="utf-8") as console:
        result = subprocess.run(
            [sys.executable, "-m", "experiments.mnist", *TRAINED["mlp"], "--num_epochs=1",
             f"--archive_dir={archive_dir}", f"--tfds_data_dir={data_dir}",
             f"--workdir={root / 'first_run'}"], cwd=ROOT,
            stdout=console, stderr=subprocess.STDOUT, timeout=600,
            env={**os.environ, "JAX_COMPILATION_CACHE_DIR": COMPILATION_CACHE,
                 **USERS_COMPILER})
      assert result.returncode == 0, (root / "first_run.console").read_text()[-3000:]
  return str(data_dir)


def _session_folder(tmp_path_factory):
  """The session's temporary folder, shared by pytest-xdist's workers (the parent of theirs)."""
  root = tmp_path_factory.getbasetemp()
  return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


@pytest.fixture(scope="session")
def first_run_console(mnist_data_dir) -> str:
  """What the first run printed (stdout and stderr, to a file: not a terminal) while it
  prepared MNIST into an empty tfds folder and trained an MLP for one epoch."""
  with open(os.path.join(os.path.dirname(mnist_data_dir), "first_run.console"),
            encoding="utf-8") as f:
    return f.read()


# The models the prediction, export and serving tests share: one epoch on real MNIST.
# The cnn and the lstm train on 10 000 images (--train_size) to keep their epoch short; the
# lstm with α = 0.005 (measured: 88.8% test accuracy, 72% at α = 0.001).
TRAINED = {
    "mlp": ["--model=mlp", "--hidden_sizes=64", "--validation_size=1000"],
    "cifar_convnet": ["--model=cifar_convnet", "--validation_size=1000"],
    "cnn": ["--model=cnn", "--validation_size=1000", "--train_size=10000"],
    "lstm": ["--model=lstm", "--learning_rate=0.005", "--validation_size=1000",
             "--train_size=10000"],
}


def _made_once(path, done: str, command: list[str]):
  """Runs ``command`` (python -m ...) unless ``path/done`` exists, under a lock shared by the
  parallel test processes (the first makes it, the others wait and reuse it), compiled as
  users' runs are: the models every prediction and serving test reads."""
  with files.exclusive_lock(str(path) + ".lock"):
    if not (path / done).exists():
      result = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True,
                              text=True, timeout=600,
                              env={**os.environ, "JAX_COMPILATION_CACHE_DIR": COMPILATION_CACHE,
                                   **USERS_COMPILER})
      assert result.returncode == 0, result.stderr[-2000:]
  return path


@pytest.fixture(scope="session")
def trained(mnist_data_dir, tmp_path_factory):
  """``trained(model)``: the workdir of a ``TRAINED`` model, trained once for the session (the
  mlp's is the first run's, which prepared MNIST)."""
  root = _session_folder(tmp_path_factory) / "trained"
  first_run = os.path.join(os.path.dirname(mnist_data_dir), "first_run")
  return lambda model: pathlib.Path(first_run) if model == "mlp" else _made_once(
      root / model, "summary.json", [
      "experiments.mnist", *TRAINED[model], "--num_epochs=1", "--noplots", "--notensorboard",
      "--noprogress", f"--tfds_data_dir={mnist_data_dir}", f"--workdir={root / model}"])


@pytest.fixture(scope="session")
def exported(trained, mnist_data_dir, tmp_path_factory):
  """``exported(model)``: the folder scripts.export wrote for a ``TRAINED`` model, made once."""
  root = _session_folder(tmp_path_factory) / "exported"
  return lambda model: _made_once(root / model, "manifest.json", [
      "scripts.export", f"--workdir={trained(model)}", f"--output={root / model}",
      f"--tfds_data_dir={mnist_data_dir}"])


@pytest.fixture
def users_compiler():
  """This test's programs compile with XLA's optimizations, as users' do: convolutions run
  ten times slower without them than they take to compile."""
  previous = jax.config.values["jax_disable_most_optimizations"]
  jax.config.update("jax_disable_most_optimizations", False)
  yield
  jax.config.update("jax_disable_most_optimizations", previous)


@pytest.fixture(scope="session")
def synthetic_export(tmp_path_factory):
  """An export of a small model trained on synthetic images (no dataset needed), made once."""
  from tests import serving_helpers
  path = _session_folder(tmp_path_factory) / "synthetic_export"
  with files.exclusive_lock(str(path) + ".lock"):
    if not (path / "manifest.json").exists():
      serving_helpers.write_synthetic_export(str(path))
  return path


@pytest.fixture
def run_module():
  """Runs ``python -m MODULE FLAGS...`` from the repository root, as users do."""

  def run(module, *flags, env=None, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", module, *flags], cwd=cwd, capture_output=True, text=True,
        timeout=600, env={**os.environ, "JAX_COMPILATION_CACHE_DIR": COMPILATION_CACHE,
                          **(env or {})},
    )

  return run
