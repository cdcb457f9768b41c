"""What the training entrypoints share (experiments.mnist, .autoencoder, .gan): their flags
(the workdir, the training settings, processes, data) and the start of a run.

An entrypoint calls ``define_workdir`` with its own default, adopts this
module's key flags (``flags.adopt_module_key_flags(training_command)``) and
trains with ``train_from_flags``: the config resolved once from the flags
(one line for a bad setting, before any data are loaded), the processes of a
multi-process run joined, the compilation cache on.
"""

from absl import flags

from experiments import cli
from experiments import config_flags
from experiments import process_flags
from experiments.training import train
from experiments.training.config import TrainConfig

flags.adopt_module_key_flags(config_flags)
flags.adopt_module_key_flags(process_flags)
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS


def define_workdir(default: str) -> None:
  flags.DEFINE_string(
      "workdir", default, "Receives config.json (the resolved settings), metrics.jsonl (one line "
      "per epoch and model), summary.json, checkpoints/ and figures; a workdir with a "
      "checkpoint is resumed.")


def train_from_flags(started_at: float) -> tuple[TrainConfig, dict]:
  """The resolved config of the flags and the summary of its training in --workdir."""
  config = config_flags.config_from_flags().resolve()
  process_flags.join_processes()
  cli.enable_compilation_cache(FLAGS.compilation_cache_dir)
  return config, train.train_and_evaluate(config, FLAGS.workdir, started_at=started_at)
