"""Learning-rate schedules against their formulas."""

import math

import numpy as np
import pytest

from data import errors
from models import schedules

PEAK, TOTAL = 0.2, 100


@pytest.mark.parametrize("t", [0, 1, 37, 49, 50, 74, 75, 99, 100])
def test_schedules_follow_their_formulas(t):
  cosine = PEAK * (1 + math.cos(math.pi * t / TOTAL)) / 2
  warm = 10
  if t < warm:
    warmup_cosine = PEAK * t / warm
  else:
    warmup_cosine = PEAK * (1 + math.cos(math.pi * (t - warm) / (TOTAL - warm))) / 2
  expected = {
      "constant": PEAK,
      "step": PEAK * 0.5 ** ((t >= 50) + (t >= 75)),
      "cosine": cosine,
      "warmup_cosine": warmup_cosine,
  }
  for name in schedules.SCHEDULES:
    schedule = schedules.learning_rate_schedule(
        name, PEAK, TOTAL, warmup_steps=warm, decay_rate=0.5)
    # float32: errors are relative to the peak, e.g. cos near π has absolute error ~1e-8 α.
    np.testing.assert_allclose(float(schedule(t)), expected[name], rtol=0, atol=1e-6 * PEAK,
                               err_msg=f"{name} at t={t}")


def test_bad_schedules_are_refused():
  with pytest.raises(errors.UserError, match="unknown schedule 'linear'"):
    schedules.learning_rate_schedule("linear", PEAK, TOTAL)
  with pytest.raises(errors.UserError, match="warmup must last between 1 and 99 updates, got 100"):
    schedules.learning_rate_schedule("warmup_cosine", PEAK, TOTAL, warmup_steps=100)
