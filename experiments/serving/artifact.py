"""The serving artifact: a model's prediction function, serialized, with a verified manifest.

A folder written by ``scripts.export``:

  model.jax              the function uint8 images (b, H, W, C) -> float32 class
                         probabilities (b, K), weights and pixel scaling baked
                         in, serialized by ``jax.export`` (StableHLO, lowered
                         for CPU and CUDA, any batch size b)
  saved_model/           the same function as a TensorFlow SavedModel
                         (``serving_default``: ``images`` -> ``probabilities``)
  self_test.npz          a few test images of every class, with the probabilities
                         and the class names the exported function gave them at
                         export time
  manifest.json          what the model is (dataset, class names, input shape and
                         dtype, the resolved training settings, the test metrics,
                         the training images' pixel statistics) and the SHA-256 of
                         every other file; manifest.json.sha256 is its own digest

``load`` proves an artifact before it serves anything, each failure one
``ArtifactError`` line naming what is wrong:

  1. every digest matches (a damaged, cut or foreign file);
  2. the manifest has every key of its schema, with the right types
     (``check_manifest``);
  3. the function takes the manifest's input shape and gives one probability
     per class name;
  4. the self-test: the function gives the recorded probabilities (to 1e-4)
     and the class names give the recorded labels: a model.jax from another
     export, or class names reordered, renamed or replaced, are refused even
     when their digests were recomputed.

What this does not stop: someone who can write the folder and rewrites all of
it consistently (model, self-test, manifest, digests) makes a valid artifact
of their own. Keep exports where only you can write, or sign them.

``write`` builds the folder beside its destination and renames it into
place, so an existing artifact is replaced whole or not at all.
"""

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable

import numpy as np

from data import files
from data.errors import UserError

FORMAT = "perceptrax-export"
VERSION = 2  # 2: the self-test
MODEL_FILE = "model.jax"
SAVED_MODEL = "saved_model"
MANIFEST = "manifest.json"
SELF_TEST = "self_test.npz"
SELF_TEST_PER_CLASS = 3
SELF_TEST_ATOL = 1e-4  # the same StableHLO compiled on another CPU: measured differences ~1e-7


class ArtifactError(UserError):
  """A missing, damaged or foreign artifact."""


class Artifact:
  """A loaded artifact: its manifest and its prediction function, compiled per batch size."""

  def __init__(self, directory: str, manifest: dict, exported):
    self.directory, self.manifest, self.exported = directory, manifest, exported
    self._compiled = {}  # batch size -> the function compiled ahead of time for it

  @property
  def input_shape(self) -> tuple[int, int, int]:
    return tuple(self.manifest["input"]["shape"])

  @property
  def class_names(self) -> list[str]:
    return self.manifest["class_names"]

  def probabilities(self, images: np.ndarray) -> np.ndarray:
    """Class probabilities (b, K) of uint8 images (b, H, W, C).

    The first call of each batch size compiles the function for it; later
    calls run the compiled executable directly (a fifth of ``exported.call``'s
    dispatch time at batch 1).
    """
    compiled = self._compiled.get(len(images))
    if compiled is None:
      import jax
      compiled = jax.jit(self.exported.call).lower(
          jax.ShapeDtypeStruct(images.shape, np.uint8)).compile()
      self._compiled[len(images)] = compiled
    return np.asarray(compiled(images))


def sha256(path: str) -> str:
  h = hashlib.sha256()
  with files.open_regular(path) as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def _digests(directory: str) -> dict[str, str]:
  """Relative path -> SHA-256 of every file under ``directory`` but the manifest."""
  out = {}
  for folder, _, names in os.walk(directory):
    for name in names:
      relative = os.path.relpath(os.path.join(folder, name), directory)
      if relative not in (MANIFEST, MANIFEST + ".sha256"):
        out[relative] = sha256(os.path.join(folder, name))
  return dict(sorted(out.items()))


def self_test_images(images: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
  """The first ``SELF_TEST_PER_CLASS`` images of each class, class by class."""
  chosen = [np.flatnonzero(labels == k)[:SELF_TEST_PER_CLASS] for k in range(num_classes)]
  return images[np.concatenate(chosen)]


def write(output: str, serialized: bytes, write_saved_model: Callable[[str], None],
          manifest: dict, self_test: tuple[np.ndarray, np.ndarray]) -> None:
  """Writes the artifact to ``output`` (replacing an artifact there) in one rename.

  ``write_saved_model(path)`` saves the SavedModel to ``path``; ``self_test``
  is (images, the probabilities the serialized function gives them).
  UserError if ``output`` holds something other than an artifact; nothing is
  changed then.
  """
  output = os.path.abspath(output)
  if os.path.lexists(output) and not (os.path.isdir(output) and (
      not os.listdir(output) or os.path.exists(os.path.join(output, MANIFEST)))):
    raise UserError(f"{output} exists and is not an export; choose another --output")
  parent = os.path.dirname(output)
  files.check_writable(parent)
  staging = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(output)}.")
  try:
    files.write_atomically(os.path.join(staging, MODEL_FILE), lambda f: f.write(serialized))
    write_saved_model(os.path.join(staging, SAVED_MODEL))
    images, probabilities = self_test
    labels = np.array([manifest["class_names"][k] for k in np.argmax(probabilities, -1)])
    files.write_atomically(os.path.join(staging, SELF_TEST), lambda f: np.savez(
        f, images=images, probabilities=probabilities, labels=labels))
    manifest = {"format": FORMAT, "version": VERSION, **manifest, "files": _digests(staging)}
    files.write_verified(os.path.join(staging, MANIFEST),
                         (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    os.chmod(staging, 0o777 & ~files.current_umask())  # mkdtemp's are private
    if os.path.exists(output):
      old = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(output)}.old.")
      os.replace(output, os.path.join(old, "export"))
      os.replace(staging, output)
      shutil.rmtree(old)
    else:
      os.replace(staging, output)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise


def read_manifest(directory: str) -> dict:
  """The verified manifest of the artifact in ``directory``; ArtifactError if it is not one."""
  path = os.path.join(directory, MANIFEST)
  if not os.path.isdir(directory):
    raise ArtifactError(f"no export in {directory}: it is not a folder")
  if not os.path.exists(path):
    raise ArtifactError(f"no export in {directory}: it has no {MANIFEST} "
                        "(write one with python -m scripts.export)")
  try:
    manifest = json.loads(files.read_verified(path))
  except ValueError as e:
    raise ArtifactError(f"the export in {directory} is damaged: {MANIFEST}: {e}") from None
  if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
    raise ArtifactError(f"{directory} is not a perceptrax export")
  if manifest.get("version") != VERSION:
    raise ArtifactError(f"the export in {directory} is format version "
                        f"{manifest.get('version')}; this version reads {VERSION}: export the "
                        "model again")
  return manifest


def verify(directory: str) -> dict:
  """The manifest, after checking every file it lists against its SHA-256."""
  manifest = read_manifest(directory)
  if not isinstance(manifest.get("files"), dict):
    raise ArtifactError(f"the export in {directory} is damaged: {MANIFEST} has no 'files'")
  for relative, expected in manifest["files"].items():
    path = os.path.join(directory, relative)
    try:
      actual = sha256(path)
    except OSError as e:
      raise ArtifactError(f"the export in {directory} is damaged: {relative}: "
                          f"{e.strerror}") from None
    if actual != expected:
      raise ArtifactError(f"the export in {directory} is damaged: {relative} does not match "
                          "its SHA-256 digest")
  return manifest


def _is(kind):
  return lambda v: isinstance(v, kind) and not isinstance(v, bool)


def _number(v) -> bool:
  return _is((int, float))(v) and math.isfinite(v)


def _names(v) -> bool:
  return (isinstance(v, list) and len(v) >= 2 and all(_is(str)(n) and n for n in v)
          and len(set(v)) == len(v))


# Each key of the manifest, what it must be, and how that is told.
_SCHEMA = {
    "dataset": (_is(str), "a name"),
    "model": (_is(str), "a name"),
    "class_names": (_names, "a list of 2 or more distinct non-empty names"),
    "input": (lambda v: isinstance(v, dict) and _is(str)(v.get("name"))
              and v.get("dtype") == "uint8" and isinstance(v.get("shape"), list)
              and len(v["shape"]) == 3 and all(_is(int)(d) and d > 0 for d in v["shape"]),
              'an object {"name", "shape": [H, W, C], "dtype": "uint8"}'),
    "output": (lambda v: isinstance(v, dict) and _is(str)(v.get("name")),
               'an object {"name", "shape", "dtype"}'),
    "settings": (_is(dict), "an object"),
    "test_metrics": (lambda v: v is None or isinstance(v, dict), "an object or null"),
    "pixel_statistics": (lambda v: isinstance(v, dict) and _number(v.get("mean"))
                         and _number(v.get("std")) and isinstance(v.get("histogram"), list)
                         and len(v["histogram"]) >= 2
                         and all(_number(x) and x >= 0 for x in v["histogram"]),
                         'an object {"mean", "std", "histogram": [...]}'),
    "files": (lambda v: isinstance(v, dict) and MODEL_FILE in v and SELF_TEST in v
              and all(_is(str)(d) and len(d) == 64 for d in v.values()),
              f"an object of SHA-256 digests with {MODEL_FILE} and {SELF_TEST}"),
}


def check_manifest(manifest: dict, directory: str) -> None:
  """ArtifactError naming the first key of ``manifest`` missing or not what ``_SCHEMA`` says."""
  for key, (valid, what) in _SCHEMA.items():
    if key not in manifest:
      raise ArtifactError(f"the export in {directory} is damaged: {MANIFEST} has no {key!r}")
    if not valid(manifest[key]):
      raise ArtifactError(f"the export in {directory} is damaged: {MANIFEST}'s {key!r} must be "
                          f"{what}")


def _check_function(exported, manifest: dict, directory: str) -> None:
  """ArtifactError unless the function takes the manifest's input and gives one probability
  per class name."""
  (images,), (probabilities,) = exported.in_avals, exported.out_avals
  shape = manifest["input"]["shape"]
  if tuple(images.shape[1:]) != tuple(shape) or str(images.dtype) != "uint8":
    raise ArtifactError(f"the export in {directory} does not fit its manifest: {MODEL_FILE} takes "
                        f"{images.dtype} images of {'x'.join(map(str, images.shape[1:]))}, the "
                        f"manifest says uint8 {'x'.join(map(str, shape))}")
  if probabilities.shape[-1] != len(manifest["class_names"]):
    raise ArtifactError(f"the export in {directory} does not fit its manifest: {MODEL_FILE} gives "
                        f"{probabilities.shape[-1]} probabilities for "
                        f"{len(manifest['class_names'])} class names")


def _self_test(artifact: "Artifact") -> None:
  """ArtifactError unless the function and the class names give what they gave at export."""
  where = f"the export in {artifact.directory} fails its self-test"
  try:
    with files.open_regular(os.path.join(artifact.directory, SELF_TEST)) as f:
      recorded = dict(np.load(f, allow_pickle=False))
    images, want, labels = recorded["images"], recorded["probabilities"], recorded["labels"]
  except (OSError, ValueError, KeyError) as e:
    raise ArtifactError(f"{where}: {SELF_TEST} cannot be read ({e})") from None
  if images.dtype != np.uint8 or tuple(images.shape[1:]) != artifact.input_shape:
    raise ArtifactError(f"{where}: its images are not uint8 {artifact.input_shape}")
  got = artifact.probabilities(images)
  if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=SELF_TEST_ATOL):
    raise ArtifactError(f"{where}: {MODEL_FILE} does not give the probabilities recorded at "
                        "export (a model from another export?)")
  names = [artifact.class_names[k] for k in np.argmax(got, -1)]
  wrong = next((i for i, (a, b) in enumerate(zip(names, labels)) if a != b), None)
  if wrong is not None:
    raise ArtifactError(f"{where}: the class names call self-test image {wrong} {names[wrong]!r}, "
                        f"the export called it {str(labels[wrong])!r} (class_names changed?)")


def load(directory: str) -> Artifact:
  """The artifact in ``directory`` once verified, checked against its schema and its
  function deserialized (jax.export) and self-tested (module docstring)."""
  import jax
  directory = os.path.abspath(directory)
  manifest = verify(directory)
  check_manifest(manifest, directory)
  with files.open_regular(os.path.join(directory, MODEL_FILE)) as f:
    try:
      exported = jax.export.deserialize(bytearray(f.read()))
    except Exception:  # any deserialization failure: one line
      raise ArtifactError(f"the export in {directory} is damaged: {MODEL_FILE} does not "
                          "deserialize") from None
  _check_function(exported, manifest, directory)
  artifact = Artifact(directory, manifest, exported)
  _self_test(artifact)
  return artifact
