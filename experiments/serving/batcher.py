"""Dynamic batching: concurrent requests' images gathered into one call of the model.

Requests queue their images; one task takes every queued request at once,
waits at most ``max_wait`` seconds for more while the batch is below
``max_batch`` images, and runs the model on the concatenation in a worker
thread (the event loop keeps accepting requests meanwhile), or, for a batch
size whose model call ``warm`` measured under ``INLINE_SECONDS``, on the event
loop itself: handing a call of a few tens of microseconds to a thread and
back costs more than the call. A batch is padded
with zero images to the next of ``sizes`` (powers of two up to ``max_batch``),
for each of which the model is compiled by ``warm`` at start-up: no request
ever waits for a compilation. A request larger than ``max_batch`` runs in
``max_batch`` slices.
"""

import asyncio
import concurrent.futures
import time
from collections.abc import Callable

import numpy as np

INLINE_SECONDS = 0.0005


def batch_sizes(max_batch: int) -> tuple[int, ...]:
  """1, 2, 4, ... up to ``max_batch``, and ``max_batch`` itself."""
  sizes = [1 << i for i in range(max_batch.bit_length()) if 1 << i < max_batch]
  return (*sizes, max_batch)


class Batcher:
  """Runs ``predict`` (uint8 images (b, H, W, C) -> outputs (b, ...)) on gathered requests."""

  def __init__(self, predict: Callable[[np.ndarray], np.ndarray], input_shape, max_batch: int,
               max_wait: float, on_batch: Callable[[int], None] = lambda size: None):
    self._predict = predict
    self._input_shape = tuple(input_shape)
    self.max_batch = max_batch
    self.max_wait = max_wait
    self.sizes = batch_sizes(max_batch)
    self._on_batch = on_batch
    self._queue: asyncio.Queue | None = None
    self._task = None
    self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="model")
    self._inline = set()  # the batch sizes run on the event loop

  def warm(self) -> None:
    """Compiles the model for every batch size of ``sizes``, then times a call of each."""
    for size in self.sizes:
      images = np.zeros((size, *self._input_shape), np.uint8)
      self._predict(images)
      start = time.perf_counter()
      self._predict(images)
      if time.perf_counter() - start < INLINE_SECONDS:
        self._inline.add(size)

  def _padded(self, images: np.ndarray) -> np.ndarray:
    """``predict`` of up to ``max_batch`` images, padded to a compiled size."""
    n = len(images)
    size = next(s for s in self.sizes if s >= n)
    if size > n:
      images = np.concatenate([images, np.zeros((size - n, *self._input_shape), np.uint8)])
    return np.asarray(self._predict(images))[:n]

  def _run(self, images: np.ndarray) -> np.ndarray:
    return np.concatenate([self._padded(images[i:i + self.max_batch])
                           for i in range(0, len(images), self.max_batch)])

  async def start(self) -> None:
    self._queue = asyncio.Queue()
    self._task = asyncio.get_running_loop().create_task(self._loop())

  async def stop(self) -> None:
    if self._task is not None:
      self._task.cancel()
      await asyncio.gather(self._task, return_exceptions=True)
    self._thread.shutdown(wait=True)

  async def predict(self, images: np.ndarray) -> np.ndarray:
    """The model's outputs for ``images``, computed in a batch with other requests'."""
    future = asyncio.get_running_loop().create_future()
    self._queue.put_nowait((images, future))
    return await future

  def _runs_inline(self, n: int) -> bool:
    return n <= self.max_batch and next(s for s in self.sizes if s >= n) in self._inline

  async def _loop(self) -> None:
    loop = asyncio.get_running_loop()
    while True:
      batch = [await self._queue.get()]
      count = len(batch[0][0])
      deadline = loop.time() + self.max_wait
      while count < self.max_batch:
        if self._queue.empty():
          remaining = deadline - loop.time()
          if remaining <= 0:
            break
          try:
            batch.append(await asyncio.wait_for(self._queue.get(), remaining))
          except TimeoutError:
            break
        else:
          batch.append(self._queue.get_nowait())
        count += len(batch[-1][0])
      images = np.concatenate([item[0] for item in batch]) if len(batch) > 1 else batch[0][0]
      self._on_batch(len(images))
      try:
        if self._runs_inline(len(images)):
          outputs = self._run(images)
        else:
          outputs = await loop.run_in_executor(self._thread, self._run, images)
      except Exception as e:  # each request gets the error
        for _, future in batch:
          if not future.done():
            future.set_exception(e)
        continue
      start = 0
      for item, future in batch:
        if not future.done():  # a request whose client went away is cancelled
          future.set_result(outputs[start:start + len(item)])
        start += len(item)
