"""data/: tfds mock data, splits, the decoded-array cache, and real MNIST from the archives."""

import gzip
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data import archives
from data import datasets
from data.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _placeholder_archives(tmp_path):
  """An archive folder with empty files: tfds's mocked preparation never reads them."""
  folder = tmp_path / "archives" / "mnist"
  folder.mkdir(parents=True)
  for name in archives.ARCHIVES["mnist"]:
    (folder / name).touch()
  return str(tmp_path / "archives")


def test_mock_data_through_tfds_gives_uint8_images_and_int_labels(tmp_path):
  with tfds.testing.mock_data(num_examples=20):
    arrays = datasets.load_arrays("mnist", _placeholder_archives(tmp_path), str(tmp_path))
  assert arrays["train_images"].shape == (20, 28, 28, 1)
  assert arrays["test_images"].shape == (20, 28, 28, 1)
  assert arrays["train_images"].dtype == np.uint8 and arrays["train_labels"].dtype == np.int32
  assert 0 <= arrays["test_labels"].min() and arrays["test_labels"].max() < 10
  assert os.path.exists(datasets.cache_path("mnist", str(tmp_path)))
  # The second load reads the cache (mock_data is off now) and gives the same arrays.
  again = datasets.load_arrays("mnist", tfds_data_dir=str(tmp_path))
  for key, value in arrays.items():
    np.testing.assert_array_equal(again[key], value)


def test_a_holdout_split_is_seeded_disjoint_and_complete():
  train, validation = datasets.split_indices(100, seed=1, validation_size=30)
  assert len(train) == 70 and len(validation) == 30
  assert sorted(np.concatenate([train, validation]).tolist()) == list(range(100))
  assert np.all(np.diff(train) > 0) and np.all(np.diff(validation) > 0)  # sorted
  same, _ = datasets.split_indices(100, seed=1, validation_size=30)
  other, _ = datasets.split_indices(100, seed=2, validation_size=30)
  np.testing.assert_array_equal(same, train)
  assert not np.array_equal(other, train)
  everything, none = datasets.split_indices(100, seed=1)
  assert len(everything) == 100 and len(none) == 0


def test_a_training_subset_is_the_first_of_the_seeded_order_after_the_validation_split():
  """--train_size: the same validation split, and the subset is a seeded random sample of the
  training split (so train_size = 1 is the first entry after validation, not example 0)."""
  train, validation = datasets.split_indices(100, seed=1, validation_size=30)
  subset, same = datasets.split_indices(100, seed=1, validation_size=30, train_size=20)
  np.testing.assert_array_equal(same, validation)
  assert len(subset) == 20 and set(subset) < set(train) and np.all(np.diff(subset) > 0)
  order = np.random.default_rng(1).permutation(100)
  assert subset.tolist() == sorted(order[30:50].tolist())
  everything, _ = datasets.split_indices(100, seed=1, validation_size=30, train_size=70)
  np.testing.assert_array_equal(everything, train)


def test_folds_partition_the_training_split():
  """k = 7 folds of 103 examples: 14 each, the 5 left over train in every fold."""
  folds = [datasets.split_indices(103, seed=4, folds=7, fold=j) for j in range(7)]
  validations = [v for _, v in folds]
  assert all(len(v) == 14 for v in validations) and all(len(t) == 89 for t, _ in folds)
  union = np.concatenate(validations)
  assert len(np.unique(union)) == 98  # disjoint
  left_over = set(range(103)) - set(union.tolist())
  assert len(left_over) == 5 and all(left_over <= set(t.tolist()) for t, _ in folds)
  for train, validation in folds:
    assert not set(train.tolist()) & set(validation.tolist())
  # The holdout split of size s is fold 0 of the same permutation.
  np.testing.assert_array_equal(
      datasets.split_indices(103, seed=4, validation_size=14)[1], validations[0])


def test_pixel_statistics_are_those_of_x_over_255():
  images = np.random.default_rng(0).integers(0, 256, (50, 6, 6, 1), np.uint8)
  mean, std = datasets.pixel_statistics(images)
  pixels = images.astype(np.float64) / 255.0
  assert mean == pytest.approx(pixels.mean(), rel=1e-12)
  assert std == pytest.approx(pixels.std(), rel=1e-12)


def test_model_input_is_the_same_on_host_and_device():
  pixels = np.arange(256, dtype=np.uint8).reshape(4, 8, 8, 1)
  host = datasets.to_model_input(pixels)
  assert host.dtype == np.float32 and host.min() == 0.0 and host.max() == 1.0
  device = jax.jit(datasets.to_model_input)(jnp.asarray(pixels))
  np.testing.assert_array_equal(host, np.asarray(device))  # bit for bit
  standardized = jax.jit(datasets.to_model_input)(jnp.asarray(pixels), 0.13, 0.31)
  # XLA divides by std as a multiplication by 1/std: at most 2 ulp apart.
  np.testing.assert_allclose(standardized, datasets.to_model_input(pixels, 0.13, 0.31),
                             rtol=3e-7, atol=3e-7)


def test_unknown_dataset_names_the_choices():
  with pytest.raises(UserError, match="mnist, fashion_mnist, cifar10"):
    datasets.load_arrays("imagenet")


def test_missing_archives_are_named_with_their_folder(tmp_path):
  folder = tmp_path / "archives" / "mnist"
  folder.mkdir(parents=True)
  with pytest.raises(archives.DataError) as error:
    datasets.load_arrays("mnist", str(tmp_path / "archives"), str(tmp_path / "tfds"))
  assert str(error.value) == (
      f"mnist is not prepared and cannot be downloaded: {', '.join(archives.ARCHIVES['mnist'])} "
      f"are missing from {folder}")
  for name in archives.ARCHIVES["mnist"][:3]:
    (folder / name).touch()
  with pytest.raises(archives.DataError) as error:
    datasets.load_arrays("mnist", str(tmp_path / "archives"), str(tmp_path / "tfds"))
  assert str(error.value).endswith(f": t10k-labels-idx1-ubyte.gz is missing from {folder}")
  assert not (tmp_path / "tfds").exists()  # said before anything (the cache's lock) is created


@pytest.mark.slow
def test_corrupted_archive_is_reported_as_a_checksum_mismatch(archive_dir, tmp_path):
  corrupted = tmp_path / "archives" / "mnist"
  corrupted.mkdir(parents=True)
  for name in archives.ARCHIVES["mnist"]:
    shutil.copy(os.path.join(archive_dir, "mnist", name), corrupted / name)
  with gzip.open(corrupted / "t10k-labels-idx1-ubyte.gz", "wb") as f:
    f.write(b"not the MNIST labels")
  with pytest.raises(archives.DataError) as raised:
    datasets.load_arrays("mnist", str(tmp_path / "archives"), str(tmp_path / "tfds"))
  assert str(raised.value) == (
      f"t10k-labels-idx1-ubyte.gz in {corrupted} does not match the checksum tfds registers "
      "for it (damaged, or a different file): replace it with the original")
  assert not os.path.exists(datasets.cache_path("mnist", str(tmp_path / "tfds")))


@pytest.mark.slow
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


@pytest.mark.slow
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
