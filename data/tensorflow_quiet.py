"""TensorFlow, imported without its C++ start-up lines and kept off the accelerators.

TensorFlow's native logging prints a few lines when it loads (absl's
"before InitializeLog" warning, oneDNN's notice) whatever Python's logging
says: ``TF_CPP_MIN_LOG_LEVEL`` is set before it loads and file descriptor 2
points to /dev/null while it does (Python's own errors still raise). JAX,
not TensorFlow, owns any GPU.
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
  """File descriptor 2 points to /dev/null for the body (Python's own errors still raise)."""
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  try:
    os.dup2(devnull, 2)
    yield
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


def tensorflow():
  """The ``tensorflow`` module, loaded quietly (module docstring)."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  with native_stderr_silenced():
    import tensorflow as tf  # imported here: seconds to import
  tf.config.set_visible_devices([], "GPU")
  return tf
