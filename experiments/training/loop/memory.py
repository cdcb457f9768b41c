"""Will it fit? A run's memory need, estimated from shapes before anything is allocated.

Per model: 3 copies of the parameters (params, gradient, update), the
optimizer state, and 2 x the activations of one forward pass (kept for the
backward pass, and their gradients) over the examples of one pass; plus the
dataset on the device once. Compared with the first device's free memory
(the allocator's limit on GPU, free RAM on CPU), so a model that cannot fit
is refused in one line instead of allocating for a minute and dying.
"""

import math
import os

import jax
import jax.numpy as jnp

from data.errors import UserError
from experiments.training.loop import dataset
from experiments.training.loop import run as run_lib
from experiments.training.loop import state as state_lib


def member_bytes(run: run_lib.Run) -> int:
  """Estimated device bytes for one member, from shapes alone (nothing is compiled)."""
  examples = min(run.plan.batch_size, run.config.chunk_size)
  x = jax.ShapeDtypeStruct((1, *run.input_shape), jnp.float32)
  variables = jax.eval_shape(lambda: state_lib.init_variables(run, 0))
  opt_state = jax.eval_shape(run.optimizer(run.config).init, variables["params"])
  _, intermediates = jax.eval_shape(
      lambda v, x: run.model.apply(v, x, train=False, capture_intermediates=True,
                                   mutable=["intermediates"], rngs={"sample": jax.random.key(0)}),
      variables, x)

  def size(tree):
    return sum(math.prod(a.shape) * a.dtype.itemsize for a in jax.tree.leaves(tree)
               if hasattr(a, "shape"))

  return 3 * size(variables["params"]) + size(opt_state) + 2 * size(intermediates) * examples


def available_bytes() -> int:
  """Free memory of the first device: the allocator's limit on GPU, free RAM on CPU."""
  stats = jax.local_devices()[0].memory_stats() or {}
  if "bytes_limit" in stats:
    return stats["bytes_limit"] - stats.get("bytes_in_use", 0)
  return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _gib(n: int) -> str:
  return f"{n / 2**30:.2f} GiB"


def members_that_fit(run: run_lib.Run, data: dataset.HostData, wanted: int,
                     what: str) -> int:
  """``wanted`` if that many members of ``run`` fit in one program; else UserError.

  ``what`` says what to change in the message (e.g. "set --models_per_program
  to at most {n}").
  """
  data_bytes = data.num_bytes
  per_member = member_bytes(run)
  free = available_bytes()
  if data_bytes + wanted * per_member > free:
    models = (f"{wanted} {run.config.model} models of {run.config.optimizer} in one program need"
              if wanted > 1 else f"the {run.config.model} model with {run.config.optimizer} needs")
    raise UserError(
        f"{models} about "
        f"{_gib(wanted * per_member)} (+ {_gib(data_bytes)} of data), more than the "
        f"{_gib(free)} available; "
        + what.format(n=max(0, (free - data_bytes) // per_member)))
  return wanted
