"""The training flags, defined once: ``experiments.mnist`` and ``scripts.sweep`` share them.

Each flag is a field of ``TrainConfig`` (same name, same default); ``train_config``
turns the parsed flags into one. Entrypoints adopt these flags as their own
(``flags.adopt_module_key_flags``), so ``--help`` lists every one with its choices.
The process flags say where a run trains, not what it is (not in the config):
``join_processes`` joins the processes of a multi-process run.
"""

from absl import flags
from absl import logging

from data import datasets
from experiments import cli  # pylint: disable=unused-import  (the data flags, also config fields)
from experiments.training import config as config_lib
from experiments.training import distributed
from models import activations
from models import networks
from models import optimizers
from models import schedules

_D = config_lib.TrainConfig()


def _choices(table) -> str:
  return " | ".join(table)


# Data.
flags.DEFINE_string("dataset", _D.dataset, f"Dataset: {_choices(datasets.DATASETS)}.")
flags.DEFINE_integer("validation_size", _D.validation_size,
                     "Training images held out for validation (0: none; ignored with --folds).")
flags.DEFINE_integer("folds", _D.folds,
                     "k-fold cross-validation: k >= 2 models, each validating on its own fold of "
                     "the training split (0: one model and a holdout split).")
flags.DEFINE_integer("data_seed", None, "Seeds the validation split or folds and the shared "
                     "batch order (default: --seed).")
flags.DEFINE_boolean("standardize", _D.standardize,
                     "Standardize pixels with the training mean and std (else x/255).")
# Model.
flags.DEFINE_string("model", _D.model, f"Network: {_choices(networks.MODELS)}.")
flags.DEFINE_list("hidden_sizes", [str(h) for h in _D.hidden_sizes],
                  "MLP hidden layer widths; empty (--hidden_sizes=) is softmax regression.")
flags.DEFINE_string("activation", _D.activation,
                    f"MLP activation: {_choices(activations.ACTIVATIONS)}.")
for _name, _spec in activations.PARAMETERS.items():
  flags.DEFINE_float(_name, None, f"Activation parameter: {_spec.meaning} (default {_spec.default:g}).")
flags.DEFINE_boolean("batch_norm", _D.batch_norm,
                     "Batch normalization after each hidden layer's linear map.")
flags.DEFINE_float("dropout", None, "Dropout rate p before the output layer (and after every "
                   "MLP hidden layer); default: 0.5 for cnn, 0 for the other models.")
# Optimizer.
flags.DEFINE_string("optimizer", _D.optimizer, f"Optimizer: {_choices(optimizers.OPTIMIZERS)}.")
flags.DEFINE_string("optimizer_form", _D.optimizer_form,
                    "optax (Optax's alias) | textbook (the course's exact rule); see README.")
flags.DEFINE_float("learning_rate", None,
                   "(Peak) step size α; default: the optimizer table's for the form.")
flags.DEFINE_float("momentum", None, "γ of momentum; default 0.9.")
flags.DEFINE_float("b1", None, "β1: Adam's first-moment decay, textbook Adadelta's D decay.")
flags.DEFINE_float("b2", None, "β2: second-moment decay of rmsprop, adam, adadelta (Optax's ρ).")
flags.DEFINE_float("eps", None, "ε of adagrad, adadelta, rmsprop, adam; see README for where.")
flags.DEFINE_float("initial_accumulator", None, "Adagrad's G_0; default 0.1 optax, 0 textbook.")
flags.DEFINE_float("clip_norm", None, "Clip gradients to this global norm (default: no clipping).")
flags.DEFINE_string("schedule", _D.schedule,
                    f"Learning rate over training: {_choices(schedules.SCHEDULES)} (see README).")
flags.DEFINE_float("warmup_epochs", _D.warmup_epochs, "Warmup length for warmup_cosine.")
flags.DEFINE_float("step_decay_rate", _D.step_decay_rate,
                   "Factor of the step schedule at 1/2 and 3/4 of training.")
# Regularization.
flags.DEFINE_float("l1", _D.l1, "λ1 of the L1 penalty λ1 Σ|w| on the weights.")
flags.DEFINE_float("l2", _D.l2, "λ2 of the L2 penalty (λ2/2) Σ w² on the weights.")
flags.DEFINE_float("weight_decay", _D.weight_decay,
                   "λ of decoupled weight decay (AdamW style): Δθ -= α λ θ on the weights.")
# Updates.
flags.DEFINE_string("gd_mode", _D.gd_mode,
                    "minibatch (--batch_size per update) | stochastic (one example per update) | "
                    "full_batch (all training examples per update).")
flags.DEFINE_integer("batch_size", _D.batch_size, "Examples per update in minibatch mode.")
flags.DEFINE_integer("num_epochs", _D.num_epochs, "Passes over the training split.")
flags.DEFINE_integer("chunk_size", _D.chunk_size,
                     "Most examples per forward pass when evaluating and in full-batch gradients.")
flags.DEFINE_integer("seed", _D.seed, "Seeds initialization, dropout and the batch order "
                     "(and the split unless --data_seed).")
flags.DEFINE_boolean("shared_batches", _D.shared_batches,
                     "Batch order from --data_seed, shared by models trained together "
                     "(else each model's own --seed).")
flags.DEFINE_integer("patience", _D.patience,
                     "Early stopping: stop after this many epochs without a lower validation "
                     "loss and keep the best epoch's model (0: train all epochs).")
# Outputs.
flags.DEFINE_boolean("checkpoint_every_epoch", _D.checkpoint_every_epoch,
                     "Save a checkpoint after every epoch (always: at the end).")
flags.DEFINE_boolean("plots", _D.plots, "Write PNG figures beside the JSON results.")
flags.DEFINE_boolean("tensorboard", _D.tensorboard,
                     "Write TensorBoard event files (tensorboard --logdir=WORKDIR).")
flags.DEFINE_boolean("progress", _D.progress, "Show progress bars.")
# Processes (scripts/launch.py sets these for processes on one machine).
flags.DEFINE_string("coordinator_address", None, "host:port of process 0, which coordinates a "
                    "run over several processes (with --num_processes and --process_id).")
flags.DEFINE_integer("num_processes", None, "Processes that train the run together.")
flags.DEFINE_integer("process_id", None, "This process's number, 0..num_processes-1.")
flags.DEFINE_boolean("distributed", False, "Join the other processes of a Cloud TPU slice or a "
                     "SLURM job (JAX finds the coordinator, count and id itself).")
flags.DEFINE_integer("distributed_timeout", 120,
                     "Seconds to wait for the coordinator and the other processes.")
PROCESS_FLAGS = ("coordinator_address", "num_processes", "process_id", "distributed",
                 "distributed_timeout")

FLAGS = flags.FLAGS


def hidden_sizes(values: list[str]) -> tuple[int, ...]:
  """'512,512' as (512, 512); ConfigError naming the flag if a width is not an integer."""
  try:
    return tuple(int(h) for h in values)
  except ValueError as e:
    raise config_lib.ConfigError(f"hidden_sizes must be integers, got {','.join(values)}") from e


def train_config(**overrides) -> config_lib.TrainConfig:
  """The TrainConfig of the parsed flags (every field but ``fold``), with ``overrides``."""
  names = [f for f in config_lib.TrainConfig.__dataclass_fields__
           if f not in ("fold", "activation_params")]
  values = {name: getattr(FLAGS, name) for name in names}
  values["hidden_sizes"] = hidden_sizes(FLAGS.hidden_sizes)
  values["activation_params"] = tuple((name, FLAGS[name].value) for name in activations.PARAMETERS
                                      if FLAGS[name].value is not None)
  return config_lib.TrainConfig(**{**values, **overrides})


def join_processes() -> None:
  """Joins the run's other processes (if the process flags ask for it); only process 0 logs INFO."""
  distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                         FLAGS.distributed_timeout, FLAGS.distributed)
  if not distributed.is_leader():
    logging.set_verbosity(logging.WARNING)
