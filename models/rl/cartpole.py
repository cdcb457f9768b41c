"""CartPole as pure functions, equal to gymnasium's CartPole-v1.

The state (x, ẋ, θ, θ̇): a cart of mass m_c = 1 on a track, a pole of mass
m_p = 0.1 and half-length l = 0.5 hinged on it, g = 9.8. Action 1 pushes the
cart right with F = 10 N, action 0 left with −F. With
    temp = (F + m_p l θ̇² sin θ) / (m_c + m_p),
    θ̈ = (g sin θ − cos θ · temp) / (l (4/3 − m_p cos²θ / (m_c + m_p))),
    ẍ = temp − m_p l θ̈ cos θ / (m_c + m_p),
one Euler step of τ = 0.02 s moves x += τ ẋ, ẋ += τ ẍ, θ += τ θ̇, θ̇ += τ θ̈.
Every step pays 1, the last included; the episode terminates when
|x| > 2.4 or |θ| > 12°, and is truncated after 500 steps. A reset draws each
of the four from U(−0.05, 0.05).
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

GRAVITY, CART_MASS, POLE_MASS, HALF_LENGTH, FORCE, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
X_LIMIT, THETA_LIMIT = 2.4, 12 * 2 * math.pi / 360
TIME_LIMIT = 500
NUM_ACTIONS = 2
OBSERVATION_SIZE = 4


class State(NamedTuple):
  physics: jax.Array  # (4,) x, ẋ, θ, θ̇
  time: jax.Array  # int32 steps taken this episode


def reset(key) -> tuple[State, jax.Array]:
  """Each of x, ẋ, θ, θ̇ from U(−0.05, 0.05)."""
  physics = jax.random.uniform(key, (OBSERVATION_SIZE,), minval=-0.05, maxval=0.05)
  return State(physics, jnp.int32(0)), physics


def dynamics(physics, action) -> jax.Array:
  """One Euler step of τ (above) from (x, ẋ, θ, θ̇) under action 0 (left) or 1 (right)."""
  x, x_dot, theta, theta_dot = physics
  force = jnp.where(action == 1, FORCE, -FORCE)
  cos, sin = jnp.cos(theta), jnp.sin(theta)
  total = CART_MASS + POLE_MASS
  temp = (force + POLE_MASS * HALF_LENGTH * theta_dot**2 * sin) / total
  theta_acc = (GRAVITY * sin - cos * temp) / (
      HALF_LENGTH * (4.0 / 3.0 - POLE_MASS * cos**2 / total))
  x_acc = temp - POLE_MASS * HALF_LENGTH * theta_acc * cos / total
  return jnp.stack([x + TAU * x_dot, x_dot + TAU * x_acc, theta + TAU * theta_dot,
                    theta_dot + TAU * theta_acc])


def step(state: State, action, key=None):
  """(state, observation, reward, terminated, truncated) after one step."""
  del key
  physics = dynamics(state.physics, action)
  terminated = (jnp.abs(physics[0]) > X_LIMIT) | (jnp.abs(physics[2]) > THETA_LIMIT)
  time = state.time + 1
  truncated = (time >= TIME_LIMIT) & ~terminated
  return State(physics, time), physics, jnp.float32(1.0), terminated, truncated
