"""Learning-rate schedules: the step size α_t at update t of T, from a peak α.

| name          | α_t                                                              |
|---------------|------------------------------------------------------------------|
| constant      | α                                                                |
| step          | α r^k, k = number of the boundaries T/2 and 3T/4 that t has passed |
| cosine        | α (1 + cos(π t / T)) / 2: from α at t = 0 to 0 at t = T          |
| warmup_cosine | α t / W for t < W, then cosine from α at W to 0 at T             |

All are Optax schedules (``optax.constant_schedule``,
``optax.piecewise_constant_schedule``, ``optax.cosine_decay_schedule``,
``optax.warmup_cosine_decay_schedule``).
"""

import optax

from data import errors


def _constant(peak, total_steps, warmup_steps, decay_rate):
  del total_steps, warmup_steps, decay_rate
  return optax.constant_schedule(peak)


def _step(peak, total_steps, warmup_steps, decay_rate):
  del warmup_steps
  boundaries = {total_steps // 2: decay_rate, (3 * total_steps) // 4: decay_rate}
  return optax.piecewise_constant_schedule(peak, boundaries)


def _cosine(peak, total_steps, warmup_steps, decay_rate):
  del warmup_steps, decay_rate
  return optax.cosine_decay_schedule(peak, total_steps)


def _warmup_cosine(peak, total_steps, warmup_steps, decay_rate):
  del decay_rate
  if not 0 < warmup_steps < total_steps:
    raise errors.UserError(
        f"warmup must last between 1 and {total_steps - 1} updates, got {warmup_steps}")
  return optax.warmup_cosine_decay_schedule(0.0, peak, warmup_steps, total_steps)


SCHEDULES = errors.Registry("schedule", {
    "constant": _constant, "step": _step, "cosine": _cosine, "warmup_cosine": _warmup_cosine})


def learning_rate_schedule(
    name: str, peak: float, total_steps: int, warmup_steps: int = 0, decay_rate: float = 0.1
) -> optax.Schedule:
  """The schedule ``name`` over ``total_steps`` updates (see the module table).

  Args:
    name: one of SCHEDULES.
    peak: α.
    total_steps: T, the number of updates in the run.
    warmup_steps: W, for warmup_cosine (0 < W < T).
    decay_rate: r, for step.
  """
  return SCHEDULES.get(name)(peak, total_steps, warmup_steps, decay_rate)
