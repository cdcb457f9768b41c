"""Tree search: the games against PettingZoo's, the perfect player's values, UCB1 and the
backup on constructed trees, PUCT's visit counts against mctx's, and matches."""

import json

import jax
import jax.numpy as jnp
import mctx
import numpy as np
import pytest
from pettingzoo.classic.connect_four import connect_four
from pettingzoo.classic.tictactoe import tictactoe

from models.rl import in_a_row
from models.rl import match
from models.rl import mcts
from models.rl import minimax

PETTINGZOO = {"tictactoe": tictactoe, "connect_four": connect_four}


@pytest.mark.parametrize("name", ["tictactoe", "connect_four"])
def test_games_step_as_pettingzoos_on_the_same_moves(name):
  """Random games, an illegal move ending a few (PettingZoo's TerminateIllegalWrapper: −1 to
  the mover): the same observations, masks, rewards and ends."""
  game = in_a_row.GAMES[name]
  step = jax.jit(lambda state, a: in_a_row.step(game, state, a))
  rng = np.random.default_rng(0)
  for episode in range(30):
    env = PETTINGZOO[name].env()
    env.reset(seed=episode)
    state, observation = in_a_row.reset(game)
    for _ in range(game.num_cells + 1):
      mover = env.agent_selection
      theirs = env.observe(mover)
      np.testing.assert_array_equal(observation, theirs["observation"])
      np.testing.assert_array_equal(in_a_row.legal(game, state), theirs["action_mask"] == 1)
      legal = np.flatnonzero(theirs["action_mask"])
      illegal = np.flatnonzero(theirs["action_mask"] == 0)
      a = int(rng.choice(illegal if episode % 5 == 4 and len(illegal) else legal))
      env.step(a)
      state, observation, reward, terminated, truncated = step(state, a)
      assert float(reward) == env.rewards[mover], (episode, a)
      assert bool(terminated) == env.terminations[mover] and not truncated
      if terminated:  # the winner: the mover after a line, the opponent after an illegal move
        mover_sign = int(in_a_row.sign(mover != env.possible_agents[0]))
        assert int(state.winner) * mover_sign == env.rewards[mover]
        break


def test_connect_four_finds_every_line_of_four():
  """6 rows × 4 starts + 7 columns × 3 starts + 2 diagonals × 3 × 4 = 69 lines."""
  assert len(in_a_row.lines(in_a_row.CONNECT_FOUR)) == 69
  assert len(in_a_row.lines(in_a_row.TICTACTOE)) == 8


def _position(game, moves):
  state = in_a_row.initial(game)
  for a in moves:
    state, _ = in_a_row.play(game, state, a)
  return state


@pytest.mark.parametrize("moves, value, optimal", [
    ((), 0, range(9)),  # every opening draws
    ((0, 3, 1, 4), 1, [2]),  # X to move with 0, 1: completing the row wins
    ((4, 0, 8), 0, [2, 6]),  # X centre and far corner: O must take a free corner
    ((0, 4, 8, 2), 1, [6]),  # X corners 0, 8; O's 2 threatens 6, X must block and forks
    ((0, 1, 4), -1, range(9)),  # O faces 0-4-8: blocking at 8 lets X fork at 6; every move loses
])
def test_the_perfect_players_values_of_known_positions(moves, value, optimal):
  state = _position(in_a_row.TICTACTOE, moves)
  solution = minimax.solve(in_a_row.TICTACTOE)
  i = int(minimax.index(in_a_row.canonical(state)))
  assert solution.value[i] == value
  if value >= 0:
    assert list(np.flatnonzero(solution.optimal[i])) == list(optimal)
  assert solution.reachable.sum() == 4520  # tic-tac-toe's positions before the end


def test_the_perfect_player_draws_against_itself():
  game = in_a_row.TICTACTOE
  perfect = minimax.perfect_player(game)
  winners, moves = jax.jit(lambda keys: match.play_games(game, perfect, perfect, keys))(
      jax.random.split(jax.random.key(0), 64))
  assert np.all(np.asarray(winners) == 0) and np.all(np.asarray(moves) == 9)


def _tree_with_root_children(visits, q):
  """A root holding the empty tic-tac-toe board whose children have N(0, a) and Q(0, a)."""
  game = in_a_row.TICTACTOE
  state = in_a_row.initial(game)
  tree = mcts._empty(game, state, 16)
  tree = mcts._store(tree, game, mcts.ROOT, state, jnp.zeros(9), 0.0, 1 + int(np.sum(visits)))
  return tree._replace(child_visits=tree.child_visits.at[0].set(jnp.asarray(visits)),
                       rewards=tree.rewards.at[0].set(jnp.asarray(q, jnp.float32)))


def test_ucb1_takes_the_highest_bound_and_an_unvisited_move_first():
  visits = np.array([10, 3, 5, 1, 7, 2, 9, 4, 6])
  q = np.array([0.5, 0.1, 0.2, -0.9, 0.3, 0.0, 0.45, -0.2, 0.25])
  tree = _tree_with_root_children(visits, q)
  bound = q + np.sqrt(2) * np.sqrt(np.log(visits.sum() + 1) / visits)
  select = mcts.ucb1()
  assert int(select(tree, 0, jax.random.key(0))) == int(np.argmax(bound))
  tree = _tree_with_root_children(np.where(np.arange(9) == 5, 0, visits), q)
  assert int(select(tree, 0, jax.random.key(0))) == 5
  # An occupied cell is never taken, however promising.
  occupied = tree._replace(legal=tree.legal.at[0, 5].set(False))
  assert int(select(occupied, 0, jax.random.key(0))) == int(np.argmax(np.where(
      np.arange(9) == 5, -np.inf, q + np.sqrt(2) * np.sqrt(np.log(visits.sum() - 1) / visits))))


@pytest.mark.parametrize("name, moves", [("tictactoe", (4, 0)), ("connect_four", (3, 3))])
def test_the_backup_keeps_each_mean_equal_to_its_childrens(name, moves):
  """After a search, N(n) = 1 + Σ_a N(n, a) at every expanded unfinished node, and
  N(n) V(n) = v₀(n) + Σ_a N(n, a) Q(n, a), v₀ the node's own first value."""
  game = in_a_row.GAMES[name]
  state = _position(game, moves)
  evaluate = mcts.rollout_evaluation(game)
  tree = jax.jit(lambda s: mcts.search(game, s, jax.random.key(3), evaluate, mcts.ucb1(), 300))(
      state)
  visits, values = np.asarray(tree.visits), np.asarray(tree.values)
  child_visits = np.asarray(tree.child_visits)
  assert visits[0] == 301
  unfinished = (visits > 0) & ~np.asarray(tree.states.terminated)
  np.testing.assert_array_equal(visits[unfinished], 1 + child_visits[unfinished].sum(axis=1))
  children = np.asarray(tree.children)
  q = np.asarray(tree.rewards) + np.asarray(tree.discounts) * values[np.maximum(children, 0)]
  for n in np.flatnonzero(unfinished):
    first = visits[n] * values[n] - np.sum(child_visits[n] * np.where(children[n] >= 0, q[n], 0))
    assert first in (pytest.approx(v, abs=1e-4) for v in (-1.0, 0.0, 1.0)), n  # a rollout's


@pytest.mark.parametrize("name, moves, simulations", [
    ("tictactoe", (), 100), ("tictactoe", (4, 0, 8), 300), ("connect_four", (3, 3, 2), 300)])
def test_puct_visits_each_move_as_often_as_mctx(name, moves, simulations):
  """mctx.muzero_policy with the Dirichlet noise off, on the same game, prior and value: the
  same visit counts at the root and the same root value (mctx's 1e-7 tie-breaking noise
  cannot matter: no two scores of this network are that close)."""
  game = in_a_row.GAMES[name]
  evaluate = mcts.fixed_random_evaluation(game)
  state = _position(game, moves)
  ours = jax.jit(lambda s: mcts.search(game, s, jax.random.key(0), evaluate, mcts.puct(),
                                       simulations))(state)

  def recurrent_fn(params, key, action, states):
    del params, key
    child, reward = jax.vmap(lambda s, a: in_a_row.play(game, s, a))(states, action)
    logits, value = jax.vmap(evaluate)(child)  # a finished game's value is 0
    return mctx.RecurrentFnOutput(
        reward=reward, discount=jnp.where(child.terminated, 0.0, -1.0), prior_logits=logits,
        value=value), child

  logits, value = evaluate(state)
  root = mctx.RootFnOutput(prior_logits=logits[None], value=value[None],
                           embedding=jax.tree.map(lambda x: x[None], state))
  theirs = jax.jit(lambda: mctx.muzero_policy(
      None, jax.random.key(1), root, recurrent_fn, simulations,
      invalid_actions=~in_a_row.legal(game, state)[None], dirichlet_fraction=0.0))()
  np.testing.assert_array_equal(ours.child_visits[0], theirs.search_tree.children_visits[0, 0])
  assert int(np.count_nonzero(ours.child_visits[0])) >= 3  # a search, not one line
  np.testing.assert_allclose(ours.values[0], theirs.search_tree.node_values[0, 0], rtol=1e-5)


def test_uct_takes_a_win_and_blocks_a_loss():
  game = in_a_row.TICTACTOE
  uct = jax.jit(mcts.uct_player(game, 200))
  assert int(uct(_position(game, (0, 3, 1, 4)), jax.random.key(0))) == 2  # X completes 0-1-2
  assert int(uct(_position(game, (0, 4, 1)), jax.random.key(0))) == 2  # O blocks 0-1-2
  four = in_a_row.CONNECT_FOUR
  uct = jax.jit(mcts.uct_player(four, 200))
  assert int(uct(_position(four, (0, 6, 1, 6, 2)), jax.random.key(0))) == 3  # O blocks the row


def test_games_vmapped_equal_each_alone():
  game = in_a_row.TICTACTOE
  uct, rnd = mcts.uct_player(game, 30), match.random_player(game)
  keys = jax.random.split(jax.random.key(0), 4)
  winners, moves = jax.jit(lambda k: match.play_games(game, uct, rnd, k))(keys)
  one = jax.jit(lambda k: match.play_game(game, uct, rnd, k))
  for i in range(4):
    assert tuple(map(int, one(keys[i]))) == (int(winners[i]), int(moves[i]))


@pytest.mark.slow
def test_the_rl_command_plays_matches_and_refuses_bad_settings(run_module, tmp_path):
  result = run_module("experiments.rl", "--algorithm=mcts", "--env=tictactoe", "--games=5",
                      f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr[-2000:]
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["seeds"] == [0] and summary["settings"]["simulations"] == 4000
  # Measured with 4 000 simulations: no loss to the perfect player in 600 games as the second
  # player (the harder side), 98 and 86 wins of 100 against a random player.
  assert summary["losses"] == {"random": 0, "minimax": 0}
  assert summary["wins"]["random"] >= 7 and summary["wins"]["minimax"] == 0
  assert summary["outcomes"]["minimax"]["second"] == {"wins": 0, "draws": 5, "losses": 0}
  assert summary["games_per_side"] == 5 and summary["simulations_per_second"] > 0
  # 9 cells: at least 3 moves of the search's per game (5 playing first, 4 second).
  assert summary["simulations"] >= 4 * 5 * 3 * 4000
  assert result.stdout.strip().splitlines()[-1] == (
      f"results in {tmp_path}: summary.json; figures: matches.png, first_move.png")
  for flags, message in [
      (("--algorithm=mcts", "--gamma=0.9"), "--gamma is a setting of q_learning and dqn, not of mcts"),
      (("--algorithm=mcts", "--env=cartpole"), "mcts runs on tictactoe, connect_four, not cartpole"),
      (("--algorithm=mcts", "--games=100000", "--simulations=100000"), "GiB of trees")]:
    refused = run_module("experiments.rl", *flags, f"--workdir={tmp_path / 'refused'}")
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 1 and len(lines) == 1 and message in lines[0], flags
    assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize("name", ["tictactoe", "connect_four"])
def test_the_python_reference_plays_by_the_same_rules(name):
  """scripts.rl_benchmark's plain-Python UCT: its boards, wins and full boards are in_a_row's
  on random games, and its search from the empty tic-tac-toe board prefers the centre, as ours."""
  from scripts import python_uct_reference
  game = in_a_row.GAMES[name]
  rules = python_uct_reference._Rules(game)
  rng = np.random.default_rng(0)
  play = jax.jit(lambda state, a: in_a_row.play(game, state, a))
  for _ in range(10):
    state, board, stone = in_a_row.initial(game), [0] * game.num_cells, 1
    while not bool(state.terminated):
      a = int(rng.choice(rules.legal(board)))
      assert rules.legal(board) == list(np.flatnonzero(in_a_row.legal(game, state)))
      board, won, full = rules.play(board, stone, a)
      state, reward = play(state, a)
      assert board == list(np.asarray(state.board)) and won == (float(reward) == 1.0)
      assert bool(state.terminated) == (won or full)
      stone = -stone
  if name == "tictactoe":
    _, root = python_uct_reference.simulations_per_second(game, 2000, np.sqrt(2))
    assert max(root.children, key=lambda c: c.visits).board[4] == 1
