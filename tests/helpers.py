"""Helpers the test modules share."""

import os

import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository
# JAX's persistent compilation cache of the tests and of the processes they start.
COMPILATION_CACHE = os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(
    ROOT, ".pytest_cache", "jax")
# The environment of a process compiled as users' are (see conftest.py).
USERS_COMPILER = {"JAX_DISABLE_MOST_OPTIMIZATIONS": "0"}


def assert_trees_close(got, want, rtol: float, atol: float = 0.0) -> None:
  """Every leaf of ``got`` close to ``want``'s (same structure), as np.testing.assert_allclose."""
  got_leaves, got_tree = jax.tree.flatten(got)
  want_leaves, want_tree = jax.tree.flatten(want)
  assert got_tree == want_tree
  for a, b in zip(got_leaves, want_leaves):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def assert_trees_equal(got, want) -> None:
  """Bitwise equal leaves, same structure."""
  got_leaves, got_tree = jax.tree.flatten(got)
  want_leaves, want_tree = jax.tree.flatten(want)
  assert got_tree == want_tree
  for a, b in zip(got_leaves, want_leaves):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def uint8_inputs(n: int, shape=(8, 8, 1), num_classes: int = 10, seed: int = 0):
  """Random uint8 images and labels on the device, as ``dataset.Inputs``."""
  from experiments.training.loop import dataset
  images = jax.random.randint(jax.random.key(seed), (n, *shape), 0, 256).astype(np.uint8)
  labels = jax.random.randint(jax.random.key(seed + 1), (n,), 0, num_classes)
  return dataset.Inputs(images, labels)


def one_state(model, tx, seed: int = 0, input_shape=(8, 8, 1), penalty=None, dropout=None):
  """A single model's TrainState (no member axis) at step 0."""
  from experiments.training.loop import state
  from models import networks
  from models import regularizers
  variables = networks.init_variables(model, jax.random.key(seed), input_shape)
  return state.TrainState.create(
      apply_fn=model.apply, params=variables["params"], tx=tx,
      batch_stats=variables.get("batch_stats", {}), key=jax.random.key(seed + 1),
      penalty=penalty or regularizers.Penalty(), dropout=dropout)


def train(state, inputs, batches, chunk_size=None, objective=None):
  """``programs.train_steps`` of ``objective`` (default: classification) over ``batches`` (S, B)
  of ``inputs``, pixels scaled to x/255."""
  from experiments.training.loop import programs
  from experiments.training.objectives import classification
  return jax.jit(programs.train_steps, static_argnums=(0, 6))(
      objective or classification.CLASSIFICATION, state, inputs, np.float32(0.0),
      np.float32(1.0), batches, chunk_size)


def synthetic_data(num_train: int = 640, num_test: int = 200, seed: int = 0):
  """A small learnable ``dataset.HostData``: 8x8 uint8 noise, each class brightening its own line.

  Class c < 8 brightens row c, class 8 or 9 column c - 8, so a model can learn
  it in a few epochs; for the fast loop tests in place of a real dataset.
  """
  from experiments.training.loop import dataset
  rng = np.random.default_rng(seed)

  def split(n):
    labels = rng.integers(0, 10, n).astype(np.int32)
    images = rng.integers(0, 120, (n, 8, 8, 1))
    for c in range(10):
      rows = labels == c
      if c < 8:
        images[rows, c, :, 0] += 120
      else:
        images[rows, :, c - 8, 0] += 120
    return images.astype(np.uint8), labels

  train_images, train_labels = split(num_train)
  test_images, test_labels = split(num_test)
  return dataset.HostData(train_images, train_labels, test_images, test_labels,
                         tuple(str(c) for c in range(10)))


def damage(folder: str, seed: int = 0) -> str:
  """Writes 64 random bytes into the middle of the largest file under ``folder``; returns its path.

  Where ``folder`` holds array data (Orbax keeps it in ``d/`` folders), the
  largest data file: the metadata JSON beside it can be the largest file of a
  small model, and which one is damaged must not depend on compression.
  """
  paths = [os.path.join(d, f) for d, _, names in os.walk(folder) for f in names]
  data = [p for p in paths if os.path.basename(os.path.dirname(p)) == "d"]
  path = max(data or paths, key=os.path.getsize)
  size = os.path.getsize(path)
  with open(path, "r+b") as f:
    f.seek(max(0, size // 2 - 32))
    f.write(np.random.default_rng(seed).integers(0, 256, 64, np.uint8).tobytes())
  return path


def snapshot(folder: str) -> dict[str, bytes]:
  """Every file under ``folder`` and its bytes (to check that nothing changed).

  The locks (``.lock``, ``.lock.process<i>``) are left out: every process that
  takes a workdir's lock writes its pid there.
  """
  out = {}
  for d, _, names in os.walk(folder):
    for name in names:
      if name.startswith(".lock"):
        continue
      with open(os.path.join(d, name), "rb") as f:
        out[os.path.relpath(os.path.join(d, name), folder)] = f.read()
  return out
