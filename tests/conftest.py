"""Shared test set-up: strict JAX numerics, the offline archive folder, prepared MNIST.

Real-data tests need the official archives: pass ``--archive_dir=DIR``
(one subfolder per dataset) or set ``PERCEPTRAX_ARCHIVE_DIR``; without either
they are skipped. MNIST is prepared once per session into a temporary tfds
data dir, so the tests never touch ``~/tensorflow_datasets``.
"""

import os
import subprocess
import sys

import jax
import pytest

from data import archives
from data import datasets

# Catch silent broadcasting and dtype promotion bugs.
jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_addoption(parser):
  parser.addoption(
      "--archive_dir",
      default=None,
      help=f"folder of dataset archives (default: ${archives.ARCHIVE_DIR_ENV}); "
      "real-data tests are skipped without it",
  )


@pytest.fixture(scope="session")
def archive_dir(request):
  path = archives.resolve_archive_dir(request.config.getoption("--archive_dir"))
  if not path:
    pytest.skip("no --archive_dir or $PERCEPTRAX_ARCHIVE_DIR: real-data test skipped")
  return os.path.abspath(path)


@pytest.fixture(scope="session")
def mnist_data_dir(archive_dir, tmp_path_factory):
  """A tfds data dir with MNIST prepared from the archives (and its array cache)."""
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  datasets.load_arrays("mnist", archive_dir, data_dir)
  return data_dir


@pytest.fixture
def run_module():
  """Runs ``python -m MODULE FLAGS...`` from the repository root, as users do."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

  def run(module, *flags, env=None):
    return subprocess.run(
        [sys.executable, "-m", module, *flags], cwd=root, capture_output=True, text=True,
        timeout=600, env={**os.environ, **(env or {})},
    )

  return run
