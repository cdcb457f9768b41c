r"""A maintenance tool: rewrites the generated tables of docs/ from the code.

    python -m scripts.doc_tables            # rewrite the tables in docs/
    python -m scripts.doc_tables --check    # exit 1 if a table is out of date

Each table sits between two HTML comments in its page:
  flags      (docs/flags.md) every flag of ``experiments.mnist``: the
             TrainConfig fields' flags (``experiments/config_flags.py``:
             help, default, range or choices), then the entrypoint's own;
  optimizer  (docs/optimizers.md) rules, default step sizes and
             hyperparameters and the differences of each form, from
             ``optimizers.OPTIMIZERS``;
so the docs cannot drift from the code (tests/test_scripts.py checks it).
The docs folder is found beside this package, whatever the working directory.
"""

import os
import sys

from absl import flags

from data import files
from experiments import cli
from experiments import config_flags
from experiments import mnist
from experiments import process_flags
from experiments import training_command
from models import optimizers

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")

flags.DEFINE_string("docs", DOCS, "The folder of the Markdown pages holding the tables.")
flags.DEFINE_boolean("check", False, "Only check that the tables are current.")
FLAGS = flags.FLAGS


def _markers(name: str) -> tuple[str, str]:
  return files.generated_section(f"{name} table", "scripts.doc_tables")


def _defaults(spec: optimizers.Form) -> str:
  values = [f"α = {spec.default_learning_rate:g}"]
  values += [f"{optimizers.SYMBOLS[k]} = {v:g}" for k, v in spec.hyperparameters.items()]
  return ", ".join(values)


def optimizer_table() -> list[str]:
  lines = ["| name | textbook form (`--optimizer_form=textbook`) | its defaults "
           "| Optax form (`--optimizer_form=optax`, default) | its defaults | difference |",
           "|---|---|---|---|---|---|"]
  for name, spec in optimizers.OPTIMIZERS.items():
    cells = [f"`{name}`", spec.textbook.rule, _defaults(spec.textbook), spec.optax.rule,
             _defaults(spec.optax), spec.difference]
    lines.append("| " + " | ".join(cells) + " |")
  return lines


def _default(flag) -> str:
  if flag.default is None:
    return "see meaning"
  if isinstance(flag.default, bool):
    return "on" if flag.default else "off"
  if isinstance(flag.default, list):
    return f"`{','.join(flag.default)}`"
  return f"`{flag.default}`"


def flag_table() -> list[str]:
  """One row per flag of experiments.mnist, in the order its modules define them."""
  lines = ["| flag | default | meaning |", "|---|---|---|"]
  seen = set()
  for module in (config_flags, process_flags, cli, training_command, mnist):
    for flag in FLAGS.get_key_flags_for_module(module.__name__):
      if flag.name in seen or flag.name.startswith(("help", "?")):
        continue
      seen.add(flag.name)
      meaning = " ".join(flag.help.split()).replace("|", "\\|")
      lines.append(f"| `--{flag.name}` | {_default(flag)} | {meaning} |")
  return lines


# Each table: the page it sits in, the function that renders its rows.
TABLES = {"flags": ("flags.md", flag_table), "optimizer": ("optimizers.md", optimizer_table)}


def replace_tables(page: str, text: str) -> str:
  """``text`` of docs/``page`` with each of its tables, between their markers, rendered anew."""
  for name, (table_page, rows) in TABLES.items():
    if table_page == page:
      text = files.replace_section(text, _markers(name), "\n".join(rows()))
  return text


def _update(path: str) -> str:
  """Checks or rewrites the tables of the page at ``path``; what it did, in words."""
  with open(path, encoding="utf-8") as f:
    text = f.read()
  try:
    updated = replace_tables(os.path.basename(path), text)
  except ValueError as e:
    sys.exit(f"error: {path}: {e}")
  if FLAGS.check:
    if updated != text:
      sys.exit(f"error: the tables in {path} are out of date; run python -m scripts.doc_tables")
    return "tables are current"
  if updated == text:
    return "tables already current"
  files.write_text(path, updated)
  return "tables rewritten"


def main(argv):
  del argv
  for page in sorted({page for page, _ in TABLES.values()}):
    path = os.path.join(FLAGS.docs, page)
    print(f"{path}: {_update(path)}")


if __name__ == "__main__":
  cli.run(main)
