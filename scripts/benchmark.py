r"""Training throughput of the real training path, as a fraction of this device's matmul peak.

    python -m scripts.benchmark --models=mlp,cnn_small,cnn,rnn,lstm,gru --archive_dir=../shared/data
    python -m scripts.benchmark --mode=sweep --ks=1,4,8,16

--mode=models: for each model, ``loop.fit`` trains exactly what
``python -m experiments.mnist --model=M`` trains (the same TrainConfig from the
same flags: optimizer chain and schedule, batch size, the whole dataset on the
device, the same compiled blocks), for --num_epochs epochs, writing nothing;
the figures are its own: steady-state images/s (compilation excluded),
compile seconds, and the achieved FLOP/s (XLA's count of one train step's
FLOPs x steps / time) as a fraction of the fp32 matmul peak measured in this
same process. --synthetic_data times random uint8 images of MNIST's shape
instead of the dataset (a step's speed does not depend on pixel values).

--compare=torch also trains PyTorch twins of the same models (scripts/torch_reference.py)
with the same optimizer, α, schedule, batch size and number of updates on the
same images, eager and with torch.compile, in this same process, and prints
the ratios (JAX / PyTorch): the only figures that compare across machines.

--mode=sweep: K models trained together in one vmapped program against
the same K trained one after another (the plain single-model program), for
K in --ks and four models (softmax regression 784-10, the MLPs 784-64-10 and
784-512-512-10, an LSTM of 128 units reading rows), on one epoch's blocks.
Prints a Markdown table and writes --output (JSON).
"""

import dataclasses
import functools
import math
import statistics
import time

import jax
import jax.extend.core as jax_core
import jax.numpy as jnp
import numpy as np
from absl import flags
from absl import logging

from data import errors
from data import files
from experiments import cli
from experiments import config_flags
from experiments.training.loop import batches as batches_lib
from experiments.training.loop import dataset
from experiments.training.loop import loop
from experiments.training.loop import programs as programs_lib
from experiments.training.loop import run as run_lib
from experiments.training.loop import state as state_lib
from experiments.training.outputs import output_hooks
from experiments.training.settings import config as config_lib
from models import networks
from scripts import torch_reference

flags.DEFINE_enum("mode", "models", ["models", "sweep"],
                  "models: each model's images/s; sweep: K vmapped models vs K sequential.")
flags.DEFINE_list("models", ["mlp", "cnn_small", "cnn", "rnn", "lstm", "gru"],
                  "Models to time (mode=models).")
flags.DEFINE_list("ks", ["1", "4", "8", "16"], "Numbers of models K (mode=sweep).")
flags.DEFINE_enum("compare", "", ["", "torch"],
                  "torch: also time PyTorch eager and torch.compile on the same training.")
flags.DEFINE_boolean("synthetic_data", False,
                     "Random uint8 images of MNIST's shape instead of the dataset.")
flags.DEFINE_integer("repeats", 5, "Timed repetitions of the matmul and of each sweep program.")
flags.DEFINE_integer("matmul_size", 2048, "Side of the square matrices timing the matmul peak.")
flags.DEFINE_string("output", "benchmark.json", "Where to write the JSON results.")
flags.DEFINE_string("page", None, "Also write the table into this Markdown page "
                    "(docs/benchmark.md), between its generated-section markers: the one "
                    "place figures live.")
flags.adopt_module_key_flags(config_flags)
FLAGS = flags.FLAGS
FLAGS.set_default("num_epochs", 2)  # the first epoch's timing is as steady as the later ones'
FLAGS.set_default("progress", False)


def _median_seconds(fn, repeats: int) -> float:
  jax.block_until_ready(fn())  # warm-up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def matmul_peak_flops(size: int, repeats: int) -> float:
  """fp32 FLOP/s of a (size x size) @ (size x size) product chained 10 times in one program."""
  a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32) / size**0.5

  @jax.jit
  def chain(x):
    return jax.lax.fori_loop(0, 10, lambda _, y: y @ a, x)

  seconds = _median_seconds(lambda: chain(a), repeats)
  return 10 * 2 * size**3 / seconds


def synthetic_data(num_train: int = 60_000, num_test: int = 10_000) -> dataset.HostData:
  """Random uint8 images and labels with MNIST's shapes (for timing only)."""
  rng = np.random.default_rng(0)
  images = lambda n: rng.integers(0, 256, (n, 28, 28, 1), np.uint8)  # noqa: E731
  labels = lambda n: rng.integers(0, 10, n).astype(np.int32)  # noqa: E731
  return dataset.HostData(images(num_train), labels(num_train), images(num_test),
                             labels(num_test), tuple(str(d) for d in range(10)))


def _matmul_flops(jaxpr, repeat_loops: bool, scale: int = 1) -> int:
  """2 x multiply-adds of the jaxpr's matmuls and convolutions, each ``lax.scan`` body
  counted once per step when ``repeat_loops``, else once."""
  total = 0
  for eqn in jaxpr.eqns:
    name, out = eqn.primitive.name, eqn.outvars[0].aval.shape if eqn.outvars else ()
    if name == "dot_general":
      (contracting, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      total += scale * 2 * math.prod(out) * math.prod(lhs[d] for d in contracting)
    elif name == "conv_general_dilated":
      kernel, spec = eqn.invars[1].aval.shape, eqn.params["dimension_numbers"].rhs_spec
      total += scale * 2 * math.prod(out) * math.prod(kernel[d] for d in spec[1:])
    inner = scale * (eqn.params["length"] if name == "scan" and repeat_loops else 1)
    for value in eqn.params.values():
      for sub in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(sub, (jax_core.ClosedJaxpr, jax_core.Jaxpr)):
          total += _matmul_flops(getattr(sub, "jaxpr", sub), repeat_loops, inner)
  return total


def step_flops(run: run_lib.Run) -> float:
  """XLA's FLOP count of one train step of the run's first member, loops included.

  XLA's cost analysis counts a loop's body once; the recurrent models' time
  loop (and full-batch descent's chunks) repeat it, so the matmul FLOPs of the
  other iterations, counted from the step's jaxpr, are added.
  """
  state = state_lib.member_state(run, run.config)
  shape = (run.plan.batch_size, *run.input_shape)
  args = (state, jax.ShapeDtypeStruct(shape, jnp.float32),
          jax.ShapeDtypeStruct(shape[:1], jnp.int32))
  train_step = functools.partial(run.objective.train_step, chunk_size=None)
  analysis = jax.jit(train_step).lower(*args).compile().cost_analysis()
  analysis = analysis[0] if isinstance(analysis, list) else analysis
  jaxpr = jax.make_jaxpr(train_step)(*args).jaxpr
  return float(analysis["flops"]) + (_matmul_flops(jaxpr, True) - _matmul_flops(jaxpr, False))


def benchmark_model(config: config_lib.TrainConfig, data: dataset.HostData,
                    compare: str) -> dict:
  """Trains ``config`` as experiments.mnist does (nothing written); its own timings.

  With ``compare="torch"``, the PyTorch twin trains on the same training split
  for the same updates, eager and compiled.
  """
  run = run_lib.make_run([config], data.input_shape, len(data.class_names), data.num_examples)
  result = loop.fit(run, data, hooks=output_hooks.standard(run, None))
  timing = result.timing
  images_per_second = timing["train_images_per_second"]
  flops = step_flops(run) / run.plan.batch_size * images_per_second
  row = {"model": config.model, "optimizer": config.optimizer, "schedule": config.schedule,
         "batch_size": run.plan.batch_size, "images_per_second": images_per_second,
         "gflops_per_second": flops / 1e9, "compile_seconds": timing["compile_seconds"],
         "epochs": config.num_epochs}
  if compare == "torch":
    train, _, _, _ = batches_lib.member_split(run.config, data, run.objective.pixel_scaling)
    for mode, compiled in (("torch_eager", False), ("torch_compile", True)):
      torch_row = torch_reference.train(config.model, run.config, data.train_images[train],
                                        data.train_labels[train], run.plan.updates_per_epoch,
                                        compiled)
      row[f"{mode}_images_per_second"] = torch_row["images_per_second"]
      row[f"{mode}_first_step_seconds"] = torch_row["first_step_seconds"]
      if config.model == "vae":  # the same training, judged the same way
        row[f"{mode}_test_neg_elbo"] = torch_reference.test_neg_elbo(torch_row["model"],
                                                                     data.test_images)
  if config.model == "vae":
    row["test_neg_elbo"] = result.test_metrics[0]["loss"]
  return row


SWEEP_SIZES = {"softmax 784-10": ("mlp", ()), "mlp 784-64-10": ("mlp", (64,)),
               "mlp 784-512-512-10": ("mlp", (512, 512)), "lstm 128, rows": ("lstm", (128,))}


def benchmark_sweep(base: config_lib.TrainConfig, model: str, hidden: tuple[int, ...],
                    ks: list[int],
                    data: dataset.HostData, repeats: int) -> list[dict]:
  """Aggregate images/s of K vmapped members vs K sequential runs of one, per K (one epoch)."""
  inputs = dataset.to_device(data)

  def program(k):
    members = [dataclasses.replace(base, model=model, hidden_sizes=hidden, seed=s,
                                   data_seed=0).resolve() for s in range(k)]
    run = run_lib.make_run(members, data.input_shape, 10, data.num_examples)
    pipeline = programs_lib.Pipeline(run, data, inputs=inputs)
    compiled = programs_lib.Program(pipeline)
    batches = pipeline.layout.batches(batches_lib.epoch_batches(run, pipeline.host_splits, 1))
    held = [pipeline.initial_state()]  # the program donates the state it is given

    def epoch():
      held[0], counts = compiled.train_block(held[0], batches)
      return counts

    return epoch, run.plan.updates_per_epoch * run.plan.batch_size * k

  one, one_images = program(1)
  single = _median_seconds(one, repeats)
  rows = []
  for k in ks:
    together, images = program(k)
    seconds = _median_seconds(together, repeats)
    rows.append({"hidden_sizes": list(hidden), "k": k,
                 "vmapped_images_per_second": images / seconds,
                 "sequential_images_per_second": one_images / single,
                 "speedup": (images / seconds) / (one_images / single)})
    logging.info("hidden %s, K = %d: vmapped %.0f vs sequential %.0f images/s (%.2fx)",
                 hidden or "none", k, rows[-1]["vmapped_images_per_second"],
                 rows[-1]["sequential_images_per_second"], rows[-1]["speedup"])
  return rows


def sweep_table(rows: list[dict]) -> list[str]:
  lines = ["| model | K | vmapped images/s | sequential images/s | vmapped / sequential |",
           "|---|---:|---:|---:|---:|"]
  lines += [f"| {r['model']} | {r['k']} | {r['vmapped_images_per_second']:.0f} | "
            f"{r['sequential_images_per_second']:.0f} | {r['speedup']:.2f}x |" for r in rows]
  return lines


def models_table(rows: list[dict], compare: bool) -> list[str]:
  lines = ["| model | optimizer | images/s | GFLOP/s | % of peak | compile s |"
           + (" PyTorch eager | JAX / eager | torch.compile | JAX / compiled |" if compare else ""),
           "|---|---|---:|---:|---:|---:|" + ("---:|---:|---:|---:|" if compare else "")]
  for r in rows:
    line = (f"| {r['model']} | {r['optimizer']} | {r['images_per_second']:.0f} | "
            f"{r['gflops_per_second']:.1f} | {100 * r['fraction_of_matmul_peak']:.0f}% | "
            f"{r['compile_seconds']:.2f} |")
    if compare:
      eager, compiled = r["torch_eager_images_per_second"], r["torch_compile_images_per_second"]
      line += (f" {eager:.0f} | {r['images_per_second'] / eager:.2f}x | {compiled:.0f} | "
               f"{r['images_per_second'] / compiled:.2f}x |")
    lines.append(line)
  return lines


def _write_page(path: str, section: str, lines: list[str]) -> None:
  """Replaces the page's generated ``section`` with ``lines`` (the figures' one place)."""
  with open(path, encoding="utf-8") as f:
    text = f.read()
  try:
    text = files.replace_section(text, files.generated_section(section, "scripts.benchmark"),
                                 "\n".join(lines))
  except ValueError as e:
    raise errors.UserError(f"{path}: {e}") from None
  files.write_text(path, text)
  print(f"{path}: {section} rewritten")


def main(argv):
  del argv
  base = config_flags.config_from_flags(plots=False)
  errors.check_integer("repeats", FLAGS.repeats, 1, 1000)
  errors.check_integer("matmul_size", FLAGS.matmul_size, 1, 16384)
  try:
    ks = [int(k) for k in FLAGS.ks]
  except ValueError:
    raise errors.UserError(f"--ks must be integers, got {','.join(FLAGS.ks)}") from None
  for k in ks:
    errors.check_integer("ks", k, 1, 1024)
  for name in FLAGS.models:
    networks.MODELS.get(name)
  cli.enable_compilation_cache(FLAGS.compilation_cache_dir)
  data = synthetic_data() if FLAGS.synthetic_data else dataset.load(base)
  device = jax.devices()[0]
  where = (f"{device.device_kind} ({jax.device_count()} device(s)), jax {jax.__version__}, data: "
           f"{'synthetic' if FLAGS.synthetic_data else base.dataset}")
  if FLAGS.mode == "sweep":
    rows = [{"model": label, **r} for label, (model, hidden) in SWEEP_SIZES.items()
            for r in benchmark_sweep(base, model, hidden, ks, data, FLAGS.repeats)]
    table = sweep_table(rows)
    section, output = "benchmark sweep table", {"results": rows}
    where += ", one epoch per program"
  else:
    peak = matmul_peak_flops(FLAGS.matmul_size, FLAGS.repeats)
    rows = []
    for name in FLAGS.models:
      row = benchmark_model(dataclasses.replace(base, model=name).resolve(), data, FLAGS.compare)
      row["fraction_of_matmul_peak"] = row["gflops_per_second"] * 1e9 / peak
      rows.append(row)
    where += (f", fp32 matmul peak {peak / 1e9:.1f} GFLOP/s measured in the same run, "
              f"{base.num_epochs} epoch(s)")
    table = models_table(rows, bool(FLAGS.compare))
    section = "benchmark table"
    output = {"matmul_peak_gflops_per_second": peak / 1e9, "results": rows}
  lines = [f"Measured on {where}:", "", *table]
  print("\n" + "\n".join(lines))
  files.write_json(FLAGS.output, {"device": device.device_kind, "jax_version": jax.__version__,
                                  **output})
  print(f"\nwritten to {FLAGS.output}")
  if FLAGS.page:
    _write_page(FLAGS.page, section, lines)


if __name__ == "__main__":
  cli.run(main)
