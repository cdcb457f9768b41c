"""Deep Q-learning (DQN) on CartPole, the whole training one ``lax.scan``.

A Q-network Q_θ(s, ·) (the project's MLP, 4-120-84-2 ReLU) acts ε-greedily,
ε falling linearly from ``epsilon_start`` to ``epsilon_end`` over the first
``exploration_fraction`` of the steps. Each transition (s, a, r, s', terminated)
goes into a replay buffer on the device (a ring of ``buffer_size``). From
step ``learning_starts`` on, every ``train_every`` steps, a batch B drawn
uniformly from the buffer takes one optimizer step on the TD loss
    L(θ) = mean_B ℓ(Q_θ(s, a) − y),   y = r + γ (1 − terminated) Q_θ⁻(s', a*),
with a* = argmax_a' Q_θ⁻(s', a') (DQN) or argmax_a' Q_θ(s', a') (double DQN),
and ℓ(d) = d² (mean squared error, CleanRL's) or Huber's loss (δ = 1). The
target network θ⁻ is a copy of θ, refreshed every ``target_every`` steps.
A truncated episode's s' is stored as observed, and y bootstraps from it.

The environment, the buffer writes, the gradient steps and the target copies
run in one compiled ``lax.scan`` (blocks of ``train_every`` environment steps,
then the update); seeds run on a vmapped axis.
"""

from typing import NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from models import networks
from models import optimizers
from models.rl import cartpole
from models.rl import tabular


@flax.struct.dataclass
class Settings:  # CleanRL's dqn.py for CartPole-v1
  learning_rate: float = 2.5e-4
  gamma: float = 0.99
  epsilon_start: float = 1.0
  epsilon_end: float = 0.05
  exploration_fraction: float = 0.5
  num_steps: int = flax.struct.field(pytree_node=False, default=500_000)
  buffer_size: int = flax.struct.field(pytree_node=False, default=10_000)
  batch_size: int = flax.struct.field(pytree_node=False, default=128)
  learning_starts: int = flax.struct.field(pytree_node=False, default=10_000)
  train_every: int = flax.struct.field(pytree_node=False, default=10)
  target_every: int = flax.struct.field(pytree_node=False, default=500)
  hidden_sizes: tuple[int, ...] = flax.struct.field(pytree_node=False, default=(120, 84))
  double: bool = flax.struct.field(pytree_node=False, default=False)
  huber: bool = flax.struct.field(pytree_node=False, default=False)


class Buffer(NamedTuple):
  observation: jax.Array  # (size, 4)
  action: jax.Array  # (size,)
  reward: jax.Array  # (size,)
  next_observation: jax.Array  # (size, 4)
  terminated: jax.Array  # (size,) float 0/1


class Carry(NamedTuple):
  params: dict
  target: dict
  opt_state: optax.OptState
  buffer: Buffer
  env: cartpole.State
  observation: jax.Array
  episode_return: jax.Array
  key: jax.Array


def network(settings: Settings) -> networks.MLP:
  return networks.MLP(num_classes=cartpole.NUM_ACTIONS, hidden_sizes=settings.hidden_sizes)


def optimizer(settings: Settings) -> optax.GradientTransformation:
  return optimizers.create_optimizer("adam", learning_rate=settings.learning_rate)


def td_loss(settings: Settings, params, target, batch: Buffer) -> jax.Array:
  """mean ℓ(Q_θ(s, a) − y) over the batch (above)."""
  net = network(settings)
  q = net.apply(params, batch.observation)
  q_taken = jnp.take_along_axis(q, batch.action[:, None], axis=1)[:, 0]
  q_next_target = net.apply(target, batch.next_observation)
  if settings.double:
    chosen = jnp.argmax(net.apply(params, batch.next_observation), axis=1)
    q_next = jnp.take_along_axis(q_next_target, chosen[:, None], axis=1)[:, 0]
  else:
    q_next = jnp.max(q_next_target, axis=1)
  y = batch.reward + settings.gamma * (1.0 - batch.terminated) * q_next
  d = q_taken - jax.lax.stop_gradient(y)
  return jnp.mean(optax.huber_loss(d, delta=1.0) if settings.huber else d * d)


def init(settings: Settings, key) -> Carry:
  net_key, env_key, key = jax.random.split(key, 3)
  params = network(settings).init(net_key, jnp.zeros((1, cartpole.OBSERVATION_SIZE)))
  env, observation = cartpole.reset(env_key)
  size = settings.buffer_size
  buffer = Buffer(jnp.zeros((size, 4)), jnp.zeros(size, jnp.int32), jnp.zeros(size),
                  jnp.zeros((size, 4)), jnp.zeros(size))
  return Carry(params, params, optimizer(settings).init(params), buffer, env, observation,
               jnp.zeros(()), key)


def _act(settings: Settings, carry: Carry, step):
  """One environment step, its transition written at ``step`` mod the buffer's size."""
  key, explore, random_action, reset_key = jax.random.split(carry.key, 4)
  q = network(settings).apply(carry.params, carry.observation[None])[0]
  action = jnp.where(jax.random.uniform(explore) < tabular.epsilon(settings, step),
                     jax.random.randint(random_action, (), 0, cartpole.NUM_ACTIONS),
                     jnp.argmax(q))
  env, observation, reward, terminated, truncated = cartpole.step(carry.env, action)
  at = step % settings.buffer_size
  b = carry.buffer
  buffer = Buffer(b.observation.at[at].set(carry.observation), b.action.at[at].set(action),
                  b.reward.at[at].set(reward), b.next_observation.at[at].set(observation),
                  b.terminated.at[at].set(terminated.astype(b.terminated.dtype)))
  done = terminated | truncated
  fresh_env, fresh_observation = cartpole.reset(reset_key)
  episode_return = carry.episode_return + reward
  carry = carry._replace(
      buffer=buffer, key=key,
      env=jax.tree.map(lambda new, old: jnp.where(done, new, old), fresh_env, env),
      observation=jnp.where(done, fresh_observation, observation),
      episode_return=jnp.where(done, 0.0, episode_return))
  return carry, jnp.where(done, episode_return, jnp.nan)  # each finished episode's return


def _learn(settings: Settings, carry: Carry, step) -> tuple[Carry, jax.Array]:
  """One optimizer step on a batch from the buffer (kept only after learning_starts steps), and
  the target copy when ``step`` is a multiple of target_every."""
  key, batch_key = jax.random.split(carry.key)
  filled = jnp.minimum(step, settings.buffer_size)
  index = jax.random.randint(batch_key, (settings.batch_size,), 0, jnp.maximum(filled, 1))
  batch = jax.tree.map(lambda a: a[index], carry.buffer)
  loss, grads = jax.value_and_grad(td_loss, argnums=1)(settings, carry.params, carry.target,
                                                      batch)
  updates, opt_state = optimizer(settings).update(grads, carry.opt_state, carry.params)
  learning = step > settings.learning_starts  # ``step`` environment steps done
  params = jax.tree.map(lambda new, old: jnp.where(learning, new, old),
                        optax.apply_updates(carry.params, updates), carry.params)
  opt_state = jax.tree.map(lambda new, old: jnp.where(learning, new, old), opt_state,
                           carry.opt_state)
  copy = step % settings.target_every == 0
  target = jax.tree.map(lambda p, t: jnp.where(copy, p, t), params, carry.target)
  return carry._replace(params=params, opt_state=opt_state, target=target, key=key), loss


def advance(settings: Settings, carry: Carry, starts) -> tuple[Carry, tuple[jax.Array, jax.Array]]:
  """The carry after the blocks beginning at ``starts`` (``train_every`` environment steps,
  then an update), and (each step's finished-episode return or NaN, each update's loss).
  Every random number comes from the carry's key, so any cut between blocks gives the same
  run."""

  def block(carry, first):
    carry, returns = jax.lax.scan(lambda c, s: _act(settings, c, s), carry,
                                  first + jnp.arange(settings.train_every))
    carry, loss = _learn(settings, carry, first + settings.train_every)
    return carry, (returns, loss)

  carry, (returns, losses) = jax.lax.scan(block, carry, starts)
  return carry, (returns.reshape(-1), losses)


def block_starts(settings: Settings) -> np.ndarray:
  """The first step of each block of the run."""
  return np.arange(settings.num_steps // settings.train_every, dtype=np.int32) * (
      settings.train_every)


def train(settings: Settings, key) -> tuple[Carry, jax.Array, jax.Array]:
  """(final carry, each step's finished-episode return or NaN, each update's loss)."""
  carry, (returns, losses) = advance(settings, init(settings, key), block_starts(settings))
  return carry, returns, losses


def evaluate(settings: Settings, params, key, episodes: int = 100) -> jax.Array:
  """The greedy policy's return in each of ``episodes`` episodes (at most 500 each)."""

  def episode(key):
    env, observation = cartpole.reset(key)

    def step(carry, _):
      env, observation, total, alive = carry
      action = jnp.argmax(network(settings).apply(params, observation[None])[0])
      env, observation, reward, terminated, truncated = cartpole.step(env, action)
      total = total + jnp.where(alive, reward, 0.0)
      return (env, observation, total, alive & ~(terminated | truncated)), None

    (_, _, total, _), _ = jax.lax.scan(step, (env, observation, jnp.zeros(()), jnp.bool_(True)),
                                       None, length=cartpole.TIME_LIMIT)
    return total

  return jax.vmap(episode)(jax.random.split(key, episodes))
