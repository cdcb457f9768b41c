"""data/files.py: atomic writes, verified files, locks, writability checks."""

import errno
import multiprocessing
import os
import stat

import pytest

from data import files
from data.errors import UserError

# A folder that refuses new files even to root (sysfs); None where there is none.
READ_ONLY = "/sys/kernel" if os.path.isdir("/sys/kernel") else None


def _is_read_only(path):
  try:
    with open(os.path.join(path, "probe"), "w"):
      return False
  except OSError:
    return True


needs_read_only = pytest.mark.skipif(READ_ONLY is None or not _is_read_only(READ_ONLY),
                                     reason="no read-only folder (/sys/kernel) here")


def test_an_atomic_write_replaces_the_file_whole_with_ordinary_permissions(tmp_path):
  path = tmp_path / "sub" / "a.json"
  files.write_json(str(path), {"x": 1})
  files.write_json(str(path), {"x": 2})
  assert files.read_json(str(path)) == {"x": 2}
  assert os.listdir(path.parent) == ["a.json"]  # no temporary file left
  umask = os.umask(0)
  os.umask(umask)
  assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask

  def fail(f):
    f.write(b"half")
    raise RuntimeError("killed")

  with pytest.raises(RuntimeError):
    files.write_atomically(str(path), fail)
  assert files.read_json(str(path)) == {"x": 2} and os.listdir(path.parent) == ["a.json"]


def test_a_damaged_json_file_is_one_line_naming_it(tmp_path):
  path = tmp_path / "plan.json"
  path.write_text('{"0": "vmapped"')
  with pytest.raises(UserError, match=f"{path} is damaged"):
    files.read_json(str(path))
  with pytest.raises(UserError, match=f"cannot read {tmp_path / 'missing.json'}: No such file"):
    files.read_json(str(tmp_path / "missing.json"))


def test_verified_files_detect_any_changed_byte(tmp_path):
  path = str(tmp_path / "arrays.npz")
  files.write_verified(path, b"0123456789" * 100)
  assert files.read_verified(path) == b"0123456789" * 100
  with open(path, "r+b") as f:
    f.seek(500)
    f.write(b"X")
  with pytest.raises(ValueError, match="do not match its SHA-256 digest"):
    files.read_verified(path)
  os.remove(path + ".sha256")
  with pytest.raises(ValueError, match="cannot read .*arrays.npz.sha256"):
    files.read_verified(path)


def _hold(path, ready, release):
  with files.workdir_lock(path):
    ready.set()
    release.wait(30)


# Spawned, not forked: forking a process that runs JAX's threads can deadlock.
_SPAWN = multiprocessing.get_context("spawn")


def test_a_second_process_on_a_workdir_is_refused_naming_the_holder(tmp_path):
  ready, release = _SPAWN.Event(), _SPAWN.Event()
  holder = _SPAWN.Process(target=_hold, args=(str(tmp_path), ready, release))
  holder.start()
  try:
    assert ready.wait(30)
    with pytest.raises(UserError) as raised:
      with files.workdir_lock(str(tmp_path)):
        pass
    assert str(raised.value) == (f"{tmp_path} is in use by another process (pid {holder.pid}); "
                                 "wait for it to finish, or use another --workdir")
  finally:
    release.set()
    holder.join()
  with files.workdir_lock(str(tmp_path)):  # free again once the holder is gone
    pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
  ready, release = _SPAWN.Event(), _SPAWN.Event()
  holder = _SPAWN.Process(target=_hold, args=(str(tmp_path), ready, release))
  holder.start()
  assert ready.wait(30)
  holder.kill()
  holder.join()
  with files.workdir_lock(str(tmp_path)):  # the kernel released it
    pass


def test_a_lock_never_follows_a_link_nor_opens_anything_but_a_regular_file(tmp_path):
  """A link planted in a shared folder must not make the run overwrite its target."""
  victim = tmp_path / "victim.txt"
  victim.write_text("precious\n")
  workdir = tmp_path / "w"
  workdir.mkdir()
  (workdir / ".lock").symlink_to(victim)
  with pytest.raises(UserError, match=r"\.lock is a symbolic link, which a lock never follows; "
                                      "remove it"):
    with files.workdir_lock(str(workdir)):
      pass
  assert victim.read_text() == "precious\n"
  fifo = tmp_path / "fifo"
  os.mkfifo(fifo)
  with pytest.raises(UserError, match="is not a regular file, so it cannot be a lock"):
    with files.exclusive_lock(str(fifo)):
      pass
  assert files.lock_holder(str(workdir / ".lock")) == "unknown"  # nor does reading the pid


def test_a_full_disk_names_the_file_and_leaves_the_old_one(tmp_path):
  path = tmp_path / "summary.json"
  path.write_text("old")

  def full(f):
    f.write(b"new")
    raise OSError(errno.ENOSPC, "No space left on device")  # as a failed write says it

  with pytest.raises(OSError) as raised:
    files.write_atomically(str(path), full)
  assert raised.value.filename == str(path) and raised.value.errno == errno.ENOSPC
  assert path.read_text() == "old" and os.listdir(tmp_path) == ["summary.json"]


def test_a_killed_writers_temporaries_are_removed_and_nothing_else(tmp_path):
  path = tmp_path / "mnist.npz"
  stale = [tmp_path / ".mnist.npz.abc123.tmp", tmp_path / ".mnist.npz.sha256.x9.tmp"]
  kept = [tmp_path / "mnist.npz.lock", tmp_path / ".other.npz.q.tmp", tmp_path / "mnist.npz.tmp"]
  for f in stale + kept:
    f.write_text("x")
  assert sorted(files.remove_stale_temporaries(str(path))) == sorted(map(str, stale))
  assert sorted(os.listdir(tmp_path)) == sorted(f.name for f in kept)


def test_folders_that_cannot_be_written_are_one_line(tmp_path):
  a_file = tmp_path / "file"
  a_file.write_text("")
  for path, reason in ((a_file, "it is a file, not a directory"),
                       (a_file / "sub", "Not a directory")):
    with pytest.raises(UserError, match=f"cannot write to {path}: {reason}"):
      files.check_writable(str(path))
  with pytest.raises(UserError, match="a directory to write to must be given"):
    files.check_writable("")
  files.check_writable(str(tmp_path / "new" / "folder"))  # created
  assert os.listdir(tmp_path / "new" / "folder") == []


@needs_read_only
def test_a_read_only_folder_is_one_line_with_the_os_reason(tmp_path):
  with pytest.raises(UserError, match=f"cannot write to {READ_ONLY}: Permission denied"):
    files.check_writable(READ_ONLY)
  with pytest.raises(UserError, match=f"cannot write to {READ_ONLY}/sub: Operation not permitted"):
    files.check_writable(f"{READ_ONLY}/sub")
