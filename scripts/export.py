r"""Export a trained model for serving: jax.export (StableHLO) and a TensorFlow SavedModel.

    python -m scripts.export --workdir=/tmp/perceptrax/mnist --output=/tmp/perceptrax/export

Reads the workdir without changing it (a run may still be writing it) and
writes the folder ``experiments/serving/artifact.py`` describes: the model's
prediction function, uint8 images (b, H, W, C) -> class probabilities, with
its weights and pixel scaling baked in, for any batch size b, on CPU or GPU;
the same function as a SavedModel (TF Serving and every tool that reads
SavedModels); and manifest.json with the dataset, class names, input shape,
resolved training settings, test metrics, the training images' pixel
statistics (for drift monitoring) and the SHA-256 of every file. Serve it with
``python -m scripts.serve --model=DIR``.
"""

import jax
import jax.numpy as jnp
from absl import flags
from absl import logging

from data import errors
from data import datasets
from experiments import cli
from experiments.serving import artifact
from experiments.serving import drift
from experiments.training import config as config_lib
from experiments.training import trained_model

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/perceptrax/mnist", "A workdir written by experiments.mnist.")
flags.DEFINE_string("output", "/tmp/perceptrax/export", "The folder to write (an earlier export "
                    "there is replaced).")
flags.DEFINE_integer("member", 0, "Which model of a --folds workdir to export (its fold).")

PLATFORMS = ("cpu", "cuda")


def serialize(function, input_shape) -> bytes:
  """``function`` exported for uint8 batches of any size b, on every platform of ``PLATFORMS``."""
  spec = jax.ShapeDtypeStruct(jax.export.symbolic_shape(f"b, {', '.join(map(str, input_shape))}"),
                              jnp.uint8)
  return jax.export.export(jax.jit(function), platforms=PLATFORMS)(spec).serialize()


def saved_model_writer(function, input_shape):
  """A function saving ``function`` as a SavedModel (jax2tf, native serialization)."""

  def write(path: str) -> None:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  (seconds to import)
    from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top
    tf.config.set_visible_devices([], "GPU")  # JAX, not TensorFlow, owns the accelerators
    shape = f"(b, {', '.join(map(str, input_shape))})"
    converted = jax2tf.convert(function, polymorphic_shapes=[shape],
                               native_serialization_platforms=PLATFORMS, with_gradient=False)
    module = tf.Module()
    module.serve = tf.function(
        lambda images: {"probabilities": converted(images)}, autograph=False,
        input_signature=[tf.TensorSpec([None, *input_shape], tf.uint8, name="images")])
    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.WARNING)  # TensorFlow logs each file it writes at INFO
    try:
      tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    finally:
      logging.set_verbosity(verbosity)

  return write


def main(argv):
  del argv
  errors.check_integer("member", FLAGS.member, 0, errors.MAX_COUNT)
  trained = trained_model.load(FLAGS.workdir, FLAGS.member)
  config = trained.config
  train_images = datasets.load_arrays(config.dataset, FLAGS.archive_dir,
                                      FLAGS.tfds_data_dir)["train_images"]
  function = trained_model.probability_function(trained)
  manifest = {
      "dataset": config.dataset,
      "model": config.model,
      "class_names": list(trained.class_names),
      "input": {"name": "images", "shape": list(trained.input_shape), "dtype": "uint8"},
      "output": {"name": "probabilities", "dtype": "float32",
                 "shape": ["b", len(trained.class_names)]},
      "platforms": list(PLATFORMS),
      "settings": config_lib.to_json(config),
      "test_metrics": trained.test_metrics,
      "pixel_statistics": drift.statistics(train_images),
      "workdir": FLAGS.workdir,
      "member": FLAGS.member,
      "jax_version": jax.__version__,
  }
  artifact.write(FLAGS.output, serialize(function, trained.input_shape),
                 saved_model_writer(function, trained.input_shape), manifest)
  print(f"exported the {config.model} model of {FLAGS.workdir} to {FLAGS.output} "
        f"(test accuracy {trained.test_metrics['accuracy']:.4f})" if trained.test_metrics
        else f"exported the {config.model} model of {FLAGS.workdir} to {FLAGS.output}")


if __name__ == "__main__":
  cli.run(main)
