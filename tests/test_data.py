"""data/: tfds mock data, splits, the decoded-array cache, and real MNIST from the archives."""

import gzip
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data import archives
from data import datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _placeholder_archives(tmp_path):
  """An archive folder with empty files: tfds's mocked preparation never reads them."""
  folder = tmp_path / "archives" / "mnist"
  folder.mkdir(parents=True)
  for name in archives.ARCHIVES["mnist"]:
    (folder / name).touch()
  return str(tmp_path / "archives")


def test_mock_data_through_tfds_gives_float_images_and_int_labels(tmp_path):
  with tfds.testing.mock_data(num_examples=20):
    data = datasets.get_datasets(
        "mnist", archive_dir=_placeholder_archives(tmp_path), tfds_data_dir=str(tmp_path),
        validation_size=5,
    )
  assert data.train.images.shape == (15, 28, 28, 1)
  assert data.validation.images.shape == (5, 28, 28, 1)
  assert data.test.images.shape == (20, 28, 28, 1)
  for split in data:
    if isinstance(split, datasets.Split):
      assert split.images.dtype == np.float32 and split.labels.dtype == np.int32
      assert 0.0 <= split.images.min() and split.images.max() <= 1.0
      assert 0 <= split.labels.min() and split.labels.max() < 10
  assert os.path.exists(datasets.cache_path("mnist", str(tmp_path)))
  # The second load reads the cache (mock_data is off now) and gives the same arrays.
  again = datasets.get_datasets("mnist", tfds_data_dir=str(tmp_path), validation_size=5)
  np.testing.assert_array_equal(again.train.images, data.train.images)
  np.testing.assert_array_equal(again.test.labels, data.test.labels)


def test_validation_split_is_seeded_disjoint_and_complete():
  images = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1)
  labels = np.arange(100, dtype=np.int32)
  train, val = datasets.split_validation(images, labels, 30, seed=1)
  assert len(train.labels) == 70 and len(val.labels) == 30
  assert sorted(np.concatenate([train.labels, val.labels]).tolist()) == list(range(100))
  np.testing.assert_array_equal(train.images[:, 0, 0, 0], train.labels)  # pairs stay together
  same, _ = datasets.split_validation(images, labels, 30, seed=1)
  other, _ = datasets.split_validation(images, labels, 30, seed=2)
  np.testing.assert_array_equal(same.labels, train.labels)
  assert not np.array_equal(other.labels, train.labels)
  empty_train, empty_val = datasets.split_validation(images, labels, 0, seed=1)
  assert len(empty_train.labels) == 100 and len(empty_val.labels) == 0
  with pytest.raises(ValueError, match="validation_size"):
    datasets.split_validation(images, labels, 100, seed=1)


def test_standardize_uses_training_statistics(tmp_path):
  with tfds.testing.mock_data(num_examples=50):
    data = datasets.get_datasets(
        "mnist", archive_dir=_placeholder_archives(tmp_path), tfds_data_dir=str(tmp_path),
        validation_size=10, standardize=True,
    )
  assert abs(float(data.train.images.mean())) < 1e-4
  assert float(data.train.images.std()) == pytest.approx(1.0, rel=1e-4)


def test_unknown_dataset_names_the_choices():
  with pytest.raises(archives.DataError, match="mnist, fashion_mnist, cifar10"):
    datasets.load_arrays("imagenet")


def test_missing_archives_name_the_four_files_and_the_folder(tmp_path):
  (tmp_path / "archives" / "mnist").mkdir(parents=True)
  with pytest.raises(archives.DataError) as error:
    datasets.load_arrays("mnist", str(tmp_path / "archives"), str(tmp_path / "tfds"))
  message = str(error.value)
  for name in archives.ARCHIVES["mnist"]:
    assert name in message
  assert os.path.join(str(tmp_path / "archives"), "mnist") in message


def test_corrupted_archive_is_reported_as_a_checksum_mismatch(archive_dir, tmp_path):
  corrupted = tmp_path / "archives" / "mnist"
  corrupted.mkdir(parents=True)
  for name in archives.ARCHIVES["mnist"]:
    shutil.copy(os.path.join(archive_dir, "mnist", name), corrupted / name)
  with gzip.open(corrupted / "t10k-labels-idx1-ubyte.gz", "wb") as f:
    f.write(b"not the MNIST labels")
  with pytest.raises(archives.DataError, match="checksum"):
    datasets.load_arrays("mnist", str(tmp_path / "archives"), str(tmp_path / "tfds"))
  assert not os.path.exists(datasets.cache_path("mnist", str(tmp_path / "tfds")))


def test_real_mnist_from_the_archives(mnist_data_dir):
  arrays = datasets.load_arrays("mnist", tfds_data_dir=mnist_data_dir)
  assert arrays["train_images"].shape == (60000, 28, 28, 1)
  assert arrays["test_images"].shape == (10000, 28, 28, 1)
  assert arrays["train_images"].dtype == np.uint8
  assert arrays["train_labels"].dtype == np.int32
  # MNIST's published class counts of the test set.
  np.testing.assert_array_equal(
      np.bincount(arrays["test_labels"]),
      [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
  )
  data = datasets.get_datasets("mnist", tfds_data_dir=mnist_data_dir, validation_size=5000)
  assert len(data.train.labels) == 55000 and len(data.validation.labels) == 5000
  assert data.train.images.max() == 1.0 and data.train.images.min() == 0.0


def test_a_second_start_reads_the_cache_without_tensorflow(mnist_data_dir):
  code = (
      "import sys; from data import datasets; "
      f"a = datasets.load_arrays('mnist', tfds_data_dir={mnist_data_dir!r}); "
      "assert a['train_images'].shape == (60000, 28, 28, 1); "
      "print('tensorflow' in sys.modules)"
  )
  result = subprocess.run(
      [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
  )
  assert result.stdout.strip() == "False"


def test_fashion_mnist_prepared_beside_mnist_is_fashion_mnist(archive_dir, mnist_data_dir):
  """MNIST and Fashion-MNIST archives share file names; preparing one must not feed the other."""
  fashion = datasets.load_arrays("fashion_mnist", archive_dir, mnist_data_dir)
  mnist = datasets.load_arrays("mnist", tfds_data_dir=mnist_data_dir)
  assert fashion["test_images"].shape == (10000, 28, 28, 1)
  np.testing.assert_array_equal(np.bincount(fashion["test_labels"]), [1000] * 10)
  assert not np.array_equal(fashion["test_images"], mnist["test_images"])
