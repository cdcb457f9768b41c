r"""Training throughput of the models, as a fraction of this device's matmul peak.

    python -m scripts.benchmark --models=mlp,cnn_small,cnn --batch_size=128

For each model: compile seconds, seconds from model creation to the first
finished block of steps (init + compile + run), steady-state images/s
(compilation excluded; the median of --repeats timed blocks of --steps scanned
train steps with Adam) and the achieved FLOP/s (XLA's own count of the train
step's FLOPs x steps / time) as a fraction of the fp32 matmul peak measured by
this same run. Inputs are random images of the dataset's shape; the speed of
a train step does not depend on pixel values.

--conv=both also times the CNNs with the convolution gradients JAX's autodiff
emits, to show what models/conv.py's custom VJP buys inside lax.scan.

--mode=sweep times K models trained together (experiments/vmapped.py, one
compiled program) against the same K trained one after another in this
process, for K in --ks and three MLP sizes: softmax regression 784-10,
784-64-10 and 784-512-512-10; it reports aggregate images/s of both and
their ratio. Prints a Markdown table and writes --output (JSON).
"""

import math
import statistics
import time

from absl import flags

from experiments import cli
from experiments import steps
from experiments import vmapped
from experiments import workdir

import jax  # pylint: disable=g-bad-import-order
import jax.numpy as jnp
import optax

from models import networks

flags.DEFINE_enum("mode", "models", ["models", "sweep"],
                  "models: each model's images/s; sweep: K vmapped models vs K sequential.")
flags.DEFINE_list("models", ["mlp", "cnn_small", "cnn"], "Models to time (mode=models).")
flags.DEFINE_list("ks", ["1", "4", "8", "16"], "Numbers of models K (mode=sweep).")
flags.DEFINE_integer("batch_size", 128, "Training batch size.")
flags.DEFINE_integer("steps", 50, "Train steps per timed block (one lax.scan).")
flags.DEFINE_integer("repeats", 5, "Timed blocks per model; the median is reported.")
flags.DEFINE_enum("conv", "custom", ["custom", "autodiff", "both"],
                  "Convolution gradients for the CNNs: models/conv.py's VJP, JAX's, or both.")
flags.DEFINE_integer("matmul_size", 2048, "Side of the square matrices timing the matmul peak.")
flags.DEFINE_string("output", "benchmark.json", "Where to write the JSON results.")
FLAGS = flags.FLAGS

_INPUT_SHAPE = (28, 28, 1)


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


def _step_flops(state, images, labels) -> float:
  analysis = jax.jit(steps.train_step).lower(state, images, labels).compile().cost_analysis()
  analysis = analysis[0] if isinstance(analysis, list) else analysis
  return float(analysis["flops"])


def benchmark_model(name: str, custom_conv_vjp: bool, batch_size: int, num_steps: int,
                    repeats: int) -> dict:
  """Times ``num_steps`` scanned Adam train steps of model ``name``."""
  start = time.perf_counter()
  kwargs = {} if name == "mlp" else {"custom_conv_vjp": custom_conv_vjp}
  model = networks.create_model(name, 10, **kwargs)
  key = jax.random.key(0)
  variables = networks.init_variables(model, key, _INPUT_SHAPE)
  state = steps.create_train_state(model, variables, optax.adam(1e-3), key)
  num_examples = batch_size * num_steps
  images = jax.random.uniform(key, (num_examples, *_INPUT_SHAPE), jnp.float32)
  labels = jax.random.randint(key, (num_examples,), 0, 10)
  batches = jnp.arange(num_examples).reshape(num_steps, batch_size)

  compile_start = time.perf_counter()
  run = jax.jit(steps.train_steps).lower(state, images, labels, batches).compile()
  compile_seconds = time.perf_counter() - compile_start
  jax.block_until_ready(run(state, images, labels, batches))
  first_step_seconds = time.perf_counter() - start

  seconds = _median_seconds(lambda: run(state, images, labels, batches), repeats)
  flops = _step_flops(state, images[:batch_size], labels[:batch_size]) * num_steps
  return {
      "model": name,
      "conv_gradients": "n/a" if name == "mlp" else ("custom_vjp" if custom_conv_vjp else "autodiff"),
      "batch_size": batch_size,
      "images_per_second": num_examples / seconds,
      "gflops_per_second": flops / seconds / 1e9,
      "mflops_per_image": flops / num_examples / 1e6,
      "compile_seconds": compile_seconds,
      "first_step_seconds": first_step_seconds,
  }


SWEEP_SIZES = {"softmax 784-10": (), "mlp 784-64-10": (64,), "mlp 784-512-512-10": (512, 512)}


def benchmark_sweep(hidden_sizes: tuple[int, ...], ks: list[int], batch_size: int,
                    num_steps: int, repeats: int) -> list[dict]:
  """Aggregate images/s of K vmapped models vs K sequential runs of one, per K."""
  model = networks.create_model("mlp", 10, hidden_sizes=hidden_sizes)
  num_examples = batch_size * num_steps
  key = jax.random.key(0)
  images = jax.random.uniform(key, (num_examples, *_INPUT_SHAPE), jnp.float32)
  labels = jax.random.randint(key, (num_examples,), 0, 10)
  batches = jnp.arange(num_examples).reshape(num_steps, batch_size)
  make_tx = vmapped.optimizer_factory("adam", "optax", None, None)

  def program(k):
    members = [vmapped.Member(seed, 1e-3, {"b1": 0.9, "b2": 0.999, "eps": 1e-8})
               for seed in range(k)]
    state = vmapped.init_states(model, _INPUT_SHAPE, members, make_tx)
    run = jax.jit(vmapped.train_steps).lower(state, images, labels, batches).compile()
    return lambda: run(state, images, labels, batches)

  # One model alone: the plain, un-vmapped program a single run uses.
  state = vmapped.init_states(model, _INPUT_SHAPE, [vmapped.Member(0, 1e-3, {})], make_tx)
  state = jax.tree.map(lambda a: a[0], state)
  single = jax.jit(steps.train_steps).lower(state, images, labels, batches).compile()
  one = lambda: single(state, images, labels, batches)  # pylint: disable=unnecessary-lambda-assignment
  # Small models finish a block in milliseconds: time enough blocks for >= 0.2 s.
  calls = max(1, math.ceil(0.2 / _median_seconds(one, repeats)))
  rows = []
  for k in ks:
    run_k = program(k)
    together = _median_seconds(lambda: [run_k() for _ in range(calls)], repeats)  # pylint: disable=cell-var-from-loop
    sequential = _median_seconds(lambda: [one() for _ in range(k * calls)], repeats)  # pylint: disable=cell-var-from-loop
    rows.append({
        "hidden_sizes": list(hidden_sizes), "k": k,
        "vmapped_images_per_second": calls * k * num_examples / together,
        "sequential_images_per_second": calls * k * num_examples / sequential,
        "speedup": sequential / together,
    })
  return rows


def sweep_main():
  ks = [int(k) for k in FLAGS.ks]
  if not ks or min(ks) < 1:
    raise ValueError(f"--ks must be positive integers, got {','.join(FLAGS.ks)}")
  rows = []
  print("| model | K | vmapped images/s | sequential images/s | vmapped / sequential |")
  print("|---|---:|---:|---:|---:|")
  for label, hidden in SWEEP_SIZES.items():
    for r in benchmark_sweep(hidden, ks, FLAGS.batch_size, FLAGS.steps, FLAGS.repeats):
      r["model"] = label
      rows.append(r)
      print(f"| {label} | {r['k']} | {r['vmapped_images_per_second']:.0f} | "
            f"{r['sequential_images_per_second']:.0f} | {r['speedup']:.2f}x |", flush=True)
  workdir.write_json(FLAGS.output, {
      "device": jax.devices()[0].device_kind, "jax_version": jax.__version__,
      "batch_size": FLAGS.batch_size, "steps": FLAGS.steps, "results": rows,
  })
  print(f"\nwritten to {FLAGS.output}")


def main(argv):
  del argv
  if FLAGS.mode == "sweep":
    sweep_main()
    return
  unknown = [m for m in FLAGS.models if m not in networks.MODELS]
  if unknown:
    raise ValueError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(networks.MODELS)}")
  peak = matmul_peak_flops(FLAGS.matmul_size, FLAGS.repeats)
  variants = {"custom": [True], "autodiff": [False], "both": [True, False]}[FLAGS.conv]
  rows = []
  for name in FLAGS.models:
    for custom in variants if name != "mlp" else [True]:
      row = benchmark_model(name, custom, FLAGS.batch_size, FLAGS.steps, FLAGS.repeats)
      row["fraction_of_matmul_peak"] = row["gflops_per_second"] * 1e9 / peak
      rows.append(row)

  device = jax.devices()[0]
  print(f"\ndevice: {device.device_kind} ({jax.device_count()} device(s)), "
        f"fp32 matmul peak {peak / 1e9:.1f} GFLOP/s\n")
  print("| model | conv gradients | images/s | GFLOP/s | % of peak | MFLOP/image | compile s | first step s |")
  print("|---|---|---:|---:|---:|---:|---:|---:|")
  for r in rows:
    print(f"| {r['model']} | {r['conv_gradients']} | {r['images_per_second']:.0f} | "
          f"{r['gflops_per_second']:.1f} | {100 * r['fraction_of_matmul_peak']:.0f}% | "
          f"{r['mflops_per_image']:.1f} | {r['compile_seconds']:.2f} | {r['first_step_seconds']:.2f} |")
  workdir.write_json(FLAGS.output, {
      "device": device.device_kind,
      "jax_version": jax.__version__,
      "matmul_peak_gflops_per_second": peak / 1e9,
      "results": rows,
  })
  print(f"\nwritten to {FLAGS.output}")


if __name__ == "__main__":
  cli.run(main)
