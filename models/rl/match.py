"""Games between two players, many at once: each game is a ``while_loop`` of moves, vmapped.

A player is ``policy(state, key) -> action``. Each turn of the loop is one move
of the first player and one of the second (the second's skipped if the first's
ended the game), so under ``vmap`` every policy runs once per turn, not once
per move of either side. The result of a game is the winner: +1 the first
player, −1 the second, 0 a draw.
"""

import jax
import jax.numpy as jnp

from models.rl import in_a_row


def random_player(game: in_a_row.Game):
  """policy(state, key) -> a legal action drawn uniformly."""
  return lambda state, key: in_a_row.random_action(game, state, key)


def play_game(game: in_a_row.Game, first, second, key) -> tuple[jax.Array, jax.Array]:
  """(winner, moves) of one game from the empty board."""
  def turn(carry):
    state, key = carry
    key, a, b = jax.random.split(key, 3)
    state, _ = in_a_row.play(game, state, first(state, a))
    state, _ = in_a_row.play(game, state, second(state, b))  # a finished game stays as it is
    return state, key

  state, _ = jax.lax.while_loop(lambda c: ~c[0].terminated, turn, (in_a_row.initial(game), key))
  return state.winner, jnp.sum(state.board != 0)


def play_games(game: in_a_row.Game, first, second, keys) -> tuple[jax.Array, jax.Array]:
  """(winners, moves) of one game per key, vmapped."""
  return jax.vmap(lambda key: play_game(game, first, second, key))(keys)
