r"""Backpropagation through time by hand on a two-unit Elman network, one number at a time.

    python -m experiments.bptt_example
    python -m experiments.bptt_example --on=every --d=0.2,-0.4,0.5 --activation=sigmoid

The network (models/bptt.py) reads a three-step sequence of one input each
with two hidden units and one output:

    a_t = W x_t + U h_{t-1} + b,   h_t = f(a_t),   y_t = V h_t + c,   h_0 = 0

with the squared loss L = ½ (y_T - d_T)² on the last step (--on=last) or
summed over every step (--on=every). Prints every a_t, h_t, y_t, the output
errors ε_t, the deltas δ_t = (Uᵀ δ_{t+1} + Vᵀ ε_t) ⊙ f'(a_t) from t = 3 down
to 1, each step's term of every gradient and their sums, then checks them
against ``jax.grad`` of the loss (float64) and exits 1 if they differ by
more than 1e-12. Runs in ~2 s on a laptop CPU.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from data.errors import UserError
from experiments import cli
from models import activations
from models import bptt

flags.DEFINE_list("x", ["1.0", "-0.5", "0.25"], "The sequence x_1, x_2, x_3 (one input per step).")
flags.DEFINE_list("d", ["0.5"], "The target d_3 (--on=last), or d_1, d_2, d_3 (--on=every).")
flags.DEFINE_enum("on", "last", bptt.ON, "The loss on the last step or summed over every step.")
flags.DEFINE_list("W", ["0.5", "-0.3"], "W: the input weight of hidden units 1, 2.")
flags.DEFINE_list("U", ["0.4", "-0.2", "0.3", "0.6"], "U, row by row: U_11, U_12, U_21, U_22.")
flags.DEFINE_list("b", ["0.1", "-0.1"], "b: the hidden units' biases.")
flags.DEFINE_list("V", ["0.7", "-0.5"], "V: the output's weights from hidden units 1, 2.")
flags.DEFINE_float("c", 0.05, "c: the output's bias.")
flags.DEFINE_enum("activation", "tanh", [n for n in activations.ACTIVATIONS
                                         if not activations.ACTIVATIONS.get(n).params],
                  "The hidden activation f (any of the table's without parameters).")
FLAGS = flags.FLAGS


def _numbers(name: str, values, count: int) -> np.ndarray:
  try:
    numbers = np.array([float(v) for v in values], np.float64)
  except ValueError as e:
    raise UserError(f"--{name} must be numbers, got {','.join(values)}") from e
  if numbers.size != count or not np.all(np.isfinite(numbers)):
    raise UserError(f"--{name} needs {count} finite number{'s' if count > 1 else ''}, got "
                    f"{','.join(values)}")
  return numbers


def _row(label: str, values) -> str:
  return f"  {label:<34}" + "  ".join(f"{float(v) + 0.0:+.6f}" for v in np.ravel(values))


def explain(params: bptt.Params, xs, targets, on: str, activation: str) -> bptt.Params:
  """Prints the forward pass, the deltas and the gradient terms; returns the gradients."""
  values = bptt.forward(params, xs, activation)
  errors = bptt.output_errors(values.y, targets, "squared", on)
  deltas = bptt.deltas(params, values, errors, activation)
  grads = bptt.gradients(params, xs, targets, "squared", on, activation)
  steps = xs.shape[0]
  h_before = np.concatenate([np.zeros((1, 1, 2)), np.asarray(values.h[:-1])])

  print(f"Forward  (a_t = W x_t + U h_(t-1) + b, h_t = {activation}(a_t), y_t = V h_t + c)")
  for t in range(steps):
    print(f" t = {t + 1}, x_t = {float(xs[t, 0, 0]):+.6f}")
    print(_row("a_t (units 1, 2)", values.a[t]))
    print(_row("h_t", values.h[t]))
    print(_row("y_t", values.y[t]))
  print(_row(f"L = ½ Σ (y_t - d_t)² ({on} step)", bptt.loss(params, xs, targets, "squared", on,
                                                              activation)))
  print("Backward  (ε_t = ∂L/∂y_t; δ_t = (Uᵀ δ_(t+1) + Vᵀ ε_t) ⊙ f'(a_t), δ_4 = 0)")
  for t in reversed(range(steps)):
    print(f" t = {t + 1}")
    print(_row("ε_t = y_t - d_t (0: no loss at t)", errors[t]))
    print(_row("Uᵀ δ_(t+1)", deltas[t + 1] @ params.U if t + 1 < steps else np.zeros(2)))
    print(_row("f'(a_t)", activations.ACTIVATIONS.get(activation).derivative(values.a[t])))
    print(_row("δ_t", deltas[t]))
  print("Gradients: each step's term, then the sum over t")
  terms = {
      "∂L/∂W = Σ δ_t x_t": lambda t: deltas[t, 0] * xs[t, 0, 0],
      "∂L/∂U = Σ δ_t h_(t-1)ᵀ (rows)": lambda t: np.outer(deltas[t, 0], h_before[t, 0]),
      "∂L/∂b = Σ δ_t": lambda t: deltas[t, 0],
      "∂L/∂V = Σ ε_t h_tᵀ": lambda t: errors[t, 0, 0] * values.h[t, 0],
      "∂L/∂c = Σ ε_t": lambda t: errors[t, 0],
  }
  for (label, term), total in zip(terms.items(), grads):
    print(f" {label}")
    for t in range(steps):
      print(_row(f"t = {t + 1}", term(t)))
    print(_row("sum", total))
  return grads


def main(argv):
  del argv
  with jax.enable_x64(True):
    xs = jnp.asarray(_numbers("x", FLAGS.x, 3).reshape(3, 1, 1))
    last = FLAGS.on == "last"
    d = _numbers("d", FLAGS.d, 1 if last else 3)
    targets = jnp.asarray((np.concatenate([np.zeros(2), d]) if last else d).reshape(3, 1, 1))
    params = bptt.Params(
        W=jnp.asarray(_numbers("W", FLAGS.W, 2).reshape(2, 1)),
        U=jnp.asarray(_numbers("U", FLAGS.U, 4).reshape(2, 2)),
        b=jnp.asarray(_numbers("b", FLAGS.b, 2)), V=jnp.asarray(_numbers("V", FLAGS.V, 2)
                                                                .reshape(1, 2)),
        c=jnp.asarray(_numbers("c", [FLAGS.c], 1)))
    print(f"Elman network 1-2-1, {FLAGS.activation} units, x = {np.ravel(xs).tolist()}, "
          f"targets {d.tolist()} ({FLAGS.on} step{'' if last else 's'})\n")
    grads = explain(params, xs, targets, FLAGS.on, FLAGS.activation)
    autodiff = jax.grad(bptt.loss)(params, xs, targets, "squared", FLAGS.on, FLAGS.activation)
    worst = max(float(jnp.max(jnp.abs(g - a))) for g, a in zip(grads, autodiff))
  print(f"\nCheck: max |hand - jax.grad| = {worst:.2e} (float64)")
  if worst > 1e-12:
    print("error: the hand-computed gradients differ from jax.grad", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  cli.run(main)
