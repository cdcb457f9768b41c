"""What every entrypoint shares: the data flags, XLA settings, the compilation cache, one-line errors.

Library code never reads flags; entrypoints turn flags into a config, call the
library, and ``run`` turns the errors users can cause (``UserError``, flags
that do not parse) and the environment's (``OSError``: a full disk, a missing
permission) into one line on stderr and exit status 1. Any other exception
is a bug and keeps its traceback.
"""

import contextlib
import io
import logging
import os
import signal
import sys
import time

import tqdm
from absl import app
from absl import flags
from absl import logging as absl_logging

from data import archives
from data import errors
from data.errors import UserError
from experiments.training.loop import signals

flags.DEFINE_string(
    "archive_dir", None,
    "Folder with one subfolder per dataset (mnist/, fashion_mnist/) holding its official "
    f"archives; tfds prepares the dataset from them offline. Default: ${archives.ARCHIVE_DIR_ENV}.",
)
flags.DEFINE_string(
    "tfds_data_dir", None,
    "Where tfds keeps prepared datasets (tfds's default: $TFDS_DATA_DIR or ~/tensorflow_datasets).",
)
flags.DEFINE_string(
    "compilation_cache_dir", None,
    "JAX persistent compilation cache ('' disables it): later runs skip XLA compilation. "
    "Default: $JAX_COMPILATION_CACHE_DIR, else ~/.cache/perceptrax/jax.",
)
FLAGS = flags.FLAGS

# XLA:CPU runs these small convolutions faster with Eigen than with its default
# YNNPACK path (README, Benchmark). XLA reads XLA_FLAGS when the backend starts.
_XLA_CPU_FLAGS = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"


def configure_process() -> None:
  """What every entrypoint sets before its first computation: XLA flags, quiet logs.

  A user's own XLA setting wins. JAX's "no TPU found" INFO line is dropped;
  Orbax's per-step INFO lines and the tracebacks its threads print for a
  failed write or read are dropped too (``checkpoints.py`` reports every
  failure in one line), as is the "Event loop is closed" that tensorstore's
  callbacks raise after a failed write; tfds's and TensorFlow's lines below
  ERROR are dropped. Log lines go above progress bars (``_AboveBars``).
  """
  flags_now = os.environ.get("XLA_FLAGS", "")
  if "xla_cpu_experimental_ynn_fusion_type" not in flags_now:
    os.environ["XLA_FLAGS"] = f"{flags_now} {_XLA_CPU_FLAGS}".strip()
  logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
  logging.getLogger("absl").addFilter(_own_lines)
  absl_logging.get_absl_handler().python_handler.stream = _AboveBars()
  logging.getLogger("asyncio").setLevel(logging.CRITICAL)
  sys.unraisablehook = _unraisable
  for signum in signals.SIGNALS:  # one line instead of a traceback or a silent death
    signal.signal(signum, _stop)


def _stop(signum, frame) -> None:
  """Outside training (which stops at a step boundary: ``loop/signals.py``), stop at once."""
  del frame
  raise errors.Interrupted(f"stopped by {signal.Signals(signum).name}", signum)


def _own_lines(record: logging.LogRecord) -> bool:
  """Orbax's lines never (its failures are reported in one line), tfds's and TF's only errors."""
  if "orbax" in record.pathname:
    return False
  return record.levelno >= logging.ERROR or not any(
      part in record.pathname for part in ("tensorflow_datasets", "tensorflow/"))


class _AboveBars(io.TextIOBase):
  """The log's stream: each line written above any progress bar, never glued to one.

  On a terminal ``tqdm.write`` clears the bars, writes the line and draws
  them again.
  """

  def write(self, text: str) -> int:
    if sys.stderr.isatty():
      tqdm.tqdm.write(text, file=sys.stderr, end="")
    else:  # the bars write whole lines there (data/progress.py)
      sys.stderr.write(text)
    return len(text)

  def flush(self) -> None:
    sys.stderr.flush()


def _unraisable(info) -> None:
  """Drops what Orbax's and tensorstore's leftovers raise after a failed read or write."""
  if isinstance(info.exc_value, RuntimeError) and str(info.exc_value) == "Event loop is closed":
    return
  code = getattr(info.object, "cr_code", None)  # a coroutine of Orbax's never awaited
  if code is not None and "orbax" in code.co_filename:
    return
  sys.__unraisablehook__(info)


def enable_compilation_cache(path: str | None) -> None:
  """Persists compiled programs on disk, so a later run of the same program skips compiling it.

  ``path`` None: $JAX_COMPILATION_CACHE_DIR, else ~/.cache/perceptrax/jax; '': no cache.
  """
  if path is None:
    path = os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join("~", ".cache", "perceptrax",
                                                                        "jax")
  if not path:
    return
  import jax
  path = os.path.expanduser(path)
  if os.path.isdir(path):
    remove_unreadable_cache_entries(path)
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


CACHE_VERIFIED = ".perceptrax-verified"  # its time: every entry older has been read back


def remove_unreadable_cache_entries(path: str) -> list[str]:
  """Removes the compilation-cache entries that no longer decompress; returns their names.

  JAX writes an entry in place and never replaces one, so an entry cut by a
  full disk would be refused (with a warning) by every later run, forever.
  Each entry written since the last check is decompressed once (~0.3 ms per
  entry); one that fails is removed, and the next run compiles and writes it
  again.
  """
  from jax._src import compilation_cache
  marker = os.path.join(path, CACHE_VERIFIED)
  since = os.path.getmtime(marker) if os.path.exists(marker) else 0.0
  checked_at, removed = time.time(), []
  for entry in os.scandir(path):
    if not entry.name.endswith("-cache") or entry.stat().st_mtime < since:
      continue
    try:
      with open(entry.path, "rb") as f:
        compilation_cache.decompress_executable(f.read())
    except Exception:  # any damage: compile it again
      for name in (entry.name, entry.name[:-len("-cache")] + "-atime"):
        with contextlib.suppress(FileNotFoundError):
          os.unlink(os.path.join(path, name))
      removed.append(entry.name)
  with contextlib.suppress(OSError):  # a read-only cache is still read
    with open(marker, "w", encoding="ascii"):
      pass
    os.utime(marker, (checked_at, checked_at))
  return removed


def _fail_if_peer_lost(error: BaseException) -> None:
  """One line when ``error`` comes from a collective whose peer process is gone.

  Exits at once (``_fail``), before JAX's shutdown waits for the lost process
  at its barrier (the heartbeat timeout, 100 s) and then aborts the process
  with a C++ stack dump.
  """
  distributed = sys.modules.get("experiments.training.processes.distributed")  # imported only by joined runs
  message = distributed.lost_peer(error) if distributed else None
  if message:
    _fail(message)


def _fail(message: str, status: int = 1) -> None:
  """Prints the one line and exits with ``status`` at once.

  The interpreter's teardown is skipped (``os._exit``): after a failed
  checkpoint write, Orbax's background threads would print "Event loop is
  closed" tracebacks under the line. Everything the project writes is
  already on disk (atomic, fsynced) by then.
  """
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.stdout.flush()
  os._exit(status)


def check_archive_dir() -> None:
  """UserError unless --archive_dir (else $PERCEPTRAX_ARCHIVE_DIR), when set, names an existing
  folder: checked before anything else, whatever the cache holds."""
  where = archives.resolve_archive_dir(FLAGS.archive_dir)
  if where:
    errors.check_folder("--archive_dir" if FLAGS.archive_dir else f"${archives.ARCHIVE_DIR_ENV}",
                        where)


def written(workdir: str, figures=(), results=("summary.json",)) -> str:
  """An entrypoint's last words: the workdir, the results and the figures (file names) in it."""
  line = f"results in {workdir}: {', '.join(results)}"
  return f"{line}; figures: {', '.join(figures)}" if figures else line


HELP_FLAGS = ("--help", "-help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml")
SHORT_HELP_FLAGS = ("--help", "-help", "-h", "-?", "--helpshort")


def _parse_flags(argv: list[str], help_text=None) -> list[str]:
  """absl's flag parsing, with a flag that does not parse reported as one line.

  Asking for help is a success: absl prints it and exits with status 1,
  which would fail ``--help && ...``; it exits 0 here. ``help_text()``, when
  given, is the entrypoint's own help (absl's ``--helpfull`` lists every flag).
  """
  if help_text and any(a.split("=")[0] in SHORT_HELP_FLAGS for a in argv[1:]):
    print(help_text())
    sys.exit(0)
  try:
    return FLAGS(argv)
  except flags.Error as e:
    _fail(str(e).splitlines()[0])
  except SystemExit as e:
    if e.code == 1 and any(a.split("=")[0] in HELP_FLAGS for a in argv[1:]):
      sys.exit(0)
    raise


def run(main, takes_arguments: bool = False, help_text=None) -> None:
  """``absl.app.run(main)``, with user errors printed as one line and exit status 1.

  Positional arguments are refused in one line unless ``takes_arguments``;
  ``help_text()`` is the entrypoint's whole ``--help`` (else absl's: its key flags).
  """

  def guarded(argv):
    configure_process()
    if len(argv) > 1 and not takes_arguments:
      _fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
      check_archive_dir()
      return main(argv)
    except errors.Interrupted as e:
      _fail(str(e), e.exit_status)
    except Exception as e:  # a bug re-raised: its traceback
      _fail_if_peer_lost(e)  # whatever the lost peer interrupted (a step, a checkpoint write)
      if isinstance(e, UserError):
        _fail(str(e), e.exit_status)
      if isinstance(e, OSError):  # the environment's fault (a full disk, a missing permission)
        where = " -> ".join(str(p) for p in (e.filename, e.filename2) if p)
        _fail(f"{where}: {e.strerror or e}" if where else str(e))
      raise

  app.run(guarded, flags_parser=lambda argv: _parse_flags(argv, help_text))
