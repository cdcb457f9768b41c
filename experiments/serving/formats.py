"""The two formats of an export: jax.export's serialized StableHLO and a TensorFlow SavedModel.

Both hold the same function, uint8 images (b, H, W, C) -> class
probabilities, for any batch size b, lowered for every platform of
``PLATFORMS``; ``artifact.write`` puts them in the export's folder.
"""

import jax
import jax.numpy as jnp
from absl import logging

from data import tensorflow_quiet

PLATFORMS = ("cpu", "cuda")


def serialize(function, input_shape) -> bytes:
  """``function`` exported for uint8 batches of any size b, on every platform of ``PLATFORMS``."""
  spec = jax.ShapeDtypeStruct(jax.export.symbolic_shape(f"b, {', '.join(map(str, input_shape))}"),
                              jnp.uint8)
  return jax.export.export(jax.jit(function), platforms=PLATFORMS)(spec).serialize()


def saved_model_writer(function, input_shape):
  """A function saving ``function`` as a SavedModel (jax2tf, native serialization)."""

  def write(path: str) -> None:
    tf = tensorflow_quiet.tensorflow()
    from jax.experimental import jax2tf
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


