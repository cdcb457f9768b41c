"""One way to time a compiled function: compile ahead of time, then run, each timed apart.

``jax.jit(fn).lower(*args).compile()`` compiles without running, so the run
that follows is timed alone (``block_until_ready`` waits for its results);
XLA's memory analysis of the compiled program says how many bytes it holds
besides its arguments and results.
"""

import time
from typing import Any
from typing import NamedTuple

import jax


class Timed(NamedTuple):
  out: Any  # what fn returned
  compile_seconds: float
  seconds: float  # the run alone
  temp_bytes: int  # XLA's figure for the program's own buffers


def compile_and_run(fn, *args) -> Timed:
  """``fn(*args)`` compiled ahead of time, then run; both timed."""
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compiled_at = time.perf_counter()
  out = jax.block_until_ready(compiled(*args))
  seconds = time.perf_counter() - compiled_at
  analysis = compiled.memory_analysis()
  return Timed(out, compiled_at - start, seconds,
               int(getattr(analysis, "temp_size_in_bytes", 0) or 0))
