r"""Export a trained model for serving: jax.export (StableHLO) and a TensorFlow SavedModel.

    python -m scripts.export --workdir=/tmp/perceptrax/mnist --output=/tmp/perceptrax/export

Reads the workdir without changing it (a run may still be writing it) and
writes the folder ``experiments/serving/artifact.py`` describes: the model's
prediction function, uint8 images (b, H, W, C) -> class probabilities, with
its weights and pixel scaling baked in, for any batch size b, on CPU or GPU;
the same function as a SavedModel (TF Serving and every tool that reads
SavedModels); and manifest.json with the dataset, class names, input shape,
resolved training settings, test metrics, the training images' pixel
statistics (for drift monitoring) and the SHA-256 of every file; and a
self-test, three test images of each class with the probabilities the exported
function gives them, which every loader runs before serving. Reads the
dataset (--archive_dir, or tfds's prepared copy) for the pixel statistics and
the self-test's images. Serve it with ``python -m scripts.serve --model=DIR``.
"""

import jax
import numpy as np
from absl import flags

from data import datasets
from data import errors
from experiments import cli
from experiments.serving import artifact
from experiments.serving import drift
from experiments.serving import formats
from experiments.training.settings import config as config_lib
from experiments.training.storage import trained_model

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/perceptrax/mnist", "A workdir written by experiments.mnist.")
flags.DEFINE_string("output", "/tmp/perceptrax/export", "The folder to write (an earlier export "
                    "there is replaced).")
flags.DEFINE_integer("member", 0, "Which model of a --folds workdir to export (its fold).")

def main(argv):
  del argv
  errors.check_integer("member", FLAGS.member, 0, errors.MAX_COUNT)
  trained = trained_model.load_classifier(FLAGS.workdir, FLAGS.member)
  config = trained.config
  arrays = datasets.load_arrays(config.dataset, FLAGS.archive_dir, FLAGS.tfds_data_dir)
  function = trained_model.probability_function(trained)
  serialized = formats.serialize(function, trained.input_shape)
  test_images = artifact.self_test_images(arrays["test_images"], arrays["test_labels"],
                                          len(trained.class_names))
  recorded = np.asarray(jax.export.deserialize(bytearray(serialized)).call(test_images))
  manifest = {
      "dataset": config.dataset,
      "model": config.model,
      "class_names": list(trained.class_names),
      "input": {"name": "images", "shape": list(trained.input_shape), "dtype": "uint8"},
      "output": {"name": "probabilities", "dtype": "float32",
                 "shape": ["b", len(trained.class_names)]},
      "platforms": list(formats.PLATFORMS),
      "settings": config_lib.to_json(config),
      "test_metrics": trained.test_metrics,
      "pixel_statistics": drift.statistics(arrays["train_images"]),
      "workdir": FLAGS.workdir,
      "member": FLAGS.member,
      "jax_version": jax.__version__,
  }
  artifact.write(FLAGS.output, serialized,
                 formats.saved_model_writer(function, trained.input_shape), manifest,
                 (test_images, recorded))
  print(f"exported the {config.model} model of {FLAGS.workdir} to {FLAGS.output} "
        f"(test accuracy {trained.test_metrics['accuracy']:.4f})" if trained.test_metrics
        else f"exported the {config.model} model of {FLAGS.workdir} to {FLAGS.output}")


if __name__ == "__main__":
  cli.run(main)
