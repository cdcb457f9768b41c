"""What every entrypoint shares (experiments/cli.py): the compilation cache's damaged entries,
and a start that loads no heavy library."""

import os
import subprocess
import sys
import time

import pytest
from jax._src import compilation_cache

from experiments import cli
from tests.helpers import ROOT


def _entry(folder, name: str, data: bytes) -> str:
  path = os.path.join(folder, f"{name}-cache")
  with open(path, "wb") as f:
    f.write(data)
  with open(os.path.join(folder, f"{name}-atime"), "wb") as f:
    f.write(b"\0" * 8)
  return path


def test_a_cut_cache_entry_is_removed_once_and_good_ones_stay(tmp_path):
  good = compilation_cache.compress_executable(os.urandom(5000))
  _entry(tmp_path, "jit_f-good", good)
  _entry(tmp_path, "jit_f-cut", good[:len(good) // 2])  # a full disk stopped the write
  assert cli.remove_unreadable_cache_entries(str(tmp_path)) == ["jit_f-cut-cache"]
  assert sorted(os.listdir(tmp_path)) == [cli.CACHE_VERIFIED, "jit_f-good-atime",
                                          "jit_f-good-cache"]
  # Checked entries are not read again; one written later is.
  old = time.time() - 60
  os.utime(tmp_path / "jit_f-good-cache", (old, old))
  _entry(tmp_path, "jit_g-cut", b"not zstd")
  assert cli.remove_unreadable_cache_entries(str(tmp_path)) == ["jit_g-cut-cache"]


# Loaded on demand only: TensorFlow (export, tfds's preparation), matplotlib (figures), the
# serving stack. A training entrypoint that imported them would start seconds later.
HEAVY = ("tensorflow", "tensorflow_datasets", "matplotlib", "starlette", "uvicorn",
         "prometheus_client", "torch")


@pytest.mark.parametrize("module", ["experiments.mnist", "experiments.autoencoder",
                                    "experiments.gan", "scripts.sweep"])
def test_a_training_entrypoint_imports_no_heavy_library(module):
  code = (f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}} & "
          f"{set(HEAVY)!r}))")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == "[]"

