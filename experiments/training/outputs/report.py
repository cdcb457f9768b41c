"""The end-of-run report of a classifier: its per-class test metrics as a table, its figures."""

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from data import datasets
from models import networks
from models import recurrent
from models import saliency

FIGURES = ("training_curves", "confusion_matrix", "weight_histograms", "first_layer",
           "saliency", "misclassified")
# A recurrent model's first layer reads a row, not an image: its figure is the gradient
# reaching each hidden state instead.
RECURRENT_FIGURES = tuple("hidden_state_gradients" if f == "first_layer" else f for f in FIGURES)


def per_class_table(result: dict) -> str:
  """The per-class metrics of ``test_metrics`` as an aligned text table with a macro row."""
  width = max(len("macro"), *(len(row["class"]) for row in result["per_class"]))
  lines = [f"{'class':<{width}}  precision  recall      f1  support"]
  for row in result["per_class"]:
    lines.append(f"{row['class']:<{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  "
                 f"{row['f1']:6.4f}  {row['support']:7d}")
  total = sum(row["support"] for row in result["per_class"])
  lines.append(f"{'macro':<{width}}  {result['macro_precision']:9.4f}  "
               f"{result['macro_recall']:6.4f}  {result['macro_f1']:6.4f}  {total:7d}")
  return "\n".join(lines)


def write_figures(workdir: str, history: list[dict], variables: dict, model: nn.Module,
                  test_images: np.ndarray, test_labels: np.ndarray, logits: np.ndarray,
                  pixel_scaling: tuple[float, float], class_names, result: dict,
                  num_saliency: int = 8, num_misclassified: int = 32) -> list[str]:
  """Writes the FIGURES (RECURRENT_FIGURES) of one model as PNG files into ``workdir``;
  returns their paths.

  ``test_images`` are uint8, ``logits`` the model's on them; ``pixel_scaling``
  is the (mean, std) the model was trained with.
  """
  from experiments.training.outputs import plots  # imported here: matplotlib

  is_recurrent = isinstance(model, recurrent.Recurrent)
  names = RECURRENT_FIGURES if is_recurrent else FIGURES
  paths = {name: os.path.join(workdir, f"{name}.png") for name in names}
  apply_fn = model.apply
  images = datasets.to_model_input(test_images, *pixel_scaling)
  predictions = np.argmax(logits, -1)
  probabilities = np.asarray(jax.nn.softmax(logits, -1)).max(-1)
  params = jax.tree.map(np.asarray, variables["params"])

  plots.training_curves(history, paths["training_curves"])
  plots.confusion_matrix(np.asarray(result["confusion_matrix"]), class_names,
                         paths["confusion_matrix"])
  plots.weight_histograms(params, paths["weight_histograms"])
  if is_recurrent:
    plots.hidden_state_gradients(hidden_state_gradient_curves(
        model, variables, jnp.asarray(images[:128]), jnp.asarray(test_labels[:128])),
                                 paths["hidden_state_gradients"])
  else:
    first = params["Conv_0" if "Conv_0" in params else "Dense_0"]["kernel"]
    plots.first_layer(first, test_images.shape[1:], paths["first_layer"])

  shown = images[:num_saliency]
  maps = saliency.saliency_maps(apply_fn, variables, jnp.asarray(shown),
                                jnp.asarray(predictions[:num_saliency]))
  plots.saliency(shown, np.asarray(maps), test_labels[:num_saliency],
                 predictions[:num_saliency], class_names, paths["saliency"])

  wrong = np.flatnonzero(predictions != test_labels)[:num_misclassified]
  plots.misclassified(images[wrong], test_labels[wrong], predictions[wrong],
                      probabilities[wrong], class_names, paths["misclassified"])
  return list(paths.values())


def hidden_state_gradient_curves(model: recurrent.Recurrent, variables: dict,
                                 images: jax.Array, labels: jax.Array) -> dict[str, np.ndarray]:
  """Mean ‖∂L/∂h_t‖ per step t of the trained ``model`` and, on the same batch, of each
  recurrent cell at initialization with the same layers and sequence."""
  curves = {f"trained {model.make_cell().name}": recurrent.hidden_state_gradients(
      model, variables, images, labels)}
  for name in ("rnn", "lstm", "gru"):
    fresh = networks.create_model(name, model.num_classes, hidden_sizes=model.hidden_sizes,
                                  sequence=model.sequence)
    init = networks.init_variables(fresh, jax.random.key(0), images.shape[1:])
    curves[f"{name} at initialization"] = recurrent.hidden_state_gradients(
        fresh, init, images, labels)
  return {label: np.asarray(values) for label, values in curves.items()}
