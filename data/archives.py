"""Offline preparation: tfds builds a dataset from its official archives.

tfds normally downloads each dataset's archives; here they come from a local
folder instead. ``archive_dir`` holds one subfolder per dataset (``mnist/``,
``fashion_mnist/``, ...) with that dataset's original files, and the subfolder
is handed to tfds as its *manual download directory*: tfds then uses the local
files, verifies them against its registered SHA-256 checksums, and prepares
the dataset into ``tfds_data_dir`` exactly as if it had downloaded them.

TensorFlow and tfds are imported only here, and only when a dataset must be
prepared or read for the first time (importing them costs seconds).
"""

import contextlib
import hashlib
import io
import os
import re
import socket
import urllib.parse

import numpy as np
from absl import logging

from data import errors
from data import progress
from data import tensorflow_quiet

ARCHIVE_DIR_ENV = "PERCEPTRAX_ARCHIVE_DIR"

# The original files tfds registers for each dataset, as named by their source.
ARCHIVES = {
    "mnist": (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ),
    "fashion_mnist": (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ),
    "cifar10": ("cifar-10-binary.tar.gz",),
}
EXAMPLES = {"mnist": 70_000, "fashion_mnist": 70_000, "cifar10": 60_000}  # train + test


class DataError(errors.UserError):
  """A dataset cannot be prepared or read; the message says what to do."""


def resolve_archive_dir(archive_dir: str | None) -> str | None:
  """Returns ``archive_dir``, else ``$PERCEPTRAX_ARCHIVE_DIR``, else None."""
  return archive_dir or os.environ.get(ARCHIVE_DIR_ENV) or None


def resolve_tfds_data_dir(tfds_data_dir: str | None) -> str:
  """tfds's own convention: the argument, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
  path = tfds_data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
  return os.path.expanduser(path)


def missing_archives_message(name: str, archive_dir: str | None) -> str:
  """What to do when ``name`` can be neither read nor downloaded, naming the files missing."""
  if not archive_dir:
    return (f"{name} is not prepared and cannot be downloaded: put {', '.join(ARCHIVES[name])} "
            f"in <archive_dir>/{name} and pass --archive_dir (or set ${ARCHIVE_DIR_ENV})")
  folder = os.path.join(archive_dir, name)
  missing = [f for f in ARCHIVES[name] if not os.path.isfile(os.path.join(folder, f))]
  return (f"{name} is not prepared and cannot be downloaded: {', '.join(missing)} "
          f"{'is' if len(missing) == 1 else 'are'} missing from {folder}")


def _tfds():
  """Imports tfds, quiet, TensorFlow first (``tensorflow_quiet``); tfds's own progress bars
  (a dozen per dataset, for files it only copies) are off: preparing shows one bar
  instead (``_one_bar``)."""
  tensorflow_quiet.tensorflow()
  with tensorflow_quiet.native_stderr_silenced():
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import download_manager
  tfds.disable_progress_bar()
  return tfds, download_manager.NonMatchingChecksumError


@contextlib.contextmanager
def _one_bar(name: str):
  """While tfds prepares ``name``: one bar, of the examples it generates over every split.

  tfds asks ``tensorflow_datasets.core.utils.tqdm`` for each of its bars
  (downloads, extraction, splits, each split's examples, shuffling); here
  the "Generating <split> examples..." ones count into one bar and the
  others draw nothing.
  """
  from tensorflow_datasets.core import utils

  def one(iterable=None, *args, desc: str = "", **kwargs):
    del kwargs
    if desc.startswith("Generating ") and desc.endswith(" examples..."):
      return _counted(iterable, bar)
    return utils.EmptyTqdm(iterable, *args)

  tfds_tqdm = utils.tqdm
  with progress.bar(total=EXAMPLES.get(name), desc=f"preparing {name}", unit=" examples") as bar:
    utils.tqdm = one
    try:
      yield
    finally:
      utils.tqdm = tfds_tqdm


def _counted(iterable, bar):
  for item in iterable:
    bar.update()
    yield item


def _reachable(urls, timeout: float = 5.0) -> bool:
  """Whether every host serving ``urls`` accepts a connection within ``timeout`` s.

  Asked before a download so that, offline, the user learns at once what to do
  instead of after minutes of tfds's download retries.
  """
  for url in urls:
    parsed = urllib.parse.urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
      socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError:
      return False
  return True


def _mismatched(manual_dir: str | None, url_infos) -> list[str]:
  """The archive files in ``manual_dir`` whose SHA-256 differs from tfds's registered checksum."""
  bad = []
  for info in url_infos.values():
    path = os.path.join(manual_dir or "", info.filename or "")
    if manual_dir and os.path.isfile(path):
      with open(path, "rb") as f:
        if hashlib.file_digest(f, "sha256").hexdigest() != info.checksum:
          bad.append(info.filename)
  return bad


def check_preparable(name: str, archive_dir: str | None, tfds_data_dir: str) -> bool:
  """DataError when ``name`` is neither prepared in ``tfds_data_dir`` nor has its archives in
  ``archive_dir``: said without importing TensorFlow (seconds) or creating anything. Returns
  whether an archive is missing (then only a prepared copy can be read)."""
  missing = archive_dir is not None and any(
      not os.path.isfile(os.path.join(archive_dir, name, f)) for f in ARCHIVES[name])
  if missing and not os.path.isdir(os.path.join(tfds_data_dir, name)):
    raise DataError(missing_archives_message(name, archive_dir))
  return missing


def prepare_and_read(name: str, archive_dir: str | None, tfds_data_dir: str):
  """Prepares ``name`` with tfds if needed and returns its splits as NumPy.

  Returns:
    (arrays, version): ``arrays`` maps ``{train,test}_{images,labels}`` to
    uint8 images (N, H, W, C) and int32 labels (N,); ``version`` is the tfds
    dataset version.

  Raises:
    DataError: the archives are missing or do not match tfds's checksums.
  """
  manual_dir = os.path.join(archive_dir, name) if archive_dir else None
  missing = check_preparable(name, archive_dir, tfds_data_dir)
  tfds, checksum_error = _tfds()
  try:
    return _prepare_and_read(tfds, checksum_error, name, manual_dir, missing, archive_dir,
                             tfds_data_dir)
  except DataError:
    raise
  except Exception as e:  # damaged prepared files: one line
    where = os.path.join(tfds_data_dir, name)
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    reason = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*$", "", reason)[:200]  # TensorFlow's op details
    if isinstance(e, OSError) and e.errno is not None:
      raise  # the environment's (a full disk): cli.py names the file
    raise DataError(f"the prepared {name} in {where} cannot be read ({type(e).__name__}: "
                    f"{reason}); delete {where} to prepare it again from the archives") from e


def _prepare_and_read(tfds, checksum_error, name, manual_dir, missing, archive_dir,
                      tfds_data_dir):
  """``prepare_and_read``'s work, once TensorFlow and tfds are imported."""
  builder = tfds.builder(name, data_dir=tfds_data_dir)
  if not builder.is_prepared():
    if missing:
      raise DataError(missing_archives_message(name, archive_dir))
    if manual_dir is None and not _reachable(builder.url_infos or ()):
      raise DataError(missing_archives_message(name, archive_dir))
    logging.info("preparing %s with tfds into %s (once; %s)", name, tfds_data_dir,
                 f"from the archives in {manual_dir}" if manual_dir else "downloading")
    try:
      # tfds names an extracted file after its archive only, and MNIST and
      # Fashion-MNIST share file names: with tfds's shared extract dir the second
      # dataset prepared would silently reuse the first one's extracted files
      # (seen: Fashion-MNIST prepared as a copy of MNIST). A per-dataset
      # extract dir keeps them apart. tfds prints "Downloading and preparing"
      # (sizes unknown, nothing downloaded) to stdout: kept off the console.
      with contextlib.redirect_stdout(io.StringIO()), _one_bar(name):
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(
                manual_dir=manual_dir,
                extract_dir=os.path.join(tfds_data_dir, "downloads", "extracted", name),
            )
        )
    except checksum_error as e:
      bad = _mismatched(manual_dir, builder.url_infos or {})
      raise DataError(
          f"{', '.join(bad) or 'an archive'} in {manual_dir} does not match the checksum "
          "tfds registers for it (damaged, or a different file): replace it with the original"
      ) from e
    except Exception as e:  # No archives and no network: say what to do.
      if manual_dir is not None:
        raise
      raise DataError(missing_archives_message(name, archive_dir)) from e
  arrays = {}
  for split in ("train", "test"):
    # Batches of 10k rather than batch_size=-1, which crashes TensorFlow on
    # tfds's mock data (used by the unit tests).
    with tensorflow_quiet.native_stderr_silenced():  # a damaged record is a Python error; TF's C++ line is noise
      batches = list(tfds.as_numpy(builder.as_dataset(split=split).batch(10_000)))
    arrays[f"{split}_images"] = np.concatenate([b["image"] for b in batches]).astype(np.uint8)
    arrays[f"{split}_labels"] = np.concatenate([b["label"] for b in batches]).astype(np.int32)
  return arrays, str(builder.info.version)
