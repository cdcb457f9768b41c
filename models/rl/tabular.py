"""Tabular learning on a known or sampled MDP: value iteration, Q-learning, exact evaluation.

- Value iteration, on the transition table (p, s', r, done) of each (s, a):
      Q(s, a) = Σ_k p_k (r_k + γ (1 − done_k) V(s'_k)),   V(s) ← max_a Q(s, a),
  until no V moves by more than tol; the greedy policy of the result is optimal.
- Q-learning, as the course writes it: in state s take a ε-greedy action a
  (uniform with probability ε, else argmax_a Q(s, a), ties broken at random),
  observe r and s', and
      Q(s, a) ← Q(s, a) + α (r + γ (1 − terminated) max_a' Q(s', a') − Q(s, a)),
  a truncated episode still bootstraps from s'. ε falls linearly from
  ``epsilon_start`` to ``epsilon_end`` over the first ``exploration_fraction``
  of the steps. The whole run is one ``lax.scan`` over environment steps;
  α, γ and the ε schedule are pytree leaves, so ``vmap`` runs seeds and a grid
  of them in one program.
- A policy's success, exactly: the probability of reaching a rewarding end
  within the time limit, by pushing the start's distribution through the
  table ``time_limit`` times (no sampling).
"""

from typing import NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from models.rl import frozen_lake

CHUNK = 4096  # steps whose random numbers are drawn at once


@flax.struct.dataclass
class Settings:
  alpha: float = 0.1
  gamma: float = 0.99
  epsilon_start: float = 1.0
  epsilon_end: float = 0.05
  exploration_fraction: float = 0.5
  num_steps: int = flax.struct.field(pytree_node=False, default=200_000)


def action_values(table: frozen_lake.Table, v, gamma) -> jax.Array:
  """Q(s, a) = Σ_k p_k (r_k + γ (1 − done_k) V(s'_k)): (S, A)."""
  p, s_next = jnp.asarray(table.probability), jnp.asarray(table.next_state)
  continuing = 1.0 - jnp.asarray(table.terminated, v.dtype)
  return jnp.sum(p * (jnp.asarray(table.reward) + gamma * continuing * v[s_next]), axis=2)


def value_iteration(table: frozen_lake.Table, gamma, tol: float = 1e-8,
                    max_iter: int = 100_000) -> tuple[jax.Array, jax.Array]:
  """(Q*, sweeps) by V ← max_a Q(s, a) until max |ΔV| ≤ tol."""
  dtype = jnp.result_type(float)

  def sweep(carry):
    v, _, count = carry
    new = jnp.max(action_values(table, v, gamma), axis=1)
    return new, jnp.max(jnp.abs(new - v)), count + 1

  v0 = jnp.zeros(table.probability.shape[0], dtype)
  v, _, count = jax.lax.while_loop(lambda c: (c[1] > tol) & (c[2] < max_iter), sweep,
                                   (v0, jnp.asarray(jnp.inf, dtype), 0))
  return action_values(table, v, gamma), count


def success(lake: frozen_lake.Lake, policy) -> jax.Array:
  """P(a rewarding end within the time limit | start, policy (S,) of actions), exactly."""
  t = lake.table
  s = jnp.arange(lake.num_states)
  p = jnp.asarray(t.probability)[s, policy]  # (S, 3)
  s_next = jnp.asarray(t.next_state)[s, policy]
  rewarding = jnp.asarray(t.reward)[s, policy] > 0  # (S, 3)
  start = "".join(lake.rows).index("S")

  def move(carry, _):
    dist, won = carry
    won = won + jnp.sum(dist[:, None] * p * rewarding)
    alive = dist[:, None] * p * ~jnp.asarray(t.terminated)[s, policy]
    return (jnp.zeros_like(dist).at[s_next.ravel()].add(alive.ravel()), won), None

  dist = jnp.zeros(lake.num_states).at[start].set(1.0)
  (_, won), _ = jax.lax.scan(move, (dist, jnp.zeros(())), None, length=lake.time_limit)
  return won


def epsilon(settings, step) -> jax.Array:
  """ε at ``step``: linear from epsilon_start to epsilon_end over the exploration steps.

  Any agent's settings with those fields, exploration_fraction and num_steps
  (Q-learning's here, DQN's in ``dqn.py``).
  """
  span = jnp.maximum(settings.exploration_fraction * settings.num_steps, 1.0)
  fraction = jnp.minimum(step / span, 1.0)
  return settings.epsilon_start + fraction * (settings.epsilon_end - settings.epsilon_start)


def q_update(q, s, a, r, s_next, terminated, alpha, gamma) -> jax.Array:
  """Q(s, a) ← Q(s, a) + α (r + γ (1 − terminated) max_a' Q(s', a') − Q(s, a))."""
  target = r + gamma * (1.0 - terminated) * jnp.max(q[s_next])
  return q.at[s, a].add(alpha * (target - q[s, a]))


def epsilon_greedy(q_row, eps, u_explore, u_choice):
  """Uniform over actions if u_explore < ε, else a uniform choice among argmax_a Q(s, a)."""
  n = q_row.shape[0]
  best = q_row == jnp.max(q_row)
  greedy = jnp.argmax(jnp.cumsum(best) > jnp.floor(u_choice * jnp.sum(best)))
  return jnp.where(u_explore < eps, jnp.floor(u_choice * n).astype(jnp.int32), greedy)


class Learner(NamedTuple):
  q: jax.Array  # (S, A)
  state: frozen_lake.State
  key: jax.Array


def q_learning_init(lake: frozen_lake.Lake, key) -> Learner:
  """Q = 0 at the start of the lake."""
  state, _ = frozen_lake.reset(lake)
  return Learner(jnp.zeros((lake.num_states, frozen_lake.NUM_ACTIONS)), state, key)


def q_learning_chunks(settings: Settings, lake: frozen_lake.Lake, learner: Learner,
                      starts) -> tuple[Learner, jax.Array]:
  """The learner after the chunks of ``CHUNK`` steps beginning at ``starts``, and each step's
  outcome, int8: 0 the episode goes on, 1 it ended without reward (a hole or the time
  limit), 2 it ended rewarded (the goal). A chunk's random numbers are drawn in bulk from
  the key and its first step (a draw per step would cost more than the step), so any cut
  between chunks gives the same run; steps from ``num_steps`` on change nothing.
  """

  def one_step(carry, inputs):
    q, state = carry
    step, u = inputs
    s = state.position
    a = epsilon_greedy(q[s], epsilon(settings, step), u[0], u[1])
    state, s_next, r, terminated, truncated = frozen_lake.step_by_uniform(lake, state, a, u[2])
    alpha = jnp.where(step < settings.num_steps, settings.alpha, 0.0)  # past the run: no update
    q = q_update(q, s, a, r, s_next, terminated.astype(q.dtype), alpha, settings.gamma)
    done = terminated | truncated
    state = jax.tree.map(lambda fresh, now: jnp.where(done, fresh, now),
                         frozen_lake.reset(lake)[0], state)
    return (q, state), jnp.where(done, 1 + (r > 0), 0).astype(jnp.int8)

  def chunk(carry, first):
    steps = first + jnp.arange(CHUNK)
    u = jax.random.uniform(jax.random.fold_in(learner.key, first), (CHUNK, 3))
    return jax.lax.scan(one_step, carry, (steps, u))

  (q, state), outcomes = jax.lax.scan(chunk, (learner.q, learner.state), starts)
  return Learner(q, state, learner.key), outcomes.reshape(-1)


def chunk_starts(settings: Settings) -> np.ndarray:
  """The first step of each chunk of the run."""
  return np.arange(-(-settings.num_steps // CHUNK), dtype=np.int32) * CHUNK


def q_learning(settings: Settings, lake: frozen_lake.Lake, key) -> tuple[jax.Array, jax.Array]:
  """(Q, each step's outcome) after ``num_steps`` steps from Q = 0, in one program."""
  learner, outcomes = q_learning_chunks(settings, lake, q_learning_init(lake, key),
                                        chunk_starts(settings))
  return learner.q, outcomes[:settings.num_steps]


def episode_successes(outcomes) -> np.ndarray:
  """Each finished episode's success (bool), in order, from one run's step outcomes."""
  outcomes = np.asarray(outcomes)
  return outcomes[outcomes > 0] == 2
