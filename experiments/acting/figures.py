"""The agents' figures: the lake's greedy policy and success, DQN's returns, the matches of tree search."""

import os

import numpy as np

from experiments.training.outputs import plots
from models.rl import frozen_lake

ARROWS = ("←", "↓", "→", "↑")


def policy(lake: frozen_lake.Lake, panels: list[tuple[str, np.ndarray]], path: str) -> str:
  """Each panel's max_a Q(s, a) as shades and argmax_a as arrows; holes and the goal marked."""
  import matplotlib.pyplot as plt
  nrow, ncol = len(lake.rows), len(lake.rows[0])
  fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
  for ax, (title, q) in zip(axes[0], panels):
    q = np.asarray(q)
    ax.imshow(q.max(axis=1).reshape(nrow, ncol), cmap="Blues", vmin=0, vmax=max(q.max(), 1e-9))
    for s in range(lake.num_states):
      r, c = divmod(s, ncol)
      letter = lake.letter(s)
      text = letter if letter in "HG" else ARROWS[int(np.argmax(q[s]))]
      ax.text(c, r, text, ha="center", va="center", fontsize=14 if nrow <= 4 else 10,
              color="crimson" if letter == "H" else "black")
    ax.set(title=title, xticks=[], yticks=[])
  plots.save(fig, path)
  return os.path.basename(path)


def success_over_episodes(successes: list[np.ndarray], optimum: float, path: str,
                          window: int = 500) -> str:
  """The success rate of the last ``window`` episodes while learning, the seeds' mean and
  range, against the optimal policy's."""
  import matplotlib.pyplot as plt
  length = min(len(s) for s in successes)
  if length < window:
    window = max(1, length)
  kernel = np.ones(window) / window
  curves = np.stack([np.convolve(s[:length].astype(float), kernel, mode="valid")
                     for s in successes])
  episodes = np.arange(window, length + 1)
  fig, ax = plt.subplots(figsize=(7, 4))
  ax.fill_between(episodes, curves.min(0), curves.max(0), alpha=0.25, label="seeds' range")
  ax.plot(episodes, curves.mean(0), label=f"mean of {len(successes)} seeds")
  ax.axhline(optimum, color="black", linestyle="--", label=f"optimal policy ({optimum:.3f})")
  ax.set(xlabel="episode", ylabel=f"success, last {window} episodes",
         title="Q-learning while it explores (ε-greedy)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  plots.save(fig, path)
  return os.path.basename(path)


def returns_over_steps(returns: np.ndarray, path: str, bins: int = 100) -> str:
  """Each finished episode's return against the step it ended at, averaged in ``bins`` spans
  of steps per seed; the seeds' mean and range. ``returns``: (seeds, steps), NaN where no
  episode ended."""
  import matplotlib.pyplot as plt
  seeds, steps = returns.shape
  edges = np.linspace(0, steps, bins + 1).astype(int)
  binned = np.full((seeds, bins), np.nan)
  for i in range(seeds):
    for b in range(bins):
      chunk = returns[i, edges[b]:edges[b + 1]]
      if np.any(~np.isnan(chunk)):
        binned[i, b] = np.nanmean(chunk)
  middle = (edges[:-1] + edges[1:]) / 2
  fig, ax = plt.subplots(figsize=(7, 4))
  ax.fill_between(middle, np.nanmin(binned, 0), np.nanmax(binned, 0), alpha=0.25,
                  label="seeds' range")
  ax.plot(middle, np.nanmean(binned, 0), label=f"mean of {seeds} seeds")
  ax.set(xlabel="environment step", ylabel="episode return", title="DQN on CartPole-v1")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  plots.save(fig, path)
  return os.path.basename(path)


def match_outcomes(outcomes: dict, path: str) -> str:
  """Wins, draws and losses of the searching player, per opponent and side, as stacked bars.

  ``outcomes[opponent][side]`` = {"wins": n, "draws": n, "losses": n}."""
  import matplotlib.pyplot as plt
  labels = [f"against {opponent}\nsearching {side}" for opponent, sides in outcomes.items()
            for side in sides]
  counts = [sides[side] for sides in outcomes.values() for side in sides]
  fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(labels), 4))
  bottom = np.zeros(len(labels))
  for kind, color in (("wins", "tab:green"), ("draws", "tab:gray"), ("losses", "tab:red")):
    heights = np.array([c[kind] for c in counts])
    ax.bar(labels, heights, bottom=bottom, color=color, label=kind)
    for x, (h, b) in enumerate(zip(heights, bottom)):
      if h:
        ax.text(x, b + h / 2, str(h), ha="center", va="center", color="white", fontsize=9)
    bottom += heights
  ax.set(ylabel="games", title="Monte Carlo tree search against each opponent")
  ax.legend(fontsize=8, loc="lower right")
  plots.save(fig, path)
  return os.path.basename(path)


def root_visits(rows: int, cols: int, visits: np.ndarray, title: str, path: str) -> str:
  """The search's visits to each first move from the empty board, on the board: cells
  (tic-tac-toe) or columns (connect four, drawn over the column's cells)."""
  import matplotlib.pyplot as plt
  visits = np.asarray(visits, float)
  grid = visits.reshape(rows, cols) if visits.size == rows * cols else np.tile(visits, (rows, 1))
  fig, ax = plt.subplots(figsize=(0.7 * cols + 1.5, 0.7 * rows + 1))
  ax.imshow(grid, cmap="Greens", vmin=0)
  for (r, c), v in np.ndenumerate(grid):
    if visits.size == rows * cols or r == 0:
      ax.text(c, r, f"{v / visits.sum():.0%}", ha="center", va="center", fontsize=9)
  ax.set(title=title, xticks=[], yticks=[])
  plots.save(fig, path)
  return os.path.basename(path)
