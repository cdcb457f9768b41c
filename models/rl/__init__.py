"""Reinforcement learning as pure functions: environments, and the agents that learn in them.

An environment is ``reset(key) -> (state, observation)`` and
``step(state, action, key) -> (state, observation, reward, terminated, truncated)``,
traceable, so an agent, its environment and its updates compile into one
program and ``jax.vmap`` runs many seeds at once. Two-player board games
(``in_a_row``) add ``legal`` and ``play``, which the tree searches (``mcts``)
and the perfect player (``minimax``) read, and ``match`` plays them against
each other, many games at once.
"""
