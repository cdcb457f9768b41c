r"""A maintenance tool: rewrites the README's generated tables from the code.

    python -m scripts.readme_tables            # rewrite the tables in README.md
    python -m scripts.readme_tables --check    # exit 1 if README.md is out of date

Each table sits between two HTML comments in the README:
  flags      every flag of ``experiments.mnist``: the TrainConfig fields' flags
             (``experiments/config_flags.py``: help, default, range or
             choices), then the entrypoint's own;
  optimizer  rules, default step sizes and hyperparameters and the
             differences of each form, from ``optimizers.OPTIMIZERS``;
so the README cannot drift from the code (tests/test_scripts.py checks it).
The README is found beside this package, whatever the working directory.
"""

import os
import sys

from absl import flags

from data import files
from experiments import cli
from experiments import mnist
from models import optimizers

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")

flags.DEFINE_string("readme", README, "The Markdown file holding the tables.")
flags.DEFINE_boolean("check", False, "Only check that the tables are current.")
FLAGS = flags.FLAGS


def _markers(name: str) -> tuple[str, str]:
  return files.generated_section(f"{name} table", "scripts.readme_tables")


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
  for module in (mnist.config_flags, mnist.process_flags, mnist.cli, mnist):
    for flag in FLAGS.get_key_flags_for_module(module.__name__):
      if flag.name in seen or flag.name.startswith(("help", "?")):
        continue
      seen.add(flag.name)
      meaning = " ".join(flag.help.split()).replace("|", "\\|")
      lines.append(f"| `--{flag.name}` | {_default(flag)} | {meaning} |")
  return lines


TABLES = {"flags": flag_table, "optimizer": optimizer_table}


def render(name: str) -> str:
  """Table ``name`` as Markdown, between its markers."""
  begin, end = _markers(name)
  return "\n".join([begin, *TABLES[name](), end])


def replace_tables(text: str) -> str:
  """``text`` with each table, between its markers, rendered anew."""
  for name in TABLES:
    text = files.replace_section(text, _markers(name), "\n".join(TABLES[name]()))
  return text


def main(argv):
  del argv
  with open(FLAGS.readme, encoding="utf-8") as f:
    text = f.read()
  try:
    updated = replace_tables(text)
  except ValueError as e:
    sys.exit(f"error: {e}")
  if FLAGS.check:
    if updated != text:
      sys.exit(f"error: the tables in {FLAGS.readme} are out of date; "
               "run python -m scripts.readme_tables")
    print(f"{FLAGS.readme}: tables are current")
  elif updated != text:
    files.write_text(FLAGS.readme, updated)
    print(f"{FLAGS.readme}: tables rewritten")
  else:
    print(f"{FLAGS.readme}: tables already current")


if __name__ == "__main__":
  cli.run(main)
