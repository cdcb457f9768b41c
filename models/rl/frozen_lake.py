"""FrozenLake as pure functions, equal to gymnasium's FrozenLake-v1 and FrozenLake8x8-v1.

A grid of S (start), F (frozen), H (hole) and G (goal); the state is
s = row · ncol + col. Actions: 0 left, 1 down, 2 right, 3 up; a move into the
edge stays. On the slippery lake the move taken is a − 1, a or a + 1 (mod 4),
each with probability 1/3 (gymnasium's default success_rate). Reaching H or G
ends the episode (terminated); reaching G pays 1, every other step 0. An
episode is truncated after 100 steps (4x4) or 200 (8x8), gymnasium's TimeLimit.

The transition table ``Lake.table`` holds, for each (s, a) and each of the
three moves k, (probability, next state, reward, terminated): gymnasium's
``env.P``, and what dynamic programming reads. In H and G every action stays
where it is with probability 1.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

MAPS = {
    "4x4": ("SFFF", "FHFH", "FFFH", "HFFG"),
    "8x8": ("SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF", "FFFHFFFF", "FHHFFFHF", "FHFFHFHF",
            "FFFHFFFG"),
}
TIME_LIMITS = {"4x4": 100, "8x8": 200}
ENVIRONMENTS = {"frozenlake": "4x4", "frozenlake8x8": "8x8"}  # the commands' names of the maps
MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))  # left, down, right, up as (row, col) steps
NUM_ACTIONS = 4


class Table(NamedTuple):
  probability: np.ndarray  # (S, A, 3) float64 (1/3 exactly as gymnasium's, in float64 runs)
  next_state: np.ndarray  # (S, A, 3) int32
  reward: np.ndarray  # (S, A, 3) float64
  terminated: np.ndarray  # (S, A, 3) bool


class Lake(NamedTuple):
  rows: tuple[str, ...]
  table: Table
  time_limit: int
  slippery: bool

  @property
  def num_states(self) -> int:
    return len(self.rows) * len(self.rows[0])

  def letter(self, state: int) -> str:
    return self.rows[state // len(self.rows[0])][state % len(self.rows[0])]


class State(NamedTuple):
  position: jax.Array  # int32 s
  time: jax.Array  # int32 steps taken this episode


def make(size: str = "4x4", slippery: bool = True) -> Lake:
  """The lake of gymnasium's map ``size`` with its transition table."""
  rows = MAPS[size]
  nrow, ncol = len(rows), len(rows[0])
  shape = (nrow * ncol, NUM_ACTIONS, 3)
  probability, reward = np.zeros(shape), np.zeros(shape)
  next_state, terminated = np.zeros(shape, np.int32), np.zeros(shape, bool)
  for s in range(nrow * ncol):
    row, col = divmod(s, ncol)
    for a in range(NUM_ACTIONS):
      if rows[row][col] in "GH":
        probability[s, a], next_state[s, a], terminated[s, a] = (1.0, 0.0, 0.0), s, True
        continue
      moves = ((a - 1) % 4, a, (a + 1) % 4) if slippery else (a,)
      for k, b in enumerate(moves):
        r = min(max(row + MOVES[b][0], 0), nrow - 1)
        c = min(max(col + MOVES[b][1], 0), ncol - 1)
        probability[s, a, k] = 1.0 / len(moves)
        next_state[s, a, k] = r * ncol + c
        reward[s, a, k] = float(rows[r][c] == "G")
        terminated[s, a, k] = rows[r][c] in "GH"
  return Lake(rows, Table(probability, next_state, reward, terminated), TIME_LIMITS[size],
              slippery)


def reset(lake: Lake, key=None) -> tuple[State, jax.Array]:
  """The start S (gymnasium's only start state)."""
  del key
  start = jnp.int32("".join(lake.rows).index("S"))
  return State(start, jnp.int32(0)), start


def step(lake: Lake, state: State, action, key):
  """One move: which of the three is drawn from ``key`` by the table's probabilities."""
  return step_by_uniform(lake, state, action, jax.random.uniform(key))


def step_by_uniform(lake: Lake, state: State, action, u):
  """``step`` with its draw given as u ~ U[0, 1): move k is the first whose cumulative
  probability exceeds u (agents that draw their randomness in bulk call this)."""
  t = lake.table
  s = state.position
  cumulative = jnp.cumsum(jnp.asarray(t.probability, jnp.float32)[s, action])
  k = jnp.minimum(jnp.sum(u >= cumulative), 2)
  new = jnp.asarray(t.next_state)[s, action, k]
  terminated = jnp.asarray(t.terminated)[s, action, k]
  time = state.time + 1
  truncated = (time >= lake.time_limit) & ~terminated
  return (State(new, time), new, jnp.asarray(t.reward)[s, action, k], terminated, truncated)
