"""The serving artifact: a model's prediction function, serialized, with a verified manifest.

A folder written by ``scripts.export``:

  model.jax              the function uint8 images (b, H, W, C) -> float32 class
                         probabilities (b, K), weights and pixel scaling baked
                         in, serialized by ``jax.export`` (StableHLO, lowered
                         for CPU and CUDA, any batch size b)
  saved_model/           the same function as a TensorFlow SavedModel
                         (``serving_default``: ``images`` -> ``probabilities``)
  manifest.json          what the model is (dataset, class names, input shape and
                         dtype, the resolved training settings, the test metrics,
                         the training images' pixel statistics) and the SHA-256 of
                         every other file; manifest.json.sha256 is its own digest

``load`` verifies every digest before deserializing anything: a damaged,
incomplete or foreign folder is one ``ArtifactError`` line naming what is
wrong. ``write`` builds the folder beside its destination and renames it into
place, so an existing artifact is replaced whole or not at all.
"""

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from data import files
from data.errors import UserError

FORMAT = "perceptrax-export"
VERSION = 1
MODEL_FILE = "model.jax"
SAVED_MODEL = "saved_model"
MANIFEST = "manifest.json"


class ArtifactError(UserError):
  """A missing, damaged or foreign artifact."""


class Artifact(NamedTuple):
  """A loaded artifact: its manifest and the compiled-on-demand prediction function."""

  directory: str
  manifest: dict
  exported: object  # jax.export.Exported

  @property
  def input_shape(self) -> tuple[int, int, int]:
    return tuple(self.manifest["input"]["shape"])

  @property
  def class_names(self) -> list[str]:
    return self.manifest["class_names"]

  def probabilities(self, images: np.ndarray) -> np.ndarray:
    """Class probabilities (b, K) of uint8 images (b, H, W, C); compiles once per batch size."""
    return np.asarray(self.exported.call(images))


def sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
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


def write(output: str, serialized: bytes, write_saved_model: Callable[[str], None],
          manifest: dict) -> None:
  """Writes the artifact to ``output`` (replacing an artifact there) in one rename.

  ``write_saved_model(path)`` saves the SavedModel to ``path``. UserError if
  ``output`` holds something other than an artifact; nothing is changed then.
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


def load(directory: str) -> Artifact:
  """The verified artifact in ``directory``, its function deserialized (jax.export)."""
  import jax  # pylint: disable=g-import-not-at-top
  directory = os.path.abspath(directory)
  manifest = verify(directory)
  with open(os.path.join(directory, MODEL_FILE), "rb") as f:
    exported = jax.export.deserialize(bytearray(f.read()))
  return Artifact(directory, manifest, exported)
