"""PNG figures of a sweep: loss curves of each group's best configuration, accuracy per setting."""

import numpy as np

from experiments.training.outputs import plots
from experiments.training.outputs import tables
from experiments.training.outputs.plots import matplotlib
from experiments.training.outputs.plots import plt
from experiments.training.settings import config as config_lib
from experiments.training.settings import grid as grid_lib
from experiments.training.settings import settings

NUMERIC = tuple(n for n in settings.names(config_lib.TrainConfig, sweep=settings.MEMBER)
                if n != "seed")


def _group(row: dict, columns: list[str]) -> tuple:
  return tuple(tables.hashable(row[c]) for c in columns if c in grid_lib.GROUP_SETTINGS)


def _mean_curve(members: list[dict], key: str) -> tuple[list[int], list[float]]:
  """Mean of ``key`` over the members' histories at each epoch they all reached."""
  length = min(len(m["history"]) for m in members)
  epochs = [h["epoch"] for h in members[0]["history"][:length]]
  return epochs, list(np.mean([[h[key] for h in m["history"][:length]] for m in members], 0))


def loss_curves(rows: list[dict], table: list[dict], columns: list[str], path: str) -> str:
  """Train and validation loss per epoch (mean over seeds and folds), best configuration per group."""
  fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
  groups = {}
  for row in table:
    groups.setdefault(_group(row, columns), []).append(row)
  last = 1
  for candidates in groups.values():
    good = [r for r in candidates if not r["diverged"]]
    if not good:
      continue
    best = tables.select(good)
    members = [r for r in rows if r["configuration"] == best["configuration"]
               and not r["diverged"]]
    for ax, split in zip(axes, ("train", "validation")):
      epochs, curve = _mean_curve(members, f"{split}_loss")
      ax.plot(epochs, curve, marker="o", label=best["configuration"])
      last = max(last, epochs[-1])
  for ax, split in zip(axes, ("train", "validation")):
    plots.whole_epochs(ax)
    ax.set(title=f"{split} loss (mean over models)", xlabel="epoch", yscale="log",
           xlim=(0.5, last + 0.5))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
  axes[0].set_ylabel("loss")
  axes[1].legend(fontsize=7)
  plots.save(fig, path)
  return path


def validation_accuracy(table: list[dict], columns: list[str], path: str) -> str:
  """Validation accuracy (mean ± std) against each swept numeric setting, one line per group.

  Where other settings were swept too, each value shows its best configuration.
  Without a numeric setting, one bar per configuration.
  """
  numeric = [c for c in columns if c in NUMERIC]
  good = [r for r in table if not r["diverged"]]
  fig, axes = plt.subplots(1, max(1, len(numeric)), figsize=(5.5 * max(1, len(numeric)), 4.5),
                           squeeze=False)
  axes = axes[0]
  if not numeric:
    labels = [r["configuration"] for r in good]
    axes[0].barh(range(len(good)), [100 * r["validation_accuracy_mean"] for r in good],
                 xerr=[100 * r["validation_accuracy_std"] for r in good], capsize=3)
    axes[0].set_yticks(range(len(good)), labels, fontsize=7)
    low = min((100 * r["validation_accuracy_mean"] for r in good), default=0)
    axes[0].set(xlabel="validation accuracy (%)", xlim=(max(0, low - 2), 100))
  for ax, setting in zip(axes, numeric):
    having = [r for r in good if r[setting] is not None]  # e.g. γ: only momentum has one
    for group in dict.fromkeys(_group(r, columns) for r in having):
      best = {}
      for r in having:
        if _group(r, columns) == group:
          x = r[setting]
          if x not in best or r["validation_accuracy_mean"] > best[x][1]:
            best[x] = (x, r["validation_accuracy_mean"], r["validation_accuracy_std"])
      x, mean, std = (np.array(v) for v in zip(*sorted(best.values())))
      name = ", ".join(tables.cell(c, v) for c, v in zip(
          [c for c in columns if c in grid_lib.GROUP_SETTINGS], group)) or "all"
      ax.errorbar(x, 100 * mean, yerr=100 * std, marker="o", capsize=3, label=name)
    positive = all(r[setting] > 0 for r in having)
    ax.set_xscale("log" if positive else "symlog",
                  **({} if positive else {"linthresh": _smallest_positive(having, setting)}))
    ax.set(xlabel=tables.header(setting), ylabel="validation accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.suptitle("validation accuracy (mean ± std over seeds and folds; diverged left out)",
               fontsize=9)
  plots.save(fig, path)
  return path


def _smallest_positive(rows: list[dict], setting: str) -> float:
  return min((r[setting] for r in rows if r[setting] > 0), default=1.0)
