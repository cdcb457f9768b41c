"""What the training entrypoints share (experiments.mnist, .autoencoder, .gan): their flags
(the workdir, the training settings, processes, data) and the start of a run.

An entrypoint calls ``define_workdir`` with its own default, adopts this
module's key flags (``flags.adopt_module_key_flags(training_command)``), gets
its config from ``config_from_flags`` (a model it does not train refused: each
objective has one entrypoint, ``model_settings.OBJECTIVES``; the config resolved
once from the flags, one line for a bad setting before any data are loaded; the
processes of a multi-process run joined; the compilation cache on) and trains
it with ``train.train_and_evaluate``.
"""

from absl import flags

from data.errors import UserError
from experiments import cli
from experiments import config_flags
from experiments import process_flags
from experiments.training.settings import model_settings
from experiments.training.settings.config import TrainConfig
from models import networks

flags.adopt_module_key_flags(config_flags)
flags.adopt_module_key_flags(process_flags)
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS


def define_workdir(default: str) -> None:
  flags.DEFINE_string(
      "workdir", default, "Receives config.json (the resolved settings), metrics.jsonl (one line "
      "per epoch and model), summary.json, checkpoints/ and figures; a workdir with a "
      "checkpoint is resumed.")


def _check_model(entrypoint: str) -> None:
  """UserError if --model is not one that ``entrypoint`` trains, naming the one that does."""
  objective = model_settings.objective_of(FLAGS.model)
  trains = lambda model: model_settings.OBJECTIVES.get(  # noqa: E731
      model_settings.objective_of(model)).entrypoint
  if trains(FLAGS.model) != entrypoint:
    models = [m for m in networks.MODELS if trains(m) == entrypoint]
    raise UserError(f"{entrypoint} trains {', '.join(models)}, got --model={FLAGS.model} "
                    f"(trained for {objective}: {trains(FLAGS.model)})")


def config_from_flags(entrypoint: str) -> TrainConfig:
  """The resolved config of the flags, for a model that ``entrypoint`` trains; the processes
  joined and the compilation cache on."""
  _check_model(entrypoint)
  config = config_flags.config_from_flags().resolve()
  process_flags.join_processes()
  cli.enable_compilation_cache(FLAGS.compilation_cache_dir)
  return config
