"""What every entrypoint shares: data flags, compilation cache, one-line errors.

Library code never reads flags; entrypoints turn flags into a config, call the
library, and ``run`` turns the errors users can cause into one line on stderr
and exit status 1 (no traceback).
"""

import logging
import os
import sys

import jax
from absl import app
from absl import flags

from data import archives
from experiments import config as config_lib
from experiments import train

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
    "compilation_cache_dir", os.path.join("~", ".cache", "perceptrax", "jax"),
    "JAX persistent compilation cache ('' disables it): later runs skip XLA compilation.",
)

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
# Orbax logs each step of every checkpoint write at INFO through absl's logger.
logging.getLogger("absl").addFilter(
    lambda record: record.levelno >= logging.WARNING or "orbax" not in record.pathname)

# Errors a user can cause with flags or files: reported as one line.
USER_ERRORS = (config_lib.ConfigError, archives.DataError, train.TrainingDiverged, ValueError)


def enable_compilation_cache(path: str) -> None:
  """Persists compiled programs on disk; measured to cut a second start by seconds."""
  if not path:
    return
  jax.config.update("jax_compilation_cache_dir", os.path.expanduser(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def run(main) -> None:
  """``absl.app.run(main)``, with user errors printed as one line and exit status 1."""

  def guarded(argv):
    try:
      return main(argv)
    except USER_ERRORS as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(1)

  app.run(guarded)
