"""PNG figures of sweep results, drawn with matplotlib's non-interactive Agg backend."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position


def _save(fig, path: str) -> None:
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def loss_curves(rows: list[dict], best_by_optimizer: dict[str, float], path: str) -> None:
  """Train and validation loss per epoch, mean over seeds, for each optimizer at its best α."""
  fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
  for optimizer, learning_rate in best_by_optimizer.items():
    runs = [r for r in rows if r["optimizer"] == optimizer
            and r["learning_rate"] == learning_rate and not r["diverged"]]
    if not runs:
      continue
    epochs = [h["epoch"] for h in runs[0]["history"]]
    for ax, split in zip(axes, ("train", "validation")):
      curve = np.mean([[h[f"{split}_loss"] for h in r["history"]] for r in runs], axis=0)
      ax.plot(epochs, curve, marker="o", label=f"{optimizer} (α = {learning_rate:g})")
  for ax, split in zip(axes, ("train", "validation")):
    ax.set(title=f"{split} loss (mean over seeds)", xlabel="epoch", yscale="log")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
  axes[0].set_ylabel("softmax cross-entropy")
  axes[1].legend(fontsize=8)
  _save(fig, path)


def accuracy_vs_learning_rate(table: list[dict], path: str) -> None:
  """Validation accuracy (mean ± std over seeds) against α, one line per optimizer.

  Where other hyperparameters were swept too, each α shows its best setting.
  """
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for optimizer in dict.fromkeys(r["optimizer"] for r in table):
    best = {}
    for r in table:
      if r["optimizer"] == optimizer and r["validation_accuracy_mean"] is not None:
        lr = r["learning_rate"]
        if lr not in best or r["validation_accuracy_mean"] > best[lr][1]:
          best[lr] = (lr, r["validation_accuracy_mean"], r["validation_accuracy_std"])
    points = sorted(best.values())
    if points:
      lr, mean, std = (np.array(v) for v in zip(*points))
      ax.errorbar(lr, 100 * mean, yerr=100 * std, marker="o", capsize=3, label=optimizer)
  ax.set(xscale="log", xlabel="peak learning rate α", ylabel="validation accuracy (%)",
         title="accuracy vs learning rate (diverged runs left out)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  _save(fig, path)
