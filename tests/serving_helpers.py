"""Starting scripts.serve as users do, on a free port, and waiting for its address."""

import os
import re
import selectors
import signal
import subprocess
import sys
import time

from tests.helpers import COMPILATION_CACHE
from tests.helpers import ROOT
from tests.helpers import USERS_COMPILER


class Served:
  """A running ``python -m scripts.serve``: its process and address (compiled as users' are:
  the server compiles its model for 7 batch sizes before it answers)."""

  def __init__(self, *flags, timeout: float = 120):
    self.process = subprocess.Popen(
        [sys.executable, "-m", "scripts.serve", "--port=0", *flags], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "JAX_COMPILATION_CACHE_DIR": COMPILATION_CACHE, **USERS_COMPILER})
    line = _read_line(self.process.stdout, timeout)
    found = re.search(r"at (http://[\d.]+:\d+)/", line or "")
    if not found:
      self.process.kill()
      raise AssertionError(f"the server did not start: {line!r} {self.process.stderr.read()}")
    self.url = found.group(1)

  def stop(self, sig=signal.SIGTERM, timeout: float = 60) -> tuple[int, str, str]:
    """Sends ``sig``; the exit status, stdout and stderr."""
    if self.process.poll() is None:
      self.process.send_signal(sig)
    out, err = self.process.communicate(timeout=timeout)
    return self.process.returncode, out, err


def _read_line(stream, timeout: float) -> str | None:
  selector = selectors.DefaultSelector()
  selector.register(stream, selectors.EVENT_READ)
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if selector.select(timeout=deadline - time.monotonic()):
      return stream.readline()
  return None


def synthetic_images(n: int, seed: int = 0):
  """n 28x28x1 uint8 images of 10 learnable classes (class c: a bright bar at rows 2c+4..2c+6,
  on noise) and their labels: what the synthetic export is trained on and self-tested with."""
  import numpy as np
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 10, n).astype(np.int32)
  images = rng.integers(0, 60, (n, 28, 28, 1))
  for c in range(10):
    images[labels == c, 2 * c + 4:2 * c + 7, 4:24, 0] += 180
  return images.astype(np.uint8), labels


def write_synthetic_export(folder: str) -> None:
  """An export (scripts.export's format, SavedModel included) of softmax regression trained on
  ``synthetic_images``: for the serving tests that must not depend on a dataset."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  from experiments.serving import artifact
  from experiments.serving import drift
  from experiments.serving import formats

  images, labels = synthetic_images(600)
  x = jnp.asarray(images.reshape(600, -1), jnp.float32) / 255.0
  y = jax.nn.one_hot(labels, 10)

  def loss(w):
    return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(x @ w[:-1] + w[-1:]), -1))

  w = jnp.zeros((785, 10))
  for _ in range(100):
    w = w - 1.0 * jax.grad(loss)(w)
  weights = np.asarray(w)

  def probabilities(batch):
    flat = batch.reshape(batch.shape[0], -1).astype(jnp.float32) / 255.0
    return jax.nn.softmax(flat @ weights[:-1] + weights[-1:], axis=-1)

  serialized = formats.serialize(probabilities, (28, 28, 1))
  test_images, test_labels = synthetic_images(100, seed=1)
  chosen = artifact.self_test_images(test_images, test_labels, 10)
  recorded = np.asarray(jax.export.deserialize(bytearray(serialized)).call(chosen))
  manifest = {
      "dataset": "synthetic", "model": "softmax", "class_names": [str(c) for c in range(10)],
      "input": {"name": "images", "shape": [28, 28, 1], "dtype": "uint8"},
      "output": {"name": "probabilities", "dtype": "float32", "shape": ["b", 10]},
      "platforms": list(formats.PLATFORMS), "settings": {}, "test_metrics": None,
      "pixel_statistics": drift.statistics(images),
  }
  artifact.write(folder, serialized, formats.saved_model_writer(probabilities, (28, 28, 1)),
                 manifest, (chosen, recorded))


FONTS = {  # Debian's fonts-dejavu-core, and Pillow's own font
    "dejavu_sans": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "dejavu_sans_bold": "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "dejavu_serif": "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "dejavu_sans_mono": "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "pillow_default": None,
}


def printed_digits(folder: str) -> list[tuple[str, int, str]]:
  """The digits 0-9 printed large and off-centre in each of ``FONTS``, dark on light and light
  on dark, as PNG and JPEG files of 200x200 pixels in ``folder``: (path, digit, font) each.

  Each digit is 110-150 pixels tall, its box's corner moved by a different
  offset for each digit, so no two sit alike and none is centred.
  """
  from PIL import Image
  from PIL import ImageDraw
  from PIL import ImageFont
  out = []
  for font_name, path in FONTS.items():
    for digit in range(10):
      size = 110 + 4 * digit
      font = ImageFont.load_default(size) if path is None else ImageFont.truetype(path, size)
      for polarity, (paper, ink) in {"dark_on_light": (235, 25), "light_on_dark": (20, 230)}.items():
        image = Image.new("L", (200, 200), paper)
        draw = ImageDraw.Draw(image)
        left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font)
        x = 5 + (digit * 37) % max(1, 195 - (right - left)) - left
        y = 5 + (digit * 53) % max(1, 195 - (bottom - top)) - top
        draw.text((x, y), str(digit), fill=ink, font=font)
        for file_format in ("PNG", "JPEG"):
          name = f"{font_name}_{digit}_{polarity}.{file_format.lower()}"
          image.save(f"{folder}/{name}", format=file_format)
          out.append((f"{folder}/{name}", digit, font_name))
  return out
