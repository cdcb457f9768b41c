"""experiments/serving/batcher.py: concurrent requests share calls, padded to compiled sizes."""

import asyncio
import threading
import time

import numpy as np
import pytest

from experiments.serving import batcher


def test_batch_sizes_are_powers_of_two_up_to_the_largest():
  assert batcher.batch_sizes(64) == (1, 2, 4, 8, 16, 32, 64)
  assert batcher.batch_sizes(100) == (1, 2, 4, 8, 16, 32, 64, 100)
  assert batcher.batch_sizes(1) == (1,)


class _Model:
  """Records the batch sizes it is called with; output: each image's sum."""

  def __init__(self):
    self.calls = []

  def __call__(self, images):
    self.calls.append(len(images))
    return images.reshape(len(images), -1).sum(1, keepdims=True).astype(np.float32)


def test_concurrent_requests_are_answered_from_shared_padded_calls():
  model = _Model()
  b = batcher.Batcher(model, (2, 2, 1), max_batch=8, max_wait=0.05)
  b.warm()
  assert model.calls == [1, 1, 2, 2, 4, 4, 8, 8]  # compiled, then timed
  model.calls.clear()

  async def run():
    await b.start()
    requests = [np.full((n, 2, 2, 1), i, np.uint8) for i, n in enumerate([1, 2, 3, 1, 12])]
    answers = await asyncio.gather(*(b.predict(r) for r in requests))
    await b.stop()
    return requests, answers

  requests, answers = asyncio.run(run())
  for request, answer in zip(requests, answers):
    np.testing.assert_array_equal(answer[:, 0], request.reshape(len(request), -1).sum(1))
  assert set(model.calls) <= {1, 2, 4, 8} and sum(model.calls) >= 19
  assert len(model.calls) <= 3  # 19 images in batches of 8 (the 12 split), not 5 calls


def test_a_failing_model_fails_its_requests_and_the_batcher_goes_on():
  calls = []

  def model(images):
    calls.append(len(images))
    if len(calls) == 1:
      raise RuntimeError("device lost")
    return np.zeros((len(images), 1), np.float32)

  b = batcher.Batcher(model, (2, 2, 1), max_batch=4, max_wait=0.0)

  async def run():
    await b.start()
    with pytest.raises(RuntimeError, match="device lost"):
      await b.predict(np.zeros((1, 2, 2, 1), np.uint8))
    answer = await b.predict(np.zeros((3, 2, 2, 1), np.uint8))
    await b.stop()
    return answer

  assert asyncio.run(run()).shape == (3, 1)


def test_fast_batch_sizes_run_on_the_event_loop_and_slow_ones_in_the_model_thread():
  """A call measured under INLINE_SECONDS is not worth a thread hand-off."""
  threads = []

  def model(images):
    threads.append((len(images), threading.current_thread().name))
    if len(images) == 4:
      time.sleep(2 * batcher.INLINE_SECONDS)
    return np.zeros((len(images), 1), np.float32)

  b = batcher.Batcher(model, (2, 2, 1), max_batch=4, max_wait=0.0)
  b.warm()
  threads.clear()

  async def run():
    await b.start()
    await b.predict(np.zeros((1, 2, 2, 1), np.uint8))
    await b.predict(np.zeros((4, 2, 2, 1), np.uint8))
    await b.stop()

  asyncio.run(run())
  assert threads[0] == (1, threading.current_thread().name)  # this test's thread runs the loop
  assert threads[1][0] == 4 and threads[1][1].startswith("model")
