"""What every entrypoint shares (experiments/cli.py): the compilation cache's damaged entries."""

import os
import time

from jax._src import compilation_cache

from experiments import cli


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
