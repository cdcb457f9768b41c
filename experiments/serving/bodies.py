"""Request bodies as model inputs: TF Serving's JSON, raw uint8 pixels; ``BadRequest``.

Every body a client can send is checked before it reaches the model: a body
that is not n whole images of the input shape with integer pixels 0-255 is a
``BadRequest`` naming what is wrong (a JSON {"error": "..."} with a 4xx
status, ``routes.py``).
"""

import functools
import json

import numpy as np


class BadRequest(Exception):
  """A request the client must fix: its status, one message, extra headers, and whether its
  connection is closed after the answer."""

  def __init__(self, status: int, message: str, headers: dict | None = None,
               close: bool = False):
    super().__init__(message)
    self.status, self.headers, self.close = status, headers, close


def pixels_array(body: bytes, shape: tuple[int, int, int], max_instances: int) -> np.ndarray:
  """A body of raw uint8 pixels, n whole images of ``shape`` one after another, as
  (n, H, W, C); BadRequest naming what does not fit."""
  size = int(np.prod(shape))
  if not body or len(body) % size:
    raise BadRequest(400, f"an application/octet-stream body is n images of "
                     f"{'x'.join(map(str, shape))} uint8 pixels, a multiple of {size} bytes; "
                     f"got {len(body)}")
  if len(body) // size > max_instances:
    raise BadRequest(400, f"at most {max_instances} instances per request, got "
                     f"{len(body) // size}")
  return np.frombuffer(body, np.uint8).reshape(-1, *shape)


_PLAIN = b'{"instances":'  # a body of plain nested integer arrays starts so (its fast path)
_PLAIN_CHARACTERS = b"0123456789,[] \t\r\n"


@functools.lru_cache(maxsize=64)
def _skeleton(n: int, shape: tuple[int, ...]) -> bytes:
  """The brackets and commas of n nested arrays of ``shape``, digits and spaces left out."""
  text = "0"
  for size in reversed(shape):
    text = "[" + ",".join([text] * size) + "]"
  return ("[" + ",".join([text] * n) + "]").replace("0", "").encode()


def instances_from_json(data: bytes, shape: tuple[int, int, int], name: str,
                        max_instances: int) -> np.ndarray:
  """A JSON body's instances as uint8 (n, H, W, C) (``instances_array``).

  A body of plain nested integer arrays (what clients send) is read by
  NumPy's text parser straight into an array, once its brackets and commas
  are checked to be exactly those of n arrays of the input shape (H x W, or
  H x W x 1 for one channel); any other body goes through ``json.loads``,
  which also names what is wrong with it. Both give the same array.
  """
  text = data.strip()
  if text.startswith(_PLAIN) and text.endswith(b"}"):
    text = text[len(_PLAIN):-1]
    try:  # ValueError: a number cut by a space, an empty one
      values = (None if text.translate(None, _PLAIN_CHARACTERS) else
                np.fromstring(text.translate(None, b"[]"), dtype=np.int64, sep=","))
    except ValueError:
      values = None
    if values is not None:
      size = int(np.prod(shape))
      n = len(values) // size
      skeleton = text.translate(None, b"0123456789 \t\r\n")
      if (0 < n <= max_instances and len(values) == n * size and values.max() <= 255
          and skeleton in (_skeleton(n, shape), _skeleton(n, shape[:2]))):
        return values.astype(np.uint8).reshape(n, *shape)
  return instances_array(json_body(data), shape, name, max_instances)


def json_body(data: bytes):
  """The JSON value of a body; BadRequest naming what is malformed (NaN and Infinity refused)."""
  def refuse(constant):
    raise ValueError(f"{constant} is not a number 0-255")
  try:
    return json.loads(data, parse_constant=refuse)
  except (ValueError, RecursionError) as e:
    raise BadRequest(400, f"malformed JSON ({str(e).splitlines()[0][:120]})") from None


def instances_array(body, shape: tuple[int, int, int], name: str,
                    max_instances: int) -> np.ndarray:
  """TF Serving's {"instances": [...]} (each an array, or {name: array}) as uint8
  (n, H, W, C); BadRequest naming what is wrong."""
  if not isinstance(body, dict) or "instances" not in body:
    raise BadRequest(400, 'the body must be a JSON object {"instances": [...]}')
  instances = body["instances"]
  if not isinstance(instances, list) or not instances:
    raise BadRequest(400, '"instances" must be a non-empty list')
  if len(instances) > max_instances:
    raise BadRequest(400, f"at most {max_instances} instances per request, got "
                     f"{len(instances)}")
  instances = [i[name] if isinstance(i, dict) and set(i) == {name} else i for i in instances]
  shapes = f"{shape[0]}x{shape[1]}" + (f" or {'x'.join(map(str, shape))}"
                                        if shape[-1] == 1 else "")
  try:
    values = np.asarray(instances)
  except ValueError:
    values = None
  if values is None or values.shape[1:] not in (shape, shape[:2] if shape[-1] == 1 else shape):
    raise BadRequest(400, f"each instance must be an array of shape {shapes}"
                     + ("" if values is None else
                        f", got {'x'.join(map(str, values.shape[1:])) or 'a number'}"))
  if values.dtype.kind not in "iuf":
    raise BadRequest(400, f"instance values must be numbers 0-255, got {values.dtype.kind!r} "
                     "values (strings, booleans or nulls)")
  if not np.all(np.isfinite(values)):
    raise BadRequest(400, "instance values must be finite numbers 0-255 (got NaN or infinity)")
  if values.min() < 0 or values.max() > 255:
    raise BadRequest(400, f"instance values must be 0-255, got {values.min()} to "
                     f"{values.max()}")
  if values.dtype.kind == "f" and not np.all(values == np.round(values)):
    raise BadRequest(400, "instance values must be integers 0-255 (uint8 pixels)")
  return values.astype(np.uint8).reshape(len(values), *shape)
