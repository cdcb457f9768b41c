"""The training flags entrypoints share, and the TrainConfig they make.

``experiments.mnist`` and ``scripts.sweep`` both import this module; each
defines the flags that differ (one optimizer vs a grid of them).
"""

from absl import flags

from experiments import cli  # pylint: disable=unused-import  (defines the data flags read here)
from experiments import config as config_lib

_DEFAULTS = config_lib.TrainConfig()
FLAGS = flags.FLAGS

flags.DEFINE_string("dataset", _DEFAULTS.dataset, "mnist | fashion_mnist | cifar10")
flags.DEFINE_string("model", _DEFAULTS.model, "mlp | cnn | cnn_small | cifar_convnet")
flags.DEFINE_string("optimizer_form", _DEFAULTS.optimizer_form,
                    "optax (Optax's alias) | textbook (the course's exact rule); see README.")
flags.DEFINE_float("momentum", None, "γ of momentum; default 0.9.")
flags.DEFINE_float("b1", None, "β1: Adam's first-moment decay, textbook Adadelta's D decay.")
flags.DEFINE_float("b2", None, "β2: second-moment decay of rmsprop, adam, adadelta (Optax's ρ).")
flags.DEFINE_float("eps", None, "ε of adagrad, adadelta, rmsprop, adam; see README for where.")
flags.DEFINE_float("initial_accumulator", None, "Adagrad's G_0; default 0.1 optax, 0 textbook.")
flags.DEFINE_float("clip_norm", None, "Clip gradients to this global norm (default: no clipping).")
flags.DEFINE_string("schedule", _DEFAULTS.schedule,
                    "Learning rate over training: constant | step (x step_decay_rate at 1/2 and "
                    "3/4 of training) | cosine (decay to 0) | warmup_cosine (linear warmup, cosine).")
flags.DEFINE_float("warmup_epochs", _DEFAULTS.warmup_epochs, "Warmup length for warmup_cosine.")
flags.DEFINE_float("step_decay_rate", _DEFAULTS.step_decay_rate, "Factor of the step schedule.")
flags.DEFINE_string("gd_mode", _DEFAULTS.gd_mode,
                    "minibatch (--batch_size per update) | stochastic (one example per update) | "
                    "full_batch (all training examples per update).")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Examples per update in minibatch mode.")
flags.DEFINE_integer("num_epochs", _DEFAULTS.num_epochs, "Passes over the training split.")
flags.DEFINE_integer("validation_size", _DEFAULTS.validation_size,
                     "Training images held out for validation (0: none).")
flags.DEFINE_boolean("standardize", _DEFAULTS.standardize,
                     "Standardize pixels with the training mean and std (else x/255).")
flags.DEFINE_list("hidden_sizes", [str(h) for h in _DEFAULTS.hidden_sizes],
                  "MLP hidden layer widths; empty (--hidden_sizes=) is softmax regression.")
flags.DEFINE_string("activation", _DEFAULTS.activation, "MLP activation function.")
flags.DEFINE_float("dropout", None,
                   "Dropout rate p before the output layer (and after every MLP hidden layer); "
                   "default: 0.5 for cnn, 0 for the other models.")
flags.DEFINE_boolean("batch_norm", _DEFAULTS.batch_norm,
                     "Batch normalization after each hidden layer's linear map.")
flags.DEFINE_float("l1", _DEFAULTS.l1, "λ1 of the L1 penalty λ1 Σ|w| on the weights.")
flags.DEFINE_float("l2", _DEFAULTS.l2, "λ2 of the L2 penalty (λ2/2) Σ w² on the weights.")
flags.DEFINE_float("weight_decay", _DEFAULTS.weight_decay,
                   "λ of decoupled weight decay (AdamW style): Δθ -= α λ θ on the weights.")
flags.DEFINE_boolean("progress", True, "Show a progress bar per epoch.")


def train_config(**settings) -> config_lib.TrainConfig:
  """A validated TrainConfig from the shared flags, plus the entrypoint's own ``settings``."""
  try:
    hidden_sizes = tuple(int(h) for h in FLAGS.hidden_sizes)
  except ValueError as e:
    raise config_lib.ConfigError(
        f"hidden_sizes must be integers, got {','.join(FLAGS.hidden_sizes)}") from e
  shared = {
      field: getattr(FLAGS, field) for field in (
          "dataset", "model", "optimizer_form", "momentum", "b1", "b2", "eps",
          "initial_accumulator", "clip_norm", "schedule", "warmup_epochs", "step_decay_rate",
          "gd_mode", "batch_size", "num_epochs", "validation_size", "standardize", "activation",
          "dropout", "batch_norm", "l1", "l2", "weight_decay", "archive_dir", "tfds_data_dir",
          "progress")
  }
  return config_lib.TrainConfig(hidden_sizes=hidden_sizes, **shared, **settings).validate()
