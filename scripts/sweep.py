r"""A grid search over any training settings, many models per compiled program.

    python -m scripts.sweep --dataset=mnist --model=mlp \
        --optimizers=sgd,momentum,adagrad,adadelta,rmsprop,adam \
        --learning_rate_multipliers=0.3,1,3 --seeds=0,1,2 --archive_dir=../shared/data
    python -m scripts.sweep --model=mlp --optimizers=adam --l2s=0,1e-5,1e-4,1e-3 --seeds=0,1
    python -m scripts.sweep --model=mlp --hidden_sizes_grid="64;256;512,512" --folds=5
    python -m scripts.sweep --model=lstm --hidden_sizes_grid="64;128" --optimizers=adam,rmsprop

Every flag of experiments.mnist sets the value shared by all models; a grid
flag (plural) sweeps that setting instead. Settings that shape the compiled
program (--models, --hidden_sizes_grid, --activations, --batch_norms,
--bidirectionals, --sequences, --optimizers) make groups trained one after another; within a group the
models differ in α, hyperparameters, penalties, dropout, seed and fold, and
train vmapped in one program or one after another, whichever a timed
calibration finds faster (--strategy=auto). With --folds=k every
configuration is cross-validated over k folds. The configuration with the
best mean validation accuracy is selected and its test accuracy reported.
Writes to --workdir: sweep.json (every model with its history, the
aggregated table, the selection), sweep.csv, loss_curves.png,
validation_accuracy.png (and cross_validation.png with folds), and the runs'
checkpoints: rerunning the same command resumes a killed sweep.
"""

import os

from absl import flags
from absl import logging

from data import files
from experiments import cli
from experiments import config_flags
from experiments import process_flags
from experiments.training import sweep
from experiments.training.loop import record as record_lib
from experiments.training.outputs import report
from experiments.training.outputs import tables
from experiments.training.processes import distributed
from experiments.training.settings import config as config_lib
from experiments.training.settings import grid as grid_lib

flags.DEFINE_string("workdir", "/tmp/perceptrax/sweep", "Output directory.")
flags.DEFINE_enum("strategy", "auto", sweep.STRATEGIES,
                  "vmapped, sequential, or auto: time both per group and use the faster.")
flags.DEFINE_integer("models_per_program", 0, "At most this many models per compiled program "
                     "(0: a whole group).")
config_flags.define_grid_flags()
flags.adopt_module_key_flags(config_flags)
flags.adopt_module_key_flags(process_flags)
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS


def main(argv):
  del argv
  base = config_flags.config_from_flags()
  process_flags.join_processes()
  grid = config_flags.grid_from_flags()
  cli.enable_compilation_cache(FLAGS.compilation_cache_dir)
  results = sweep.run_sweep(base, grid, FLAGS.workdir, FLAGS.strategy, FLAGS.models_per_program)
  if not distributed.is_leader():  # process 0 writes the tables and figures
    return
  columns = grid_lib.swept(grid, base.folds)
  rows = tables.result_rows(results, columns)
  shown = tables.table_columns(columns)
  table = tables.aggregate(rows, shown)
  best = tables.select(table)
  path = lambda name: os.path.join(FLAGS.workdir, name)  # noqa: E731
  files.write_json(path("sweep.json"), {
      "config": config_lib.to_json(base), "grid": grid_lib.to_json(grid),
      "swept": columns, "runs": rows, "table": table, "selected": best,
  })
  files.write_text(path("sweep.csv"), tables.to_csv(rows))
  chosen = [r for r in rows if r["configuration"] == best["configuration"]]
  figures = []
  if base.plots:
    from experiments.training.outputs import plots
    from experiments.training.outputs import sweep_plots
    sweep_plots.loss_curves(rows, table, shown, path("loss_curves.png"))
    figures.append("loss_curves.png")
    if tables.has_accuracy(table):
      sweep_plots.validation_accuracy(table, shown, path("validation_accuracy.png"))
      figures.append("validation_accuracy.png")
    if base.folds:
      records = [record_lib.MemberRecord(r["history"], r["epoch"]) for r in chosen]
      second = next(k.split("_", 1)[1] for k in chosen[0]["history"][0]
                    if k.startswith("validation_") and k != "validation_loss")
      plots.cross_validation(records, ("loss", second), path("cross_validation.png"))
      figures.append("cross_validation.png")
  print(tables.markdown_table(table, best, shown))
  if base.folds:
    print(f"\nfolds of the selected configuration ({best['configuration']}):")
    print(tables.folds_table(chosen))
  if chosen[0]["test_metrics"] and "per_class" in chosen[0]["test_metrics"]:
    logging.info("test metrics of the selected configuration's first model:\n%s",
                 report.per_class_table(chosen[0]["test_metrics"]))
  spread = f" (mean ± std over {best['models']} models)" if best["models"] > 1 else ""
  print(f"\nselected on validation: {best['configuration']}: {tables.summary(best)}{spread}")
  logging.info("%s", cli.written(FLAGS.workdir, figures, ("sweep.json", "sweep.csv")))


if __name__ == "__main__":
  cli.run(main)
