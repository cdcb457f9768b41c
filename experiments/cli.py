"""What every entrypoint shares: the data flags, XLA settings, the compilation cache, one-line errors.

Library code never reads flags; entrypoints turn flags into a config, call the
library, and ``run`` turns the errors users can cause (``UserError``, flags
that do not parse) and the environment's (``OSError``: a full disk, a missing
permission) into one line on stderr and exit status 1. Any other exception
is a bug and keeps its traceback.
"""

import logging
import os
import sys

from absl import app
from absl import flags

from data import archives
from models.registry import UserError

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
    "compilation_cache_dir",
    os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join("~", ".cache", "perceptrax", "jax"),
    "JAX persistent compilation cache ('' disables it): later runs skip XLA compilation. "
    "Default: $JAX_COMPILATION_CACHE_DIR, else ~/.cache/perceptrax/jax.",
)
FLAGS = flags.FLAGS

# XLA:CPU runs these small convolutions ~1.6-2x faster with Eigen than with its
# default YNNPACK path (measured with scripts/benchmark.py: cnn_small 1.4k -> 3.0k
# images/s, cnn 0.68k -> 1.10k on 2 cores). XLA reads XLA_FLAGS when the backend
# starts, so this must run before the first computation; a user's own setting wins.
_XLA_CPU_FLAGS = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"


def configure_xla() -> None:
  flags_now = os.environ.get("XLA_FLAGS", "")
  if "xla_cpu_experimental_ynn_fusion_type" not in flags_now:
    os.environ["XLA_FLAGS"] = f"{flags_now} {_XLA_CPU_FLAGS}".strip()


configure_xla()
# JAX logs at INFO that it found no TPU on every start: noise on CPU and GPU.
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
# Orbax logs each step of every checkpoint write at INFO through absl's logger,
# and a failed write or read as tracebacks from its threads (and asyncio's
# "exception was never retrieved"): experiments/training/checkpoints.py reports
# every failure itself, in one line.
logging.getLogger("absl").addFilter(lambda record: "orbax" not in record.pathname)
logging.getLogger("asyncio").setLevel(logging.CRITICAL)


def _unraisable(info) -> None:
  """Drops the "Event loop is closed" that tensorstore's callbacks raise after a failed write."""
  if isinstance(info.exc_value, RuntimeError) and str(info.exc_value) == "Event loop is closed":
    return
  sys.__unraisablehook__(info)


sys.unraisablehook = _unraisable


def enable_compilation_cache(path: str) -> None:
  """Persists compiled programs on disk; measured to cut a second start by seconds."""
  if not path:
    return
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_compilation_cache_dir", os.path.expanduser(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _fail(message: str) -> None:
  """Prints the one line and exits with status 1 at once.

  The interpreter's teardown is skipped (``os._exit``): after a failed
  checkpoint write, Orbax's background threads would print "Event loop is
  closed" tracebacks under the line. Everything the project writes is
  already on disk (atomic, fsynced) by then.
  """
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.stdout.flush()
  os._exit(1)  # pylint: disable=protected-access


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a flag that does not parse reported as one line."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    _fail(str(e).splitlines()[0])


def run(main, takes_arguments: bool = False) -> None:
  """``absl.app.run(main)``, with user errors printed as one line and exit status 1.

  Positional arguments are refused in one line unless ``takes_arguments``.
  """

  def guarded(argv):
    if len(argv) > 1 and not takes_arguments:
      _fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
      return main(argv)
    except UserError as e:
      _fail(str(e))
    except OSError as e:  # the environment's fault (a full disk, a missing permission)
      where = " -> ".join(str(p) for p in (e.filename, e.filename2) if p)
      _fail(f"{where}: {e.strerror or e}" if where else str(e))

  app.run(guarded, flags_parser=_parse_flags)
