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

MNIST digits are light ink on a dark background. With ``invert="auto"`` an
image of dark ink on light paper is inverted, x -> 255 - x: one of the
model's size when its border is lighter than mid-gray, a larger one when its
darkest pixel lies further from its background (the border's median) than
its brightest; ``"true"`` / ``"false"`` force it.

A grayscale image that is not already the model's size is framed as MNIST's
digits were made (``frame_digit``, unless ``frame=False``): its background
level (the median of its border) is taken away and the ink stretched to
0..255, the ink's bounding box is scaled into a 20x20 box (aspect kept, area
averaging) and placed in the 28x28 image so that its centre of mass is at
the centre. A digit written large or off-centre then looks like the digits
the model learned from. The drawing page sends its canvas through the same
function. An image of the model's size is only inverted where it says so
(MNIST's own images pass unchanged).

An image over ``MAX_PIXELS`` is refused (``ImageError``) before its pixels
are decoded, as is anything Pillow cannot read: one line, never a guess.
"""

import io
import warnings

import numpy as np
from PIL import Image
from PIL import ImageOps

from data import files

DIGIT_BOX = 20 / 28  # MNIST: the digit's bounding box fills 20 of the image's 28 rows or columns
INK = 0.2  # of the ink's range above the background: what counts as ink for its bounding box
MIN_CONTRAST = 16  # grey levels between background and the brightest ink: less is a blank image
LOW_CONFIDENCE = 0.5  # a prediction whose class has less probability says so
MAX_SIDE = 4096
MAX_PIXELS = MAX_SIDE * MAX_SIDE  # a 16-megapixel phone photo fits; decoding it takes < 0.4 GB
MAX_FILE_BYTES = 64 * 2**20  # an image file longer than this is refused unread


class ImageError(ValueError):
  """An image that cannot be classified: unreadable, or over the pixel limit."""


def decode(data: bytes, input_shape: tuple[int, int, int], invert: str = "auto",
           frame: bool = True) -> tuple[np.ndarray, bool]:
  """The image in ``data`` as uint8 (H, W, C) of ``input_shape``; whether it was inverted.

  ``frame``: a grayscale image of another size is framed as MNIST's digits
  (``frame_digit``); else it is only resized.
  """
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
    except Exception as e:  # any decoder failure: one line
      raise ImageError(f"not a readable image ({type(e).__name__})") from e
  if frame and channels == 1 and pixels.shape[:2] != (height, width):
    inverted = invert == "true" or (invert == "auto" and dark_ink(pixels))
    return frame_digit(255 - pixels if inverted else pixels, height, width)[..., None], inverted
  mode = "L" if channels == 1 else "RGB"
  resized = Image.fromarray(pixels, mode).resize((width, height), Image.Resampling.BILINEAR)
  pixels = np.asarray(resized, np.uint8).reshape(height, width, channels)
  inverted = invert == "true" or (invert == "auto" and channels == 1 and light_background(pixels))
  return (255 - pixels if inverted else pixels), inverted


def frame_digit(gray: np.ndarray, height: int = 28, width: int = 28) -> np.ndarray:
  """Light ink on a dark (H0, W0) uint8 image framed as an MNIST digit: (height, width) uint8.

  The background b (the border's median) is taken away and the ink stretched,
  v = 255 clip((x - b) / (max - b), 0, 1); the bounding box of v > 0.2 · 255
  is scaled by area averaging so that its longer side is 20/28 of the image
  (aspect kept) and placed so that its centre of mass (Σ v y / Σ v, Σ v x / Σ v,
  rounded half up) sits at (height / 2, width / 2); ink falling outside is cut.
  An image whose brightest pixel is within 16 grey levels of its background is
  blank: all zeros.
  """
  image = Image.fromarray(gray)
  factor = max(1, max(image.size) // 512)  # a large photo: box-averaged to at most ~1000 pixels
  if factor > 1:
    image = image.reduce(factor)
  values = np.asarray(image, np.float32)
  border = np.concatenate([values[0], values[-1], values[:, 0], values[:, -1]])
  background, peak = float(np.median(border)), float(values.max())
  out = np.zeros((height, width), np.uint8)
  if peak - background < MIN_CONTRAST:
    return out
  ink = np.clip((values - background) / (peak - background), 0.0, 1.0) * 255.0
  rows = np.flatnonzero((ink > INK * 255.0).any(axis=1))
  cols = np.flatnonzero((ink > INK * 255.0).any(axis=0))
  crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
  scale = round(DIGIT_BOX * min(height, width)) / max(crop.shape)
  box_h, box_w = (max(1, round(n * scale)) for n in crop.shape)
  small = np.asarray(Image.fromarray(crop, "F").resize((box_w, box_h), Image.Resampling.BOX))
  ys, xs = np.indices(small.shape)
  mass = float(small.sum())
  top = int(np.floor(height / 2 - float((small * ys).sum()) / mass + 0.5))
  left = int(np.floor(width / 2 - float((small * xs).sum()) / mass + 0.5))
  placed = np.zeros((height + 2 * box_h, width + 2 * box_w), np.float32)  # room to cut
  placed[box_h + top:box_h + top + box_h, box_w + left:box_w + left + box_w] = small
  return np.clip(np.rint(placed[box_h:box_h + height, box_w:box_w + width]), 0, 255).astype(
      np.uint8)


def read_file(path: str, input_shape: tuple[int, int, int], invert: str = "auto",
              frame: bool = True) -> tuple[np.ndarray, bool]:
  """The image file at ``path`` as ``decode`` gives it; ImageError naming what is wrong (no
  such file, not a regular file, unreadable)."""
  try:
    with files.open_regular(path) as f:
      data = f.read(MAX_FILE_BYTES + 1)
  except FileNotFoundError:
    raise ImageError("no such file") from None
  except OSError as e:
    raise ImageError(f"cannot read it: {e.strerror}") from None
  return decode(data, input_shape, invert, frame)


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


def dark_ink(gray: np.ndarray) -> bool:
  """Whether an (H, W) image's ink is darker than its background (the border's median b):
  the darkest pixel lies further from b than the brightest, b - min > max - b."""
  border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
  background = float(np.median(border))
  return background - float(gray.min()) > float(gray.max()) - background


def light_background(pixels: np.ndarray) -> bool:
  """Whether the mean of an (H, W, C) uint8 image's outermost rows and columns exceeds 127.5."""
  border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
  return float(border.mean()) > 127.5
