"""Tic-tac-toe and connect four as pure functions: two-player games of k in a row.

A board of ``rows`` × ``cols`` cells, s = row · cols + col (row 0 at the top),
holds +1 for the first player's stones, −1 for the second's, 0 where empty.
Players alternate; a move puts the mover's stone in an empty cell
(tic-tac-toe: the action is the cell, 0-8 row by row) or, with gravity, in the
lowest empty cell of a column (connect four: the action is the column, 0-6).
The mover wins with k of its stones in a row, column or diagonal; a full board
without a line is a draw. The rules of PettingZoo's tictactoe_v3 and
connect_four_v3: the winner's move pays +1 to the mover, every other move 0,
and an illegal move ends the game with −1 to the mover (their
TerminateIllegalWrapper).

As an environment, ``reset(key) -> (state, observation)`` and
``step(state, action, key) -> (state, observation, reward, terminated,
truncated)`` with the reward to the player who moved; the observation is
PettingZoo's, two planes (rows, cols, 2): the mover's stones, then the
opponent's. ``legal(game, state)`` is the action mask, and
``canonical(state)`` the board from the mover's side (+1 the mover's stones),
which is what a search or a value table reads.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Game(NamedTuple):
  name: str
  rows: int
  cols: int
  k: int
  gravity: bool  # a move names a column and falls to its lowest empty cell

  @property
  def num_cells(self) -> int:
    return self.rows * self.cols

  @property
  def num_actions(self) -> int:
    return self.cols if self.gravity else self.num_cells


TICTACTOE = Game("tictactoe", 3, 3, 3, gravity=False)
CONNECT_FOUR = Game("connect_four", 6, 7, 4, gravity=True)
GAMES = {game.name: game for game in (TICTACTOE, CONNECT_FOUR)}


class State(NamedTuple):
  board: jax.Array  # int8 (rows · cols,): +1 the first player's stones, −1 the second's
  player: jax.Array  # int32: 0 when the first player moves, 1 the second
  terminated: jax.Array  # bool
  winner: jax.Array  # int32: +1 the first player won, −1 the second, 0 a draw or not over


@functools.cache
def lines(game: Game) -> np.ndarray:
  """(L, k) cell indices of every k in a row: rows, columns and both diagonals."""
  found = []
  for r in range(game.rows):
    for c in range(game.cols):
      for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        cells = [(r + i * dr, c + i * dc) for i in range(game.k)]
        if all(0 <= y < game.rows and 0 <= x < game.cols for y, x in cells):
          found.append([y * game.cols + x for y, x in cells])
  return np.array(found, np.int32)


def sign(player) -> jax.Array:
  """+1 for the first player, −1 for the second."""
  return 1 - 2 * jnp.asarray(player, jnp.int32)


def canonical(state: State) -> jax.Array:
  """The board from the mover's side: +1 its stones, −1 the opponent's (int8)."""
  return state.board * sign(state.player).astype(jnp.int8)


def observation(game: Game, state: State) -> jax.Array:
  """(rows, cols, 2) float32: the mover's stones, then the opponent's (PettingZoo's planes)."""
  board = canonical(state).reshape(game.rows, game.cols)
  return jnp.stack([board == 1, board == -1], axis=-1).astype(jnp.float32)


def initial(game: Game) -> State:
  return State(jnp.zeros(game.num_cells, jnp.int8), jnp.int32(0), jnp.bool_(False),
               jnp.int32(0))


def reset(game: Game, key=None) -> tuple[State, jax.Array]:
  """The empty board, the first player to move (the game has no randomness)."""
  del key
  state = initial(game)
  return state, observation(game, state)


def legal(game: Game, state: State) -> jax.Array:
  """(num_actions,) bool: the empty cells, or the columns whose top cell is empty."""
  empty = state.board == 0
  if game.gravity:
    empty = empty[:game.cols]
  return empty & ~state.terminated


def cell(game: Game, board, action) -> jax.Array:
  """The cell a move fills: the action itself, or the lowest empty cell of its column."""
  if not game.gravity:
    return action
  column = board.reshape(game.rows, game.cols)[:, action]
  lowest = game.rows - 1 - jnp.argmax(column[::-1] == 0)
  return lowest * game.cols + action


def play(game: Game, state: State, action) -> tuple[State, jax.Array]:
  """(next state, reward to the mover) of a move; a finished game stays as it is."""
  is_legal = legal(game, state)[action]
  stone = sign(state.player).astype(jnp.int8)
  board = state.board.at[cell(game, state.board, action)].set(
      jnp.where(is_legal, stone, state.board[cell(game, state.board, action)]))
  won = is_legal & jnp.any(jnp.all(board[lines(game)] == stone, axis=1))
  full = jnp.all(board != 0)
  illegal = ~is_legal & ~state.terminated
  reward = jnp.where(won, 1.0, jnp.where(illegal, -1.0, 0.0)).astype(jnp.float32)
  winner = jnp.where(won, sign(state.player), jnp.where(illegal, -sign(state.player), 0))
  over = won | full | illegal
  moved = State(board, jnp.where(over, state.player, 1 - state.player), over,
                winner.astype(jnp.int32))
  return jax.tree.map(lambda old, new: jnp.where(state.terminated, old, new), state,
                      moved), jnp.where(state.terminated, 0.0, reward)


def step(game: Game, state: State, action, key=None):
  """(state, observation, reward to the mover, terminated, truncated): the environment's step.

  The observation is the next mover's; at the end it stays the last mover's.
  """
  del key
  state, reward = play(game, state, action)
  return state, observation(game, state), reward, state.terminated, jnp.bool_(False)


def render(game: Game, state: State) -> str:
  """The board as text: X the first player, O the second, · empty."""
  board = np.asarray(state.board).reshape(game.rows, game.cols)
  return "\n".join(" ".join("X" if v == 1 else "O" if v == -1 else "·" for v in row)
                   for row in board)


def random_action(game: Game, state: State, key) -> jax.Array:
  """A legal action drawn uniformly."""
  return jax.random.categorical(key, jnp.where(legal(game, state), 0.0, -jnp.inf))
