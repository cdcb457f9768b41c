"""experiments/serving/images.py: every Pillow mode decodes to the 8-bit grayscale version's pixels."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from experiments.serving import images


def _digit(seed: int = 0) -> np.ndarray:
  """A 28x28 uint8 MNIST-like digit: light strokes with soft edges on a black background."""
  rng = np.random.default_rng(seed)
  pixels = np.zeros((28, 28), np.float64)
  for _ in range(3):
    r, c = rng.integers(6, 22, 2)
    pixels[r - 5:r + 5, c - 1:c + 2] += rng.uniform(150, 255)
  pixels[pixels > 0] += rng.uniform(0, 40, np.count_nonzero(pixels))
  return np.clip(pixels, 0, 255).astype(np.uint8)


def _png(image: Image.Image, **kwargs) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, format=kwargs.pop("format", "PNG"), **kwargs)
  return buffer.getvalue()


def blank_png(side: int) -> bytes:
  """A valid black 1-bit PNG of side x side pixels, written row by row (a few kB, no image in memory)."""
  def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
  compressor, row = zlib.compressobj(9), b"\0" * (1 + (side + 7) // 8)
  data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
          + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def _rgba_ink(gray: np.ndarray, ink: int) -> Image.Image:
  """The digit as ink of color ``ink`` whose opacity is the digit, on a transparent background."""
  rgba = np.zeros((*gray.shape, 4), np.uint8)
  rgba[..., :3] = ink
  rgba[..., 3] = gray
  return Image.fromarray(rgba, "RGBA")


def _animated(gray: np.ndarray) -> bytes:
  frames = [Image.fromarray(gray).convert("P"), Image.fromarray(255 - gray).convert("P")]
  buffer = io.BytesIO()
  frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
  return buffer.getvalue()


def _rotated_with_exif(gray: np.ndarray) -> bytes:
  """The digit stored rotated by 90 degrees, with the EXIF orientation (6) that undoes it."""
  exif = Image.Exif()
  exif[0x0112] = 6  # Orientation: rotate 90 CW to display
  return _png(Image.fromarray(np.rot90(gray, k=1)), exif=exif)


# Each mode's file, built from the digit; the equal 8-bit grayscale version is the digit itself,
# except for 1-bit (the digit thresholded) and the dark-ink versions (auto-inverted back).
MODES = {
    "L": lambda g: _png(Image.fromarray(g)),
    "I;16": lambda g: _png(Image.fromarray(g.astype(np.uint16) * 257)),
    "I (32-bit, 16-bit values)": lambda g: _png(Image.fromarray(g.astype(np.int32) * 257), format="TIFF"),
    "F in [0, 1]": lambda g: _png(Image.fromarray(g.astype(np.float32) / 255), format="TIFF"),
    "F in [0, 255]": lambda g: _png(Image.fromarray(g.astype(np.float32)), format="TIFF"),
    "P": lambda g: _png(Image.fromarray(g).convert("P")),
    "RGB": lambda g: _png(Image.fromarray(g).convert("RGB")),
    "RGBA black ink": lambda g: _png(_rgba_ink(g, 0)),
    "RGBA white ink": lambda g: _png(_rgba_ink(g, 255)),
    "LA black ink": lambda g: _png(_rgba_ink(g, 0).convert("LA")),
    "CMYK": lambda g: _png(Image.fromarray(g).convert("CMYK"), format="TIFF"),
    "animated GIF": _animated,
    "EXIF orientation": _rotated_with_exif,
}


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_decodes_to_the_8_bit_grayscale_pixels(mode):
  digit = _digit()
  want, inverted = images.decode(MODES["L"](digit), (28, 28, 1))
  assert not inverted and np.array_equal(want[..., 0], digit)
  got, _ = images.decode(MODES[mode](digit), (28, 28, 1))
  np.testing.assert_array_equal(got, want)


def test_one_bit_images_are_0_or_255():
  digit = _digit()
  binary = digit >= 128
  got, _ = images.decode(_png(Image.fromarray(binary)), (28, 28, 1))
  np.testing.assert_array_equal(got[..., 0], np.where(binary, 255, 0))


def test_dark_ink_on_light_paper_is_inverted_only_when_auto():
  digit = _digit()
  paper = _png(Image.fromarray(255 - digit))
  assert images.decode(paper, (28, 28, 1))[1]
  got, inverted = images.decode(paper, (28, 28, 1), invert="false")
  assert not inverted and np.array_equal(got[..., 0], 255 - digit)


def test_grayscale_to_rgb_and_resizing():
  digit = _digit()
  got, _ = images.decode(_png(Image.fromarray(digit)), (28, 28, 3))
  assert got.shape == (28, 28, 3) and np.array_equal(got[..., 1], digit)
  big = Image.fromarray(digit).resize((112, 112), Image.Resampling.NEAREST)
  got, _ = images.decode(_png(big), (28, 28, 1), frame=False)
  assert got.shape == (28, 28, 1)
  assert np.abs(got[..., 0].astype(int) - digit).mean() < 20  # a bilinear down-scale


def _framed_digit() -> np.ndarray:
  """A 28x28 digit as MNIST frames one: a 20-row bounding box, its centre of mass at (14, 14)."""
  pixels = np.zeros((28, 28), np.uint8)
  pixels[4:24, 11:17] = 255  # a "1": 20 x 6, mass centre (13.5, 13.5) -> placed at 14
  pixels[4:7, 8:11] = 180
  return images.frame_digit(pixels)


@pytest.mark.parametrize("dark_on_light", [False, True])
@pytest.mark.parametrize("file_format", ["PNG", "JPEG"])
def test_a_large_off_centre_digit_is_framed_as_mnists_digits(dark_on_light, file_format):
  """The same digit drawn 7x larger in a corner of a 300x260 page decodes to its 28x28 framing."""
  want = _framed_digit()
  page = np.zeros((260, 300), np.uint8)
  page[20:216, 10:206] = np.asarray(Image.fromarray(want).resize((196, 196),
                                                                  Image.Resampling.NEAREST))
  if dark_on_light:
    page = 255 - page
  got, inverted = images.decode(_png(Image.fromarray(page), format=file_format), (28, 28, 1))
  assert inverted == dark_on_light
  difference = np.abs(got[..., 0].astype(int) - want)
  assert difference.mean() < 1  # PNG: 0 (exact); JPEG blurs the edges: measured 0.03


def test_framing_centres_the_ink_mass_in_a_20_pixel_box():
  pixels = np.zeros((100, 400), np.uint8)
  pixels[60:90, 300:315] = 200  # a bar 30 tall, 15 wide, low on the right
  framed = images.frame_digit(pixels).astype(np.float64)
  rows, cols = np.flatnonzero(framed.any(1)), np.flatnonzero(framed.any(0))
  assert (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == (20, 10)  # aspect kept
  ys, xs = np.indices(framed.shape)
  assert abs((framed * ys).sum() / framed.sum() - 14) <= 0.5
  assert abs((framed * xs).sum() / framed.sum() - 14) <= 0.5
  assert framed.max() == 255  # the ink stretched above its background


def test_a_blank_page_frames_to_zeros_and_a_model_sized_image_is_not_framed():
  assert not images.frame_digit(np.full((90, 90), 200, np.uint8)).any()
  digit = _digit()  # 28x28, off-centre strokes: left as they are
  np.testing.assert_array_equal(images.decode(_png(Image.fromarray(digit)), (28, 28, 1))[0][
      ..., 0], digit)


def test_mid_grey_paper_with_darker_ink_is_inverted():
  page = np.full((120, 120), 100, np.uint8)
  page[30:90, 55:65] = 30  # dark ink on paper darker than mid-grey
  got, inverted = images.decode(_png(Image.fromarray(page)), (28, 28, 1))
  assert inverted and got[..., 0].max() == 255 and got[0, 0, 0] == 0


def test_an_image_over_the_pixel_limit_is_refused_before_decoding():
  side = images.MAX_SIDE + 1
  assert Image.open(io.BytesIO(blank_png(side))).size == (side, side)
  with pytest.raises(images.ImageError, match=f"{side}x{side} pixels, over the limit"):
    images.decode(blank_png(side), (28, 28, 1))
  with pytest.raises(images.ImageError, match="over the limit"):  # Pillow's own bomb check
    images.decode(blank_png(20000), (28, 28, 1))
  assert images.decode(blank_png(images.MAX_SIDE), (28, 28, 1))[0].max() == 0


@pytest.mark.parametrize("data", [b"", b"not an image", _png(Image.new("L", (8, 8)))[:40]])
def test_unreadable_bytes_are_one_image_error(data):
  with pytest.raises(images.ImageError, match="not a readable image"):
    images.decode(data, (28, 28, 1))


def test_non_finite_float_pixels_are_refused():
  values = np.zeros((28, 28), np.float32)
  values[3, 3] = np.nan
  with pytest.raises(images.ImageError, match="not all finite"):
    images.decode(_png(Image.fromarray(values), format="TIFF"), (28, 28, 1))
