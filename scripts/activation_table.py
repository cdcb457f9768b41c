r"""Renders the activation table as a figure: name, formula, plot of f and f'.

    python -m scripts.activation_table --output=activation_table.png

One row per function of models/activations.py: its name and formula with its
hand-written derivative, and f (solid) and f' (dashed) on [-4, 4]. Also
writes the largest |f' - jax.grad(f)| per function beside the PNG as JSON.
"""

import os

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app  # pylint: disable=wrong-import-position
from absl import flags  # pylint: disable=wrong-import-position

from data import files  # pylint: disable=wrong-import-position
from models import activations  # pylint: disable=wrong-import-position

flags.DEFINE_string("output", "activation_table.png", "Where to write the PNG.")
FLAGS = flags.FLAGS


def render(path: str) -> dict:
  """Draws the table to ``path``; returns {name: max |f' - jax.grad f|} on the plotted grid."""
  names = [n for n in activations.ACTIVATIONS if n != "swish"]  # swish is silu
  x = jnp.linspace(-4.0, 4.0, 801)
  fig, axes = plt.subplots(len(names), 2, figsize=(11, 1.6 * len(names)),
                           gridspec_kw={"width_ratios": [2.2, 1]})
  errors = {}
  for row, name in zip(axes, names):
    act = activations.ACTIVATIONS.get(name)
    text, plot = row
    text.axis("off")
    text.text(0.0, 0.72, name, fontsize=13, weight="bold", transform=text.transAxes)
    text.text(0.0, 0.40, f"f(x) = {act.formula}", fontsize=10, transform=text.transAxes)
    text.text(0.0, 0.08, f"f'(x) = {act.derivative_formula}", fontsize=10, transform=text.transAxes)
    plot.plot(x, act.fn(x), label="f")
    plot.plot(x, act.derivative(x), "--", label="f'")
    plot.axhline(0, color="gray", lw=0.5)
    plot.axvline(0, color="gray", lw=0.5)
    plot.set_xlim(-4, 4)
    away_from_zero = jnp.abs(x) > 1e-3
    grad = jax.vmap(jax.grad(act.fn))(x)
    errors[name] = float(jnp.max(jnp.where(away_from_zero, jnp.abs(grad - act.derivative(x)), 0.0)))
  axes[0][1].legend(loc="upper left", fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
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
  app.run(main)
