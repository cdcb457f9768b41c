"""A dataset as flat float arrays: MNIST and Fashion-MNIST (pixels in [0, 1]), or diabetes.

Images are flattened to rows of 784 pixels x/255; ``train_size`` keeps the
first training images (as scikit-learn users slice ``x[:n]``). Diabetes is
scikit-learn's bundled copy (442 patients, 10 standardized features, a
disease-progression target; no download), split once by a seeded
permutation: 89 patients (20%) test, the rest train.
"""

from typing import NamedTuple

import numpy as np

from data import datasets
from data.errors import UserError

IMAGE_DATASETS = ("mnist", "fashion_mnist")
REGRESSION_DATASETS = ("diabetes",)
DIABETES_TEST_SIZE = 89


class Tabular(NamedTuple):
  x_train: np.ndarray  # float32 (N, D)
  y_train: np.ndarray  # int32 labels, or float32 targets
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int  # 0: regression
  image_shape: tuple[int, ...] | None  # (28, 28) for images


def load(dataset: str, archive_dir: str | None, tfds_data_dir: str | None,
         train_size: int | None, seed: int = 0) -> Tabular:
  """The named dataset's train and test arrays (the first ``train_size`` training rows)."""
  if dataset in REGRESSION_DATASETS:
    from sklearn.datasets import load_diabetes
    x, y = load_diabetes(return_X_y=True)
    train, test = datasets.split_indices(len(y), seed, validation_size=DIABETES_TEST_SIZE)
    split = Tabular(x[train].astype(np.float32), y[train].astype(np.float32),
                    x[test].astype(np.float32), y[test].astype(np.float32), 0, None)
  else:
    arrays = datasets.load_arrays(dataset, archive_dir, tfds_data_dir)

    def flat(images):
      return np.asarray(datasets.to_model_input(images), np.float32).reshape(len(images), -1)

    split = Tabular(flat(arrays["train_images"]), arrays["train_labels"].astype(np.int32),
                    flat(arrays["test_images"]), arrays["test_labels"].astype(np.int32), 10,
                    arrays["train_images"].shape[1:3])
  if train_size is not None:
    if train_size > len(split.y_train):
      raise UserError(f"--train_size={train_size} is more than the {len(split.y_train)} "
                      f"training examples of {dataset}")
    split = split._replace(x_train=split.x_train[:train_size], y_train=split.y_train[:train_size])
  return split
