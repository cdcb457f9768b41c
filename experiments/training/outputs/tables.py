"""Tables of results: a sweep's, aggregated per configuration and selected on validation; folds.

A configuration is a point of the grid: the values of every swept setting
but the seed and the fold. Its metrics are the mean and standard deviation
over its models (seeds x folds); with folds, the validation mean is the
cross-validated estimate. A configuration with a diverged model has no
means and is never selected. The selection uses validation accuracy only; the
test accuracy of the selected configuration is reported, never chosen on.
"""

import csv
import io

import numpy as np

from data.errors import UserError
from experiments.training.settings import grid as grid_lib
from models import optimizers

METRICS = [f"{s}_{m}" for s in ("train", "validation", "test") for m in ("loss", "accuracy")]
REPEATS = ("seed", "fold")  # what varies within a configuration


def result_rows(results, columns: list[str]) -> list[dict]:
  """One row per model from ``sweep.run_sweep``'s results: its settings, kept metrics, history."""
  rows = []
  for config, record, test_metrics, strategy, run_directory, member in results:
    kept = record.kept_row or {}
    rows.append({
        **{c: getattr(config, c) for c in grid_lib.SETTINGS if hasattr(config, c)},
        "optimizer_form": config.optimizer_form, "fold": config.fold,
        "configuration": grid_lib.label(config, [c for c in columns if c not in REPEATS]),
        "strategy": strategy, "run": run_directory, "member": member,
        **{m: kept.get(m) for m in METRICS},
        "epoch": record.best_epoch, "epochs_trained": len(record.history),
        "stopped_early": record.stopped_early, "diverged": record.diverged is not None,
        "diverged_at": record.diverged, "test_metrics": test_metrics,
        "history": record.history,
    })
  return rows


def table_columns(columns: list[str]) -> list[str]:
  """The settings that identify a configuration in tables (α beside a swept optimizer)."""
  names = [c for c in columns if c not in REPEATS]
  if "optimizer" in names and "learning_rate" not in names:
    names.insert(names.index("optimizer") + 1, "learning_rate")
  return names or ["optimizer", "learning_rate"]


def aggregate(rows: list[dict], columns: list[str]) -> list[dict]:
  """One row per configuration: mean and std over its models of the kept models' metrics."""
  by_config = {}
  for row in rows:
    by_config.setdefault(tuple(hashable(row[c]) for c in columns), []).append(row)
  table = []
  for members in by_config.values():
    out = {c: members[0][c] for c in columns}
    out["configuration"] = members[0]["configuration"]
    out["models"] = len(members)
    out["seeds"] = sorted({m["seed"] for m in members})
    out["diverged"] = any(m["diverged"] for m in members)
    out.update(mean_std(members, METRICS))
    table.append(out)
  return table


def mean_std(rows: list[dict], keys) -> dict:
  """{key}_mean and {key}_std (population: divided by n) of each key over ``rows``.

  None for a key when a row diverged or lacks it: a diverged model has no
  metrics to average, and leaving it out would flatter its configuration.
  """
  ok = not any(r["diverged"] for r in rows)
  out = {}
  for key in keys:
    values = [r.get(key) for r in rows]
    good = ok and all(v is not None for v in values)
    out[f"{key}_mean"] = float(np.mean(values)) if good else None
    out[f"{key}_std"] = float(np.std(values)) if good else None
  return out


def hashable(value):
  return tuple(value) if isinstance(value, list) else value


def has_accuracy(table: list[dict]) -> bool:
  """Whether the models are classifiers (their objective reports an accuracy)."""
  return any(row.get("validation_accuracy_mean") is not None
             or row.get("test_accuracy_mean") is not None for row in table)


def select(table: list[dict]) -> dict:
  """The configuration with the highest mean validation accuracy (ties: lower loss); for an
  objective without accuracy (an autoencoder's), the lowest mean validation loss."""
  candidates = [row for row in table if not row["diverged"]]
  if not candidates:
    raise UserError("every configuration diverged; lower the learning rates")
  if has_accuracy(candidates):
    return max(candidates, key=lambda r: (r["validation_accuracy_mean"],
                                          -r["validation_loss_mean"]))
  return min(candidates, key=lambda r: r["validation_loss_mean"])


def summary(best: dict) -> str:
  """The selected configuration's validation and test figures, in one phrase."""
  if has_accuracy([best]):
    return (f"validation accuracy {percent(best, 'validation_accuracy')}%, test accuracy "
            f"{percent(best, 'test_accuracy')}%")
  return (f"validation loss {mean_std_text(best, 'validation_loss')}, test loss "
          f"{mean_std_text(best, 'test_loss')}")


def mean_std_text(row: dict, key: str, scale: float = 1.0, digits: int = 4) -> str:
  """The mean ± std of ``key`` times ``scale``; a configuration of one model has no spread."""
  if row[f"{key}_mean"] is None:
    return "diverged"
  if row["models"] == 1:
    return f"{scale * row[f'{key}_mean']:.{digits}f}"
  return f"{scale * row[f'{key}_mean']:.{digits}f} ± {scale * row[f'{key}_std']:.{digits}f}"


def cell(column: str, value) -> str:
  if value is None:
    return ""
  if column == "hidden_sizes":
    return "-".join(map(str, value)) or "none"
  return f"{value:g}" if isinstance(value, float) else str(value)


def header(column: str) -> str:
  return {"learning_rate": "α", **optimizers.SYMBOLS}.get(column, column)


def percent(row: dict, key: str) -> str:
  """The mean ± std in percent, two decimals."""
  return mean_std_text(row, key, scale=100, digits=2)


def markdown_table(table: list[dict], best: dict, columns: list[str]) -> str:
  """The aggregated table as Markdown; the selected configuration is marked with *."""
  accuracy = has_accuracy(table)
  titles = [*map(header, columns), "models",
            *(["val acc %", "val loss", "test acc %"] if accuracy else ["val loss", "test loss"]),
            "train loss"]
  lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
  for row in table:
    cells = [cell(c, row[c]) for c in columns]
    cells[0] += " *" if row is best else ""
    loss = row["validation_loss_mean"]
    train = row["train_loss_mean"]
    cells += [str(row["models"]),
              *([percent(row, "validation_accuracy"),
                 "diverged" if loss is None else f"{loss:.4f}", percent(row, "test_accuracy")]
                if accuracy else [mean_std_text(row, "validation_loss"),
                                  mean_std_text(row, "test_loss")]),
              "diverged" if train is None else f"{train:.4f}"]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def folds_table(rows: list[dict]) -> str:
  """The models of one configuration, fold by fold (and seed by seed), with mean ± std.

  ``rows`` need seed, fold, epoch, diverged, diverged_at and the kept model's
  metrics; the std is the population std (divided by the number of models).
  """
  keys = [("train_loss", "train loss", 1, 4), ("validation_loss", "val loss", 1, 4)]
  if any(r.get("validation_accuracy") is not None for r in rows):
    keys += [("validation_accuracy", "val acc %", 100, 2), ("test_accuracy", "test acc %", 100, 2)]
  else:
    keys.append(("test_loss", "test loss", 1, 4))
  lines = ["| seed | fold | epoch | " + " | ".join(k[1] for k in keys) + " |",
           "|---|---|---|" + "---|" * len(keys)]
  for r in rows:
    if r["diverged"]:
      lines.append(f"| {r['seed']} | {r['fold']} | diverged at {r['diverged_at']} |"
                   + " |" * len(keys))
      continue
    lines.append(f"| {r['seed']} | {r['fold']} | {r['epoch']} | " + " | ".join(
        f"{scale * r[key]:.{digits}f}" for key, _, scale, digits in keys) + " |")
  stats = mean_std(rows, [k[0] for k in keys])
  if stats["validation_loss_mean"] is not None:
    lines.append("| mean ± std | | | " + " | ".join(
        f"{scale * stats[f'{key}_mean']:.{digits}f} ± {scale * stats[f'{key}_std']:.{digits}f}"
        for key, _, scale, digits in keys) + " |")
  return "\n".join(lines)


def to_csv(rows: list[dict]) -> str:
  """One CSV line per model: its settings and kept metrics (no history, no per-class report)."""
  skip = ("history", "test_metrics")
  columns = list(dict.fromkeys(k for row in rows for k in row if k not in skip))
  out = io.StringIO()
  writer = csv.DictWriter(out, columns)
  writer.writeheader()
  for row in rows:
    writer.writerow({k: cell(k, v) if k == "hidden_sizes" else v
                     for k, v in row.items() if k not in skip})
  return out.getvalue()
