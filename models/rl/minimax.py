"""The perfect player of a small game, by minimax over every position.

Negamax, from the mover's side: a position's value is
    v(s) = max over legal a of  r(s, a)            if a wins or fills the board,
                                −v(s')             otherwise (s' from the opponent's side),
+1 a win, 0 a draw, −1 a loss with best play on both sides. The table holds v
and the set of optimal moves of every position reachable from the empty
board, indexed by the canonical board read as a base-3 number (cell i holding
0 empty, 1 the mover's stone, 2 the opponent's, weighted 3^i); tic-tac-toe
has 3^9 = 19 683 indices and 4 520 reachable positions before the end. The
perfect player draws uniformly among the optimal moves, so a match against it
visits every line of best play.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from models.rl import in_a_row


class Solution(NamedTuple):
  value: np.ndarray  # (3^cells,) int8: v(s) for the mover; 0 where unreachable
  optimal: np.ndarray  # (3^cells, actions) bool: the moves that keep v(s)
  reachable: np.ndarray  # (3^cells,) bool: positions before the end, reachable from the start


def index(board) -> jax.Array:
  """The canonical board as a base-3 number: Σ_i d_i 3^i, d = 0 empty, 1 mover, 2 opponent."""
  board = jnp.asarray(board, jnp.int32)
  digits = jnp.where(board == -1, 2, board)
  return jnp.sum(digits * 3 ** jnp.arange(board.shape[-1], dtype=jnp.int32), axis=-1)


@functools.cache
def solve(game: in_a_row.Game) -> Solution:
  """Every reachable position's value and optimal moves (gravity-free games of ≤ 12 cells)."""
  if game.gravity or game.num_cells > 12:
    raise ValueError(f"{game.name} is too large to solve by enumeration")
  size = 3 ** game.num_cells
  value = np.zeros(size, np.int8)
  optimal = np.zeros((size, game.num_actions), bool)
  reachable = np.zeros(size, bool)
  lines = in_a_row.lines(game)
  powers = 3 ** np.arange(game.num_cells)

  def negamax(board: tuple) -> int:
    i = int(np.dot(np.where(np.array(board) == -1, 2, board), powers))
    if reachable[i]:
      return int(value[i])
    scores = np.full(game.num_actions, -2)
    for a in range(game.num_cells):
      if board[a] == 0:
        after = np.array(board)
        after[a] = 1
        if np.any(np.all(after[lines] == 1, axis=1)):
          scores[a] = 1
        elif np.all(after != 0):
          scores[a] = 0
        else:
          scores[a] = -negamax(tuple(-after))
    value[i], optimal[i], reachable[i] = scores.max(), scores == scores.max(), True
    return int(scores.max())

  negamax((0,) * game.num_cells)
  return Solution(value, optimal, reachable)


def perfect_player(game: in_a_row.Game):
  """policy(state, key) -> action: uniform among the optimal moves of the solved table."""
  optimal = jnp.asarray(solve(game).optimal)

  def policy(state: in_a_row.State, key) -> jax.Array:
    best = optimal[index(in_a_row.canonical(state))]
    return jax.random.categorical(key, jnp.where(best, 0.0, -jnp.inf))

  return policy
