r"""Backpropagation by hand on a 2-2-1 sigmoid network, one number at a time.

    python -m experiments.backprop_example
    python -m experiments.backprop_example --c=2 --w1=0.1,-0.1,0.3,0.5,-0.2,0.4 --w2=0.2,0.6,-0.3

The observation is x = [2, -1] with target d = 1. Prints every weighted sum,
output, delta, gradient and updated weight of the first iteration, then
repeats the update until no weight changes by more than --tolerance and shows
the output approaching the target. The script checks its hand-computed
gradients against ``jax.grad`` of the cost and exits 1 if they differ.
Runs in ~2 s on a laptop CPU.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from data import errors
from data.errors import UserError
from experiments import cli
from models import backprop
from models import classic

flags.DEFINE_list("x", ["2", "-1"], "The observation x_1(0), x_2(0).")
flags.DEFINE_float("d", 1.0, "The target output d_1.")
flags.DEFINE_list("w1", ["0.1", "-0.1", "0.3", "0.5", "-0.2", "0.4"],
                  "w_ij(1), row by row: i = 0 (bias), 1, 2; j = 1, 2.")
flags.DEFINE_list("w2", ["0.2", "0.6", "-0.3"], "w_i1(2) for i = 0 (bias), 1, 2.")
flags.DEFINE_float("c", 1.0, "Step size c of the update w <- w - c dE/dw.")
flags.DEFINE_float("tolerance", 1e-4, "Stop when no weight changes by more than this.")
flags.DEFINE_integer("max_iterations", 10000, "Give up after this many updates.")
FLAGS = flags.FLAGS


def _numbers(name: str, values, count: int) -> np.ndarray:
  try:
    numbers = np.array([float(v) for v in values], np.float32)
  except ValueError as e:
    raise UserError(f"--{name} must be numbers, got {','.join(values)}") from e
  if numbers.size != count:
    raise UserError(f"--{name} needs {count} numbers, got {numbers.size}")
  return numbers


def _row(label: str, values) -> str:
  return f"  {label:<32}" + "  ".join(f"{float(v):+.6f}" for v in np.ravel(values))


def explain_iteration(weights, x, d, c):
  """Prints one iteration of the algorithm; returns the hand gradients and the new weights."""
  outputs = backprop.forward(weights, x)
  sums = [classic.with_bias(outputs[k]) @ weights[k] for k in range(len(weights))]
  deltas = backprop.deltas(weights, outputs, d)
  grads = backprop.gradients(weights, x, d)
  updated = backprop.update(weights, x, d, c)

  print("Feed-forward  (s_j(k) = Σ_i w_ij(k) x_i(k-1), x_j(k) = σ(s_j(k)), x_0 = 1)")
  print(_row("x(0)", outputs[0]))
  for k in (1, 2):
    print(_row(f"s(k={k})", sums[k - 1]))
    print(_row(f"x(k={k}) = σ(s)", outputs[k]))
  print(_row("E = ½ (x_1(2) - d)²", backprop.cost(weights, x, d)))
  print("Backward pass")
  print(_row("δ_1(2) = (x - d) x (1 - x)", deltas[1]))
  print(_row("δ_j(1) = x(1-x) w_j1(2) δ_1(2)", deltas[0]))
  print("Gradients dE/dw_ij(k) = δ_j(k) x_i(k-1), rows i = 0, 1, 2")
  for k in (1, 2):
    for i in range(grads[k - 1].shape[0]):
      print(_row(f"k={k}, i={i}", grads[k - 1][i]))
  print(f"Updated weights w <- w - c dE/dw (c = {c})")
  for k in (1, 2):
    for i in range(updated[k - 1].shape[0]):
      print(_row(f"w_i·({k}), i={i}", updated[k - 1][i]))
  return grads, updated


def main(argv):
  del argv
  x = _numbers("x", FLAGS.x, 2).reshape(1, 2)
  d = np.array([[FLAGS.d]], np.float32)
  w1, w2 = _numbers("w1", FLAGS.w1, 6), _numbers("w2", FLAGS.w2, 3)
  errors.check_number("c", FLAGS.c, low=0.0, low_open=True)
  errors.check_number("tolerance", FLAGS.tolerance, low=0.0)
  errors.check_integer("max_iterations", FLAGS.max_iterations, 1, errors.MAX_COUNT)
  weights = [jnp.asarray(w1.reshape(3, 2)), jnp.asarray(w2.reshape(3, 1))]

  print(f"2-2-1 sigmoid network, x = {x.ravel().tolist()}, d = {FLAGS.d}\n")
  grads, _ = explain_iteration(weights, x, d, FLAGS.c)

  autodiff = jax.grad(backprop.cost)(weights, jnp.asarray(x), jnp.asarray(d))
  worst = max(float(jnp.max(jnp.abs(g - a))) for g, a in zip(grads, autodiff))
  print(f"\nCheck: max |hand - jax.grad| = {worst:.2e}")
  if worst > 1e-6:
    print("error: the hand-computed gradients differ from jax.grad", file=sys.stderr)
    sys.exit(1)

  print("\nIterating until no weight changes by more than "
        f"{FLAGS.tolerance} (max {FLAGS.max_iterations} updates):")
  result = backprop.train_batch(
      weights, jnp.asarray(x), jnp.asarray(d), FLAGS.c, FLAGS.tolerance, FLAGS.max_iterations
  )
  # Replay the trajectory to show it; one observation, so batch = sequential.
  step = jax.jit(lambda w: backprop.update(w, x, d, FLAGS.c))
  w, shown = weights, {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, int(result.passes)}
  print(f"  {'iteration':>9}  {'output x_1(2)':>14}  {'E':>10}")
  for t in range(1, int(result.passes) + 1):
    w = step(w)
    if t in shown:
      out = float(backprop.forward(w, x)[-1][0, 0])
      print(f"  {t:>9}  {out:>14.6f}  {float(backprop.cost(w, x, d)):>10.2e}")
  status = "converged" if bool(result.converged) else "stopped at max_iterations"
  print(f"  {status} after {int(result.passes)} updates")


if __name__ == "__main__":
  cli.run(main)
