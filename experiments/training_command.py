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

import dataclasses
import re
import textwrap

from absl import flags

from data.errors import UserError
from experiments import cli
from experiments import config_flags
from experiments import process_flags
from experiments.training.settings import model_settings
from experiments.training.settings.config import TrainConfig
from models import activations
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


def _entrypoint_of(model: str) -> str:
  """The entrypoint that trains ``model`` (its objective's)."""
  return model_settings.OBJECTIVES.get(model_settings.objective_of(model)).entrypoint


def _trains(entrypoint: str) -> list[str]:
  """The models that ``entrypoint`` trains."""
  return [m for m in networks.MODELS if _entrypoint_of(m) == entrypoint]


def _check_model(entrypoint: str) -> None:
  """UserError if --model is not one that ``entrypoint`` trains, naming the one that does."""
  if _entrypoint_of(FLAGS.model) != entrypoint:
    raise UserError(f"{entrypoint} trains {', '.join(_trains(entrypoint))}, got "
                    f"--model={FLAGS.model} (trained for "
                    f"{model_settings.objective_of(FLAGS.model)}: {_entrypoint_of(FLAGS.model)})")


def config_from_flags(entrypoint: str) -> TrainConfig:
  """The resolved config of the flags, for a model that ``entrypoint`` trains; the processes
  joined and the compilation cache on."""
  _check_model(entrypoint)
  config = config_flags.config_from_flags().resolve()
  process_flags.join_processes()
  cli.enable_compilation_cache(FLAGS.compilation_cache_dir)
  return config


# --help's groups, in TrainConfig's declaration order: each begins at its first field; the
# flags that are no field go where they belong.
HELP_GROUPS = (("data", "dataset"), ("the model's own", "model"), ("optimizer", "optimizer"),
               ("regularization", "l1"), ("training", "gd_mode"),
               ("outputs", "checkpoint_every_epoch"))
_OTHER_FLAGS = {"archive_dir": "data", "tfds_data_dir": "data", "workdir": "outputs",
                "compilation_cache_dir": "outputs",
                **{name: "processes" for name in ("coordinator_address", "num_processes",
                                                  "process_id", "distributed",
                                                  "distributed_timeout")}}


def _takers(setting: str, models: list[str]) -> list[str] | None:
  """Which of ``models`` take ``setting``: a list ([] for none), or None when every model does."""
  if setting in networks.ARCHITECTURE_SETTINGS or setting in activations.PARAMETERS:
    architecture = "activation" if setting in activations.PARAMETERS else setting
    return [m for m in models if networks.takes(m, architecture)]
  field = next((f for f in dataclasses.fields(TrainConfig) if f.name == setting), None)
  if field is not None and field.metadata["objectives"]:
    return [m for m in models if model_settings.objective_of(m) in field.metadata["objectives"]]
  return None


def _flag_help(name: str, takers: list[str] | None, models: list[str]) -> str:
  flag = FLAGS[name]
  kind = "[no]" if flag.boolean else ""
  text = flag.help + ("" if flag.default is None else f" (default: {flag.default_as_str})")
  if name == "model":  # the models this entrypoint trains, not every model's name
    text = re.sub(r"Choices: [^.]*\.", f"Choices: {' | '.join(models)}.", text)
  if takers is not None and takers != models:
    text += f" Taken by {', '.join(takers)}."
  return textwrap.fill(text, 96, initial_indent=f"  --{kind}{name}: ",
                       subsequent_indent=" " * 6)


def help_text(entrypoint: str, doc: str) -> str:
  """``entrypoint``'s ``--help``: its ``doc``, then its flags, grouped, without those that none
  of the models it trains takes (``--helpfull`` lists every flag)."""
  models = _trains(entrypoint)
  fields = [f.name for f in dataclasses.fields(TrainConfig) if f.metadata["flag"]]
  group, groups = None, {name: [] for name, _ in HELP_GROUPS}
  starts = dict((first, name) for name, first in HELP_GROUPS)
  for name in fields:
    group = starts.get(name, group)
    groups[group].append(name)
  groups["the model's own"] += list(activations.PARAMETERS)
  groups["processes"] = []
  for name, where in _OTHER_FLAGS.items():
    groups[where].append(name)
  sections = []
  for title, names in groups.items():
    takers = {n: _takers(n, models) for n in names if n in FLAGS}
    lines = [_flag_help(n, t, models) for n, t in takers.items() if t != []]
    if lines:
      sections.append(f"{title}:\n" + "\n".join(lines))
  return (f"{doc.strip()}\n\n{entrypoint} trains {', '.join(models)}. Flags (--helpfull: all "
          "of them, those of other models included):\n\n" + "\n\n".join(sections))
