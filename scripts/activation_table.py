r"""Renders the activation table as a figure: name, formula, plot of f and f'.

    python -m scripts.activation_table --output=activation_table.png

Every function of models/activations.py (both of the course's tables), two per
row: its name and formula with its hand-written derivative, and f (solid) and
f' (dashed) on [-4, 4], with the default parameters. Also
writes the largest |f' - jax.grad(f)| per function beside the PNG as JSON.
"""

import os

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from absl import flags

from data import files
from experiments import cli
from models import activations

flags.DEFINE_string("output", "activation_table.png", "Where to write the PNG.")
FLAGS = flags.FLAGS


def render(path: str) -> dict:
  """Draws the table to ``path``; returns {name: max |f' - jax.grad f|} on the plotted grid.

  Two functions per row; each with its default parameters. The error leaves
  out points within 1e-3 of a kink, where f' follows the left-piece convention.
  """
  names = [n for n in activations.ACTIVATIONS if n != "swish"]  # swish is silu
  x = jnp.linspace(-4.0, 4.0, 801)
  rows = (len(names) + 1) // 2
  fig, axes = plt.subplots(rows, 4, figsize=(20, 1.6 * rows),
                           gridspec_kw={"width_ratios": [2.2, 1, 2.2, 1]})
  for ax in axes.flat:
    ax.axis("off")
  errors = {}
  for i, name in enumerate(names):
    act = activations.ACTIVATIONS.get(name).bind()
    text, plot = axes[i // 2][2 * (i % 2)], axes[i // 2][2 * (i % 2) + 1]
    plot.axis("on")
    text.text(0.0, 0.72, name, fontsize=13, weight="bold", transform=text.transAxes)
    text.text(0.0, 0.40, f"f(x) = {act.formula}", fontsize=10, transform=text.transAxes)
    text.text(0.0, 0.08, f"f'(x) = {act.derivative_formula}", fontsize=10, transform=text.transAxes)
    plot.plot(x, act.fn(x), label="f")
    plot.plot(x, act.derivative(x), "--", label="f'")
    plot.axhline(0, color="gray", lw=0.5)
    plot.axvline(0, color="gray", lw=0.5)
    plot.set_xlim(-4, 4)
    away = jnp.all(jnp.stack([jnp.abs(x - k) > 1e-3 for k in (*act.kinks(), jnp.inf)]), axis=0)
    grad = jax.vmap(jax.grad(act.fn))(x)
    errors[name] = float(jnp.max(jnp.where(away, jnp.abs(grad - act.derivative(x)), 0.0)))
  axes[0][1].legend(loc="upper left", fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)
  return errors


def main(argv):
  del argv
  errors = render(FLAGS.output)
  files.write_json(os.path.splitext(FLAGS.output)[0] + ".json", {
      "max_abs_derivative_error_vs_autodiff": errors})
  for name, err in errors.items():
    print(f"{name:12s} max |f' - jax.grad f| = {err:.1e}")
  print(f"written to {FLAGS.output}")


if __name__ == "__main__":
  cli.run(main)
