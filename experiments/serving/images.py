"""Image files as a model's uint8 input: every Pillow mode, a pixel limit, MNIST's polarity.

``decode`` turns the bytes of any image Pillow opens into the training data's
format, (H, W, C) uint8 with C = 1 (grayscale) or 3 (RGB), resized to the
training images' size with bilinear interpolation:

  * the first frame of an animation; the EXIF orientation applied;
  * 1-bit images as 0 / 255; 16-bit grayscale by its range, x · 255 / 65535;
    32-bit integer grayscale (mode ``I``) by the range its values show
    (8-bit if max <= 255, 16-bit if max <= 65535, else [min, max]); float
    grayscale (mode ``F``) as x · 255 if its values lie in [0, 1], as is if in
    [0, 255], else by [min, max]; all rounded to the nearest integer;
  * palette, CMYK, YCbCr, LAB and HSV images through Pillow's RGB conversion;
    RGB to grayscale by ITU-R 601-2 luma, L = (299 R + 587 G + 114 B) / 1000;
  * transparency (RGBA, LA, PA, a palette's transparent entry) composited on
    the background the ink implies: transparent pixels are background, and
    the background is white if the opaque ink is dark (its alpha-weighted
    luma below 127.5), else black: c = (α v + (255 - α) b) / 255.

MNIST digits are light ink on a dark background. With ``invert="auto"`` a
grayscale image whose border is lighter than mid-gray (dark ink on light
paper) is inverted, x -> 255 - x; ``"true"`` / ``"false"`` force it.

An image over ``MAX_PIXELS`` is refused (``ImageError``) before its pixels
are decoded, as is anything Pillow cannot read: one line, never a guess.
"""

import io
import warnings

import numpy as np
from PIL import Image
from PIL import ImageOps

MAX_SIDE = 4096
MAX_PIXELS = MAX_SIDE * MAX_SIDE  # a 16-megapixel phone photo fits; decoding it takes < 0.4 GB
MAX_FILE_BYTES = 64 * 2**20  # an image file longer than this is refused unread


class ImageError(ValueError):
  """An image that cannot be classified: unreadable, or over the pixel limit."""


def decode(data: bytes, input_shape: tuple[int, int, int], invert: str = "auto"
           ) -> tuple[np.ndarray, bool]:
  """The image in ``data`` as uint8 (H, W, C) of ``input_shape``; whether it was inverted."""
  height, width, channels = input_shape
  if len(data) > MAX_FILE_BYTES:
    raise ImageError(f"the file is over the limit of {MAX_FILE_BYTES} bytes")
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies
    try:
      with Image.open(io.BytesIO(data)) as image:
        if image.width * image.height > MAX_PIXELS:
          raise ImageError(f"{image.width}x{image.height} pixels, over the limit of "
                           f"{MAX_PIXELS} ({MAX_SIDE}x{MAX_SIDE})")
        image.seek(0)
        image = ImageOps.exif_transpose(image)
        pixels = _eight_bit(image, channels)
    except Image.DecompressionBombError as e:
      raise ImageError(f"over the limit of {MAX_PIXELS} pixels ({MAX_SIDE}x{MAX_SIDE})") from e
    except ImageError:
      raise
    except Exception as e:  # pylint: disable=broad-except  (any decoder failure: one line)
      raise ImageError(f"not a readable image ({type(e).__name__})") from e
  mode = "L" if channels == 1 else "RGB"
  resized = Image.fromarray(pixels, mode).resize((width, height), Image.Resampling.BILINEAR)
  pixels = np.asarray(resized, np.uint8).reshape(height, width, channels)
  inverted = invert == "true" or (invert == "auto" and channels == 1 and light_background(pixels))
  return (255 - pixels if inverted else pixels), inverted


def _eight_bit(image: Image.Image, channels: int) -> np.ndarray:
  """(H, W) grayscale or (H, W, 3) RGB uint8 of ``image``, composited, for ``channels``."""
  if image.mode.startswith("I") or image.mode == "F":
    gray = _scaled(np.asarray(image), image.mode)
    return gray if channels == 1 else np.repeat(gray[..., None], 3, axis=-1)
  bands = image.getbands()
  if "A" in bands or "a" in bands or "transparency" in image.info:
    image = Image.fromarray(_composited(np.asarray(image.convert("RGBA"))), "RGB")
  return np.asarray(image.convert("L" if channels == 1 else "RGB"), np.uint8)


def _scaled(values: np.ndarray, mode: str) -> np.ndarray:
  """A 16-bit, 32-bit integer or float grayscale image as uint8, scaled by its range."""
  values = values.astype(np.float64)
  if not np.all(np.isfinite(values)):
    raise ImageError("its pixel values are not all finite")
  low, high = float(values.min()), float(values.max())
  if mode.startswith("I;16"):
    top = 65535.0
  elif low < 0:
    top = None
  elif mode == "I":
    top = 255.0 if high <= 255 else 65535.0 if high <= 65535 else None
  else:  # F
    top = 1.0 if high <= 1 else 255.0 if high <= 255 else None
  scaled = (values * (255.0 / top) if top is not None
            else (values - low) * (255.0 / (high - low) if high > low else 0.0))
  return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _composited(rgba: np.ndarray) -> np.ndarray:
  """(H, W, 3) uint8: RGBA composited on white if the ink is dark, else on black.

  c = (α v + (255 - α) b) / 255, rounded, in integers (exact: a fully opaque
  pixel keeps its value, a transparent one becomes b).
  """
  color = rgba[..., :3].astype(np.uint32)
  alpha = rgba[..., 3:].astype(np.uint32)
  weight = int(alpha.sum())
  luma = (299 * color[..., 0] + 587 * color[..., 1] + 114 * color[..., 2]) / 1000.0
  ink = float((luma * alpha[..., 0]).sum()) / weight if weight else 255.0
  background = 255 if ink < 127.5 else 0
  return ((alpha * color + (255 - alpha) * background + 127) // 255).astype(np.uint8)


def light_background(pixels: np.ndarray) -> bool:
  """Whether the mean of an (H, W, C) uint8 image's outermost rows and columns exceeds 127.5."""
  border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
  return float(border.mean()) > 127.5
