"""DQN on CartPole in PyTorch and gymnasium, CleanRL's form, for ``scripts.rl_benchmark``.

CleanRL's ``dqn.py`` loop, step for step: one gymnasium CartPole-v1, ε-greedy
actions from a 4-120-84-2 ReLU network, a replay buffer (here NumPy arrays,
a ring), from step ``learning_starts`` on one Adam step on the squared TD
error of a batch every ``train_every`` steps, the target network copied every
``target_every`` steps. The same hyperparameters as ``models/rl/dqn.py``.
Needs the ``bench`` extra (torch, gymnasium).
"""

import random
import time

import numpy as np

from data.errors import UserError


def steps_per_second(settings, seed: int = 0) -> float:
  """Environment steps per second of ``settings.num_steps`` steps (a dqn.Settings)."""
  try:
    import gymnasium
    import torch
  except ImportError:
    raise UserError("the DQN reference needs torch and gymnasium: pip install -e '.[bench]'") \
        from None
  from torch import nn
  torch.manual_seed(seed)
  random.seed(seed)
  rng = np.random.default_rng(seed)

  def network():
    return nn.Sequential(nn.Linear(4, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 2))

  q_network, target = network(), network()
  target.load_state_dict(q_network.state_dict())
  optimizer = torch.optim.Adam(q_network.parameters(), lr=settings.learning_rate)
  size = settings.buffer_size
  observations, next_observations = np.zeros((size, 4), np.float32), np.zeros((size, 4), np.float32)
  actions, rewards, dones = np.zeros(size, np.int64), np.zeros(size, np.float32), np.zeros(
      size, np.float32)
  env = gymnasium.make("CartPole-v1")
  obs, _ = env.reset(seed=seed)
  span = settings.exploration_fraction * settings.num_steps
  start = time.perf_counter()
  for step in range(settings.num_steps):
    epsilon = settings.epsilon_start + min(step / span, 1.0) * (
        settings.epsilon_end - settings.epsilon_start)
    if random.random() < epsilon:
      action = env.action_space.sample()
    else:
      with torch.no_grad():
        action = int(q_network(torch.as_tensor(obs)).argmax())
    next_obs, reward, terminated, truncated, _ = env.step(action)
    at = step % size
    observations[at], next_observations[at] = obs, next_obs
    actions[at], rewards[at], dones[at] = action, reward, float(terminated)
    obs = env.reset()[0] if terminated or truncated else next_obs
    if step > settings.learning_starts and step % settings.train_every == 0:
      index = rng.integers(0, min(step, size), settings.batch_size)
      with torch.no_grad():
        target_max = target(torch.as_tensor(next_observations[index])).max(dim=1).values
        y = torch.as_tensor(rewards[index]) + settings.gamma * target_max * (
            1 - torch.as_tensor(dones[index]))
      taken = q_network(torch.as_tensor(observations[index])).gather(
          1, torch.as_tensor(actions[index])[:, None]).squeeze(1)
      loss = nn.functional.mse_loss(y, taken)
      optimizer.zero_grad()
      loss.backward()
      optimizer.step()
    if step % settings.target_every == 0:
      target.load_state_dict(q_network.state_dict())
  return settings.num_steps / (time.perf_counter() - start)
