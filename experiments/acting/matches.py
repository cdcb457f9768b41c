"""Tree search's matches for experiments.rl: UCT against a random player and, on tic-tac-toe,
the perfect one, on each side, the games of a match vmapped, timed without compiling."""

import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments import timing
from models.rl import in_a_row
from models.rl import match
from models.rl import mcts
from models.rl import minimax


def _opponents(game: in_a_row.Game) -> dict:
  opponents = {"random": match.random_player(game)}
  if game == in_a_row.TICTACTOE:
    opponents["minimax"] = minimax.perfect_player(game)
  return opponents


def play(env: str, seeds: list[int], settings: mcts.Settings, keys, games: int,
         workdir: str) -> tuple[dict, list[str]]:
  """(summary entries, figures) of ``games`` games per seed on each side against each
  opponent (experiments.rl's MCTS; its docstring names the keys)."""
  from experiments.acting import figures  # matplotlib: not before a flag is refused
  game = in_a_row.GAMES[env]
  agent = mcts.uct_player(game, settings.simulations, settings.exploration)
  outcomes, seconds, compile_seconds, searches = {}, 0.0, 0.0, 0
  for o, (opponent, other) in enumerate(_opponents(game).items()):
    outcomes[opponent] = {}
    for side, (first, second, sign) in enumerate(((agent, other, 1), (other, agent, -1))):
      game_keys = jnp.concatenate([jax.random.split(jax.random.fold_in(key, 2 * o + side),
                                                    games) for key in keys])
      run = timing.compile_and_run(
          lambda k, first=first, second=second: match.play_games(game, first, second, k),
          game_keys)
      winners, moves = (np.asarray(x) for x in run.out)
      result = winners * sign
      outcomes[opponent][("first", "second")[side]] = {
          "wins": int(np.sum(result == 1)), "draws": int(np.sum(result == 0)),
          "losses": int(np.sum(result == -1))}
      searches += int(np.sum((moves + 1 - side) // 2))  # the searching player's moves
      seconds, compile_seconds = seconds + run.seconds, compile_seconds + run.compile_seconds
  totals = {kind: {opponent: sum(sides[side][kind] for side in sides)
                   for opponent, sides in outcomes.items()}
            for kind in ("wins", "draws", "losses")}
  for opponent, sides in outcomes.items():
    print(f"against {opponent}: " + "; ".join(
        f"playing {side} {r['wins']} won, {r['draws']} drawn, {r['losses']} lost"
        for side, r in sides.items()))
  first_search = jax.jit(lambda key: mcts.search(
      game, in_a_row.initial(game), key, mcts.rollout_evaluation(game),
      mcts.ucb1(settings.exploration), settings.simulations).child_visits[mcts.ROOT])
  drawn = [figures.match_outcomes(outcomes, os.path.join(workdir, "matches.png")),
           figures.root_visits(game.rows, game.cols, first_search(keys[0]),
                               f"UCT's first move, {settings.simulations} simulations",
                               os.path.join(workdir, "first_move.png"))]
  simulations = searches * settings.simulations
  print(f"{simulations:,} simulations in {seconds:.2f} s ({simulations / seconds:,.0f} per "
        f"second, compile {compile_seconds:.2f} s)")
  return {**totals, "outcomes": outcomes, "games_per_side": games * len(seeds),
          "simulations": simulations, "simulations_per_second": simulations / seconds,
          "match_seconds": seconds, "compile_seconds": compile_seconds}, drawn
