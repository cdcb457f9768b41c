r"""A grid search over optimizers x learning rates x hyperparameters x seeds.

    python -m scripts.sweep --dataset=mnist --model=mlp \
        --optimizers=sgd,momentum,adagrad,adadelta,rmsprop,adam \
        --learning_rate_multipliers=0.3,1,3 --seeds=0,1,2 --archive_dir=../shared/data

Configurations sharing an optimizer train together, vmapped in one compiled
program or one after another, whichever a timed calibration finds faster
(--strategy=auto; the log says which). The configuration with the best mean
validation accuracy over seeds is selected, and its test accuracy reported.
Writes to --workdir: sweep.json (every run with its per-epoch history, the
aggregated table, the selection), sweep.csv (one row per run),
loss_curves.png and accuracy_vs_learning_rate.png, and prints the table.
"""

import csv
import dataclasses
import io
import os

from absl import flags
from absl import logging

from experiments import cli
from experiments import config as config_lib
from experiments import plots
from experiments import sweep
from experiments import train_flags
from experiments import workdir as workdir_lib
from models import optimizers

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/perceptrax/sweep", "Output directory.")
flags.DEFINE_list("optimizers", list(optimizers.OPTIMIZERS), "Optimizers to compare.")
flags.DEFINE_list("learning_rates", [], "Peak learning rates α, the same for every optimizer.")
flags.DEFINE_list("learning_rate_multipliers", ["0.3", "1", "3"],
                  "Used when --learning_rates is empty: each optimizer's default α times these.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (initialization, dropout, own shuffling).")
for _name in sweep.GRID_HYPERPARAMETERS:
  flags.DEFINE_list(f"{_name}s", [], f"Values of {_name} to sweep, for the optimizers taking it.")
flags.DEFINE_integer("data_seed", 0, "Seeds the validation split and the shared batch order.")
flags.DEFINE_boolean("shared_batches", True,
                     "All models see the same batches (else each shuffles with its own seed).")
flags.DEFINE_enum("strategy", "auto", sweep.STRATEGIES,
                  "vmapped, sequential, or auto: time both per optimizer and use the faster.")
flags.DEFINE_integer("models_per_program", 0, "At most this many models per compiled program "
                     "(0: all of an optimizer's).")
flags.DEFINE_boolean("plots", True, "Write the PNG figures.")


def _numbers(name: str, values: list[str], kind=float) -> list:
  try:
    return [kind(v) for v in values]
  except ValueError as e:
    raise config_lib.ConfigError(f"--{name} must be numbers, got {','.join(values)}") from e


def _csv(rows: list[dict]) -> str:
  columns = list(dict.fromkeys(k for row in rows for k in row if k != "history"))
  out = io.StringIO()
  writer = csv.DictWriter(out, columns)
  writer.writeheader()
  writer.writerows({k: v for k, v in row.items() if k != "history"} for row in rows)
  return out.getvalue()


def main(argv):
  if len(argv) > 1:
    raise config_lib.ConfigError(f"unexpected arguments: {' '.join(argv[1:])}")
  base = train_flags.train_config(seed=FLAGS.data_seed)
  grids = {name: _numbers(f"{name}s", getattr(FLAGS, f"{name}s"))
           for name in sweep.GRID_HYPERPARAMETERS if getattr(FLAGS, f"{name}s")}
  groups = sweep.make_groups(
      base, FLAGS.optimizers, _numbers("learning_rates", FLAGS.learning_rates),
      _numbers("learning_rate_multipliers", FLAGS.learning_rate_multipliers),
      _numbers("seeds", FLAGS.seeds, int), grids,
  )
  logging.info("sweep: %s", ", ".join(f"{g.optimizer} x {len(g.members)}" for g in groups))
  cli.enable_compilation_cache(FLAGS.compilation_cache_dir)
  rows = sweep.run_sweep(base, groups, FLAGS.strategy, FLAGS.shared_batches,
                         FLAGS.models_per_program)
  table = sweep.aggregate(rows)
  best = sweep.select(table)
  best_by_optimizer = {
      g.optimizer: sweep.select([r for r in table if r["optimizer"] == g.optimizer])
      for g in groups if any(not r["diverged"] for r in table if r["optimizer"] == g.optimizer)
  }
  os.makedirs(FLAGS.workdir, exist_ok=True)
  path = lambda name: os.path.join(FLAGS.workdir, name)  # pylint: disable=unnecessary-lambda-assignment
  workdir_lib.write_json(path("sweep.json"), {
      "config": dataclasses.asdict(base), "runs": rows, "table": table, "selected": best,
  })
  workdir_lib.write_text(path("sweep.csv"), _csv(rows))
  if FLAGS.plots:
    plots.loss_curves(rows, {k: v["learning_rate"] for k, v in best_by_optimizer.items()},
                      path("loss_curves.png"))
    plots.accuracy_vs_learning_rate(table, path("accuracy_vs_learning_rate.png"))
  print(sweep.markdown_table(table, best))
  chosen = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                     for k, v in sweep.configuration(best))
  print(f"\nselected on validation: {chosen}: validation accuracy "
        f"{100 * best['validation_accuracy_mean']:.2f}%, test accuracy "
        f"{100 * best['test_accuracy_mean']:.2f} ± {100 * best['test_accuracy_std']:.2f}% "
        f"(mean ± std over {len(best['seeds'])} seeds)")
  logging.info("results in %s", FLAGS.workdir)


if __name__ == "__main__":
  cli.run(main)
