"""UCT in plain Python, as a course's notebook writes it, for ``scripts.rl_benchmark``.

The rules of ``models/rl/mcts.py``'s UCT on the same game: from the root,
UCB1 (an unvisited legal move first, at random) down to a move that leads to
no node yet, which is added; a uniformly random game from it to the end; the
result backed up, its sign flipping at each level (a finished game is worth 0
to the player to move, its winning move +1 to the mover). Nodes are Python
objects with a dict of children, the board a list; nothing is compiled.
"""

import math
import random
import time

from models.rl import in_a_row


class _Rules:
  def __init__(self, game: in_a_row.Game):
    self.game = game
    self.lines = [list(map(int, line)) for line in in_a_row.lines(game)]
    self.through = [[line for line in self.lines if cell in line] for cell in range(game.num_cells)]

  def legal(self, board):
    g = self.game
    return [c for c in range(g.cols) if board[c] == 0] if g.gravity else [
        i for i, v in enumerate(board) if v == 0]

  def play(self, board, stone, action):
    """(board, won, full) after ``stone`` (+1 or −1) plays ``action``."""
    g, board = self.game, list(board)
    cell = action
    if g.gravity:
      row = max(r for r in range(g.rows) if board[r * g.cols + action] == 0)
      cell = row * g.cols + action
    board[cell] = stone
    won = any(all(board[i] == stone for i in line) for line in self.through[cell])
    return board, won, all(board)


class _Node:
  __slots__ = ("board", "stone", "over", "reward", "children", "untried", "visits", "value")

  def __init__(self, rules, board, stone, over, reward):
    self.board, self.stone, self.over = board, stone, over  # stone: the mover's here
    self.reward = reward  # of the move into this node, to the mover before it
    self.children, self.visits, self.value = [], 0, 0.0  # value: the mover's mean result
    self.untried = [] if over else rules.legal(board)
    random.shuffle(self.untried)


def _rollout(rules, board, stone) -> float:
  """Random play to the end: +1, 0 or −1 for ``stone``, the player to move."""
  mover = stone
  while True:
    moves = rules.legal(board)
    if not moves:
      return 0.0
    board, won, full = rules.play(board, mover, random.choice(moves))
    if won:
      return 1.0 if mover == stone else -1.0
    if full:
      return 0.0
    mover = -mover


def simulations_per_second(game: in_a_row.Game, simulations: int, exploration: float,
                           seed: int = 0) -> tuple[float, "_Node"]:
  """One search of ``simulations`` from the empty board, timed; and its root."""
  random.seed(seed)
  rules = _Rules(game)
  root = _Node(rules, [0] * game.num_cells, 1, False, 0.0)
  start = time.perf_counter()
  for _ in range(simulations):
    node, path = root, [root]
    while not node.over and not node.untried:
      log_n = math.log(node.visits)
      node = max(node.children, key=lambda child: child.reward - child.value
                 + exploration * math.sqrt(log_n / child.visits))
      path.append(node)
    value = 0.0
    if not node.over:
      board, won, full = rules.play(node.board, node.stone, node.untried.pop())
      child = _Node(rules, board, -node.stone, won or full, 1.0 if won else 0.0)
      node.children.append(child)
      path.append(child)
      value = 0.0 if child.over else _rollout(rules, board, child.stone)
    for node in reversed(path):  # a finished game's value is 0, so r − v serves both cases
      node.visits += 1
      node.value += (value - node.value) / node.visits
      value = node.reward - value
  return simulations / (time.perf_counter() - start), root
