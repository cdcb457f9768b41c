"""Monte Carlo tree search on fixed-size node arrays: UCT, and PUCT with a prior and a value.

Each simulation walks from the root to a leaf, expands it and backs its value
up (mctx's layout: node n holds the state, its visit count N(n) and mean value
V(n) from the side of the player to move there; the edge (n, a) holds its
reward r and discount d, d = −1 between the two players and 0 into the end):
  1. selection: at an expanded node take the legal a maximising the rule below,
     until the edge leads to no node yet, or to a finished game;
  2. expansion: play a, store the new state in node i + 1 of simulation i;
  3. evaluation: a finished game is worth 0 (its reward sits on the edge);
     otherwise UCT plays a random game to the end and scores it from the
     mover's side (+1, 0, −1), PUCT asks the value function;
  4. backup: up the path, v ← r + d · v and each node's mean takes v in,
         V(n) ← (N(n) V(n) + v) / (N(n) + 1),   N(n) ← N(n) + 1.
With Q(n, a) = r(n, a) + d(n, a) V(child), the rules are
  UCT (UCB1):  Q(n, a) + c · sqrt(ln N(n) / N(n, a)), an unvisited move first
               (ties at random), c = √2 by default;
  PUCT (AlphaZero, as mctx's ``muzero_action_selection``):
               Q̂(n, a) + P(a|n) · sqrt(N(n)) / (1 + N(n, a)) · (c₁ + ln((N(n) + c₂ + 1) / c₂)),
               P the softmax of the prior logits, c₁ = 1.25, c₂ = 19 652, and
               Q̂ the Q-values min-max normalised over the node's value and its
               visited children's (an unvisited child takes the minimum).
Illegal moves are never selected. The move played is the most visited one.
The search of one position is one ``fori_loop`` of simulations, each a
``while_loop`` down the tree, so ``vmap`` runs the positions of many games at once.
"""

import dataclasses
import math
from typing import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from models.rl import in_a_row

UNVISITED = -1
ROOT = 0


# Each game's default simulations per move. Measured as the second player against the perfect
# one, 200 games a seed: 2 000 simulations lose 1 (c = 1 or √2, seed 0); 4 000 with c = √2
# lose none over seeds 0, 1, 2. Connect four against a random player: 100 simulations win 199
# games of 200, 400 all.
SIMULATIONS = {"tictactoe": 4000, "connect_four": 400}


@dataclasses.dataclass(frozen=True)
class Settings:
  simulations: int = 400  # per move
  exploration: float = math.sqrt(2)  # UCB1's c


def tree_bytes(game: in_a_row.Game, simulations: int) -> int:
  """The bytes of one search's node arrays (below): what each game searching at once holds."""
  state = game.num_cells + 4 + 1 + 4  # board, player, terminated, winner
  per_node = state + 4 * 4 + game.num_actions * (6 * 4 + 1)
  return (simulations + 1) * per_node


class Tree(NamedTuple):
  states: in_a_row.State  # each leaf with a leading node axis (num_simulations + 1,)
  visits: jax.Array  # (nodes,) int32 N(n)
  values: jax.Array  # (nodes,) float32 V(n), from the side of the player to move at n
  parents: jax.Array  # (nodes,) int32
  actions: jax.Array  # (nodes,) int32: the move from the parent
  children: jax.Array  # (nodes, actions) int32 node index, UNVISITED if none
  child_visits: jax.Array  # (nodes, actions) int32 N(n, a)
  child_values: jax.Array  # (nodes, actions) float32 V(child)
  rewards: jax.Array  # (nodes, actions) float32 r(n, a), to the mover at n
  discounts: jax.Array  # (nodes, actions) float32 d(n, a)
  prior_logits: jax.Array  # (nodes, actions) float32
  legal: jax.Array  # (nodes, actions) bool

  def q_values(self, node) -> jax.Array:
    """Q(n, a) = r(n, a) + d(n, a) V(child)."""
    return self.rewards[node] + self.discounts[node] * self.child_values[node]


# evaluate(state, key) -> (prior logits (actions,), value from the mover's side)
Evaluate = Callable[[in_a_row.State, jax.Array], tuple[jax.Array, jax.Array]]
# select(tree, node, key) -> action
Select = Callable[[Tree, jax.Array, jax.Array], jax.Array]


def rollout(game: in_a_row.Game, state: in_a_row.State, key) -> jax.Array:
  """The result of uniformly random play to the end, from the side of the mover at ``state``."""
  def body(carry):
    s, outcome, key = carry
    key, pick = jax.random.split(key)
    mover = in_a_row.sign(s.player)
    s, reward = in_a_row.play(game, s, in_a_row.random_action(game, s, pick))
    return s, outcome + mover * reward, key

  end, outcome, _ = jax.lax.while_loop(lambda c: ~c[0].terminated, body,
                                       (state, jnp.float32(0.0), key))
  del end
  return outcome * in_a_row.sign(state.player)


def rollout_evaluation(game: in_a_row.Game) -> Evaluate:
  """UCT's leaf value: one random rollout; the prior is uniform (UCB1 does not read it)."""
  def evaluate(state, key):
    return jnp.zeros(game.num_actions), rollout(game, state, key)
  return evaluate


def fixed_random_evaluation(game: in_a_row.Game, seed: int = 0) -> Evaluate:
  """A prior and a value from fixed random weights of the canonical board b (no training):
  logits = b W + 0.01 · a (no two moves tie), illegal moves at float32's lowest logit;
  value = tanh(b · u + 0.1), 0 at the end. What PUCT is checked and timed with."""
  k1, k2 = jax.random.split(jax.random.key(seed))
  w = 0.3 * jax.random.normal(k1, (game.num_cells, game.num_actions))
  u = jax.random.normal(k2, (game.num_cells,)) / math.sqrt(game.num_cells)

  def evaluate(state, key=None):
    del key
    board = in_a_row.canonical(state).astype(jnp.float32)
    logits = board @ w + 0.01 * jnp.arange(game.num_actions)
    logits = jnp.where(in_a_row.legal(game, state), logits, jnp.finfo(jnp.float32).min)
    return logits, jnp.where(state.terminated, 0.0, jnp.tanh(board @ u + 0.1))

  return evaluate


def ucb1(exploration: float = math.sqrt(2)) -> Select:
  """UCT's rule (module docstring): the unvisited legal moves first, at random, then UCB1."""
  def select(tree: Tree, node, key):
    n = tree.child_visits[node]
    bonus = exploration * jnp.sqrt(jnp.log(tree.visits[node]) / jnp.maximum(n, 1))
    score = jnp.where(n == 0, jnp.inf, tree.q_values(node) + bonus)
    score = jnp.where(tree.legal[node], score, -jnp.inf)
    best = score == jnp.max(score)
    return jnp.argmax(jnp.where(best, jax.random.uniform(key, n.shape), -1.0))
  return select


def puct(pb_c_init: float = 1.25, pb_c_base: float = 19652.0) -> Select:
  """PUCT as mctx's muzero_action_selection with its default Q normalisation (docstring)."""
  def select(tree: Tree, node, key):
    del key
    n = tree.child_visits[node]
    total = tree.visits[node].astype(jnp.float32)
    pb_c = pb_c_init + jnp.log((total + pb_c_base + 1.0) / pb_c_base)
    prior = jax.nn.softmax(tree.prior_logits[node])
    policy_score = jnp.sqrt(total) * pb_c * prior / (n + 1)
    q, value = tree.q_values(node), tree.values[node]
    known = jnp.where(n > 0, q, value)
    low = jnp.minimum(value, jnp.min(known))
    high = jnp.maximum(value, jnp.max(known))
    q_hat = (jnp.where(n > 0, q, low) - low) / jnp.maximum(high - low, 1e-8)
    return jnp.argmax(jnp.where(tree.legal[node], q_hat + policy_score, -jnp.inf))
  return select


def _empty(game: in_a_row.Game, root: in_a_row.State, nodes: int) -> Tree:
  grid = lambda dtype, fill=0: jnp.full((nodes, game.num_actions), fill, dtype)  # noqa: E731
  return Tree(
      states=jax.tree.map(lambda x: jnp.zeros((nodes,) + x.shape, x.dtype), root),
      visits=jnp.zeros(nodes, jnp.int32), values=jnp.zeros(nodes, jnp.float32),
      parents=jnp.full(nodes, UNVISITED, jnp.int32), actions=jnp.full(nodes, UNVISITED, jnp.int32),
      children=grid(jnp.int32, UNVISITED), child_visits=grid(jnp.int32),
      child_values=grid(jnp.float32), rewards=grid(jnp.float32), discounts=grid(jnp.float32),
      prior_logits=grid(jnp.float32), legal=grid(bool, False))


def _store(tree: Tree, game, node, state, prior_logits, value, visits) -> Tree:
  """Node ``node`` holds ``state``, its prior and its value, visited ``visits`` times."""
  return tree._replace(
      states=jax.tree.map(lambda all_, x: all_.at[node].set(x), tree.states, state),
      visits=tree.visits.at[node].set(visits), values=tree.values.at[node].set(value),
      prior_logits=tree.prior_logits.at[node].set(prior_logits),
      legal=tree.legal.at[node].set(in_a_row.legal(game, state)))


class Path(NamedTuple):
  nodes: jax.Array  # (max_depth,) int32: the root, then each node the walk selected at
  actions: jax.Array  # (max_depth,) int32: the move taken at each
  length: jax.Array  # int32: how many of them the walk used


def _descend(tree: Tree, select: Select, key, max_depth: int) -> Path:
  """The walk from the root to where it leaves the tree: an edge to no node or into a finished game.

  The root always takes a move; only the small path is carried, never the tree.
  """
  def body(carry):
    path, next_node, key = carry
    key, pick = jax.random.split(key)
    action = select(tree, next_node, pick)
    path = Path(path.nodes.at[path.length].set(next_node),
                path.actions.at[path.length].set(action), path.length + 1)
    return path, tree.children[next_node, action], key

  def continues(carry):
    next_node = carry[1]
    return (next_node != UNVISITED) & ~tree.states.terminated[jnp.maximum(next_node, 0)]

  empty = Path(jnp.zeros(max_depth, jnp.int32), jnp.zeros(max_depth, jnp.int32), jnp.int32(0))
  path, _, _ = jax.lax.while_loop(continues, body, body((empty, jnp.int32(ROOT), key)))
  return path


def _backup(tree: Tree, path: Path, leaf) -> Tree:
  """v ← r + d · v up the path from ``leaf``; each node's mean and counts on it take v in.

  The values along the path come from a reverse scan, then every node of the
  path is written at once (a scatter), so no loop carries the tree.
  """
  on_path = jnp.arange(path.nodes.shape[0]) < path.length
  rewards = tree.rewards[path.nodes, path.actions]
  discounts = tree.discounts[path.nodes, path.actions]

  def up(v, edge):
    reward, discount, used = edge
    v = jnp.where(used, reward + discount * v, v)
    return v, v

  _, returns = jax.lax.scan(up, tree.values[leaf], (rewards, discounts, on_path), reverse=True)
  counts = tree.visits[path.nodes]
  means = (tree.values[path.nodes] * counts + returns) / (counts + 1)
  is_last = jnp.arange(path.nodes.shape[0]) == path.length - 1
  child_means = jnp.where(is_last, tree.values[leaf], jnp.append(means[1:], 0.0))
  nodes = jnp.where(on_path, path.nodes, tree.visits.shape[0])  # off the path: dropped
  return tree._replace(
      values=tree.values.at[nodes].set(means, mode="drop"),
      visits=tree.visits.at[nodes].add(1, mode="drop"),
      child_values=tree.child_values.at[nodes, path.actions].set(child_means, mode="drop"),
      child_visits=tree.child_visits.at[nodes, path.actions].add(1, mode="drop"))


def search(game: in_a_row.Game, state: in_a_row.State, key, evaluate: Evaluate,
           select: Select, num_simulations: int) -> Tree:
  """The tree after ``num_simulations`` simulations from ``state`` (module docstring).

  A walk that ends on a finished game visits that node again (worth 0, as
  ever) rather than adding one: the game is deterministic, so expanding the
  same edge again writes what the node already holds, and one program serves
  both cases without a branch (under ``vmap`` a branch would copy the tree).
  """
  key, root_key = jax.random.split(key)
  prior, value = evaluate(state, root_key)
  tree = _store(_empty(game, state, num_simulations + 1), game, ROOT, state, prior, value, 1)

  def simulate(i, carry):
    tree, key = carry
    key, walk, leaf_key = jax.random.split(key, 3)
    path = _descend(tree, select, walk, game.num_cells + 1)
    parent, action = path.nodes[path.length - 1], path.actions[path.length - 1]
    existing = tree.children[parent, action]
    node = jnp.where(existing == UNVISITED, i + 1, existing)
    child, reward = in_a_row.play(game, jax.tree.map(lambda x: x[parent], tree.states), action)
    prior, value = evaluate(child, leaf_key)
    value = jnp.where(child.terminated, 0.0, value)
    visits = jnp.where(existing == UNVISITED, 1, tree.visits[node] + 1)
    tree = _store(tree, game, node, child, prior, value, visits)
    tree = tree._replace(
        parents=tree.parents.at[node].set(parent), actions=tree.actions.at[node].set(action),
        children=tree.children.at[parent, action].set(node),
        rewards=tree.rewards.at[parent, action].set(reward),
        discounts=tree.discounts.at[parent, action].set(jnp.where(child.terminated, 0.0, -1.0)))
    return _backup(tree, path, node), key

  tree, _ = jax.lax.fori_loop(0, num_simulations, simulate, (tree, key))
  return tree


def best_action(tree: Tree, key) -> jax.Array:
  """The most visited legal move at the root, ties at random."""
  n = jnp.where(tree.legal[ROOT], tree.child_visits[ROOT], -1)
  return jnp.argmax(jnp.where(n == jnp.max(n), jax.random.uniform(key, n.shape), -1.0))


def player(game: in_a_row.Game, evaluate: Evaluate, select: Select, num_simulations: int):
  """policy(state, key) -> action: search, then the most visited move."""
  def policy(state, key):
    search_key, pick = jax.random.split(key)
    return best_action(search(game, state, search_key, evaluate, select, num_simulations), pick)
  return policy


def uct_player(game: in_a_row.Game, simulations: int, exploration: float = math.sqrt(2)):
  """UCT: UCB1 selection and random rollouts."""
  return player(game, rollout_evaluation(game), ucb1(exploration), simulations)
