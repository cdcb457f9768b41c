r"""Steps or simulations per second: one compiled program against a Python loop.

    python -m scripts.rl_benchmark --env=frozenlake --num_steps=200000
    python -m scripts.rl_benchmark --env=cartpole --num_steps=50000 --vmapped_seeds=8
    python -m scripts.rl_benchmark --env=tictactoe --vmapped_seeds=100

FrozenLake, Q-learning:
The same tabular Q-learning (ε-greedy, the same α, γ and ε schedule) run
three ways in one process: a NumPy loop around gymnasium's FrozenLake-v1
(what a course's notebook writes), the compiled ``lax.scan`` of
``models/rl/tabular.py`` for one seed, and for ``--vmapped_seeds`` seeds in
one vmapped program. CartPole, DQN: CleanRL's PyTorch loop around gymnasium
(``scripts/torch_dqn_reference.py``) against ``models/rl/dqn.py`` for one
seed and vmapped seeds, the same hyperparameters (CleanRL's; the buffer and
the first update at a fifth of the run when it is shorter than 50 000 steps).
Tic-tac-toe and connect four, tree search: UCT from the empty board in plain
Python (``scripts/python_uct_reference.py``) against ``models/rl/mcts.py``'s
for one search and ``--vmapped_seeds`` searches at once; then PUCT on a fixed
random prior and value, ``--vmapped_seeds`` searches, against mctx's
``muzero_policy`` on the same batch. Prints steps or simulations per second
(compiling excluded) and the ratios. Needs the ``bench`` extra (torch,
gymnasium, mctx).
"""

import time

import jax
import numpy as np
from absl import flags

from data import errors
from experiments import cli
from experiments import timing
from models.rl import dqn
from models.rl import frozen_lake
from models.rl import in_a_row
from models.rl import mcts
from models.rl import tabular

flags.DEFINE_enum("env", "frozenlake", [*frozen_lake.ENVIRONMENTS, "cartpole", *in_a_row.GAMES],
                  "The environment.")
flags.DEFINE_integer("num_steps", 200_000, "Environment steps of each run.")
flags.DEFINE_integer("simulations", None, "Simulations of each search (default: tictactoe 4000, "
                     "connect_four 400, as experiments.rl).")
flags.DEFINE_integer("vmapped_seeds", 16, "Seeds (or searches) of the vmapped program.")
FLAGS = flags.FLAGS


def gymnasium_loop(size: str, settings: tabular.Settings, seed: int = 0) -> float:
  """Steps per second of Q-learning in NumPy around gymnasium's environment."""
  import gymnasium
  env = gymnasium.make("FrozenLake-v1", map_name=size)
  rng = np.random.default_rng(seed)
  q = np.zeros((env.observation_space.n, env.action_space.n))
  s, _ = env.reset(seed=seed)
  span = max(settings.exploration_fraction * settings.num_steps, 1.0)
  start = time.perf_counter()
  for step in range(settings.num_steps):
    eps = settings.epsilon_start + min(step / span, 1.0) * (settings.epsilon_end
                                                           - settings.epsilon_start)
    if rng.random() < eps:
      a = int(rng.integers(4))
    else:
      a = int(rng.choice(np.flatnonzero(q[s] == q[s].max())))
    s_next, r, terminated, truncated, _ = env.step(a)
    q[s, a] += settings.alpha * (r + settings.gamma * (not terminated) * q[s_next].max() - q[s, a])
    s = env.reset()[0] if terminated or truncated else s_next
  return settings.num_steps / (time.perf_counter() - start)


def compiled(train, seeds: int, num_steps: int) -> float:
  """Steps per second, all seeds together, of ``train(key)`` vmapped (compiling excluded);
  ``num_steps`` the steps (or simulations) of each."""
  keys = jax.random.split(jax.random.key(0), seeds)
  return seeds * num_steps / timing.compile_and_run(jax.vmap(train), keys).seconds


def _mctx_search(game, evaluate, simulations: int, batch: int):
  """mctx.muzero_policy from the empty board, ``batch`` searches, the Dirichlet noise off."""
  try:
    import mctx
  except ImportError:
    raise errors.UserError("the PUCT comparison needs mctx: pip install -e '.[bench]'") from None
  import jax.numpy as jnp

  def recurrent_fn(params, key, action, states):
    del params, key
    child, reward = jax.vmap(lambda s, a: in_a_row.play(game, s, a))(states, action)
    logits, value = jax.vmap(evaluate)(child)
    return mctx.RecurrentFnOutput(reward=reward, discount=jnp.where(child.terminated, 0.0, -1.0),
                                  prior_logits=logits, value=value), child

  def search(key):
    states = jax.tree.map(lambda x: jnp.broadcast_to(x, (batch,) + x.shape), in_a_row.initial(game))
    logits, value = jax.vmap(evaluate)(states)
    root = mctx.RootFnOutput(prior_logits=logits, value=value, embedding=states)
    return mctx.muzero_policy(None, key, root, recurrent_fn, simulations,
                              dirichlet_fraction=0.0).action_weights
  return search


def tree_search(name: str, simulations: int, batch: int) -> None:
  """UCT: Python, compiled alone and vmapped; PUCT: compiled vmapped and mctx's (docstring)."""
  from scripts import python_uct_reference
  game = in_a_row.GAMES[name]
  settings = mcts.Settings(simulations)
  reference, _ = python_uct_reference.simulations_per_second(game, simulations,
                                                             settings.exploration)
  start = in_a_row.initial(game)

  def searches(evaluate, select):
    return lambda key: mcts.search(game, start, key, evaluate, select, simulations).child_visits[0]

  uct = searches(mcts.rollout_evaluation(game), mcts.ucb1(settings.exploration))
  one = compiled(uct, 1, simulations)
  many = compiled(uct, batch, simulations)
  evaluate = mcts.fixed_random_evaluation(game)
  ours = compiled(searches(evaluate, mcts.puct()), batch, simulations)
  theirs = batch * simulations / timing.compile_and_run(
      _mctx_search(game, evaluate, simulations, batch), jax.random.key(0)).seconds
  print(f"tree search on {name} from the empty board, {simulations} simulations per search "
        "(simulations per second):")
  print(f"  UCT, plain Python: {reference:,.0f}")
  print(f"  UCT compiled, one search: {one:,.0f} ({one / reference:.1f}x)")
  print(f"  UCT compiled, {batch} searches vmapped: {many:,.0f} ({many / reference:.1f}x)")
  print(f"  PUCT compiled, {batch} searches vmapped: {ours:,.0f}; mctx.muzero_policy, the same "
        f"batch: {theirs:,.0f} ({ours / theirs:.2f}x)")


def main(argv):
  del argv
  errors.check_integer("--num_steps", FLAGS.num_steps, 1000, errors.MAX_COUNT)
  errors.check_integer("--vmapped_seeds", FLAGS.vmapped_seeds, 1, 4096)
  if FLAGS.env in in_a_row.GAMES:
    simulations = (mcts.SIMULATIONS[FLAGS.env] if FLAGS.simulations is None
                   else FLAGS.simulations)
    errors.check_integer("--simulations", simulations, 1, errors.MAX_COUNT)
    return tree_search(FLAGS.env, simulations, FLAGS.vmapped_seeds)
  if FLAGS.env == "cartpole":
    from scripts import torch_dqn_reference
    warmup = min(10_000, FLAGS.num_steps // 5)
    settings = dqn.Settings(num_steps=FLAGS.num_steps, buffer_size=warmup,
                            learning_starts=warmup)
    reference = torch_dqn_reference.steps_per_second(settings)
    train = lambda key: dqn.train(settings, key)[0].params  # noqa: E731
    name = "DQN"
  else:
    size = frozen_lake.ENVIRONMENTS[FLAGS.env]
    lake = frozen_lake.make(size)
    settings = tabular.Settings(num_steps=FLAGS.num_steps)
    reference = gymnasium_loop(size, settings)
    train = lambda key: tabular.q_learning(settings, lake, key)[0]  # noqa: E731
    name = "Q-learning"
  one = compiled(train, 1, FLAGS.num_steps)
  many = compiled(train, FLAGS.vmapped_seeds, FLAGS.num_steps)
  loop = "PyTorch + gymnasium (CleanRL's loop)" if name == "DQN" else "NumPy loop around gymnasium"
  print(f"{name} on {FLAGS.env}, {FLAGS.num_steps} steps per run (steps per second):")
  print(f"  {loop}: {reference:,.0f}")
  print(f"  compiled, one seed: {one:,.0f} ({one / reference:.1f}x)")
  print(f"  compiled, {FLAGS.vmapped_seeds} seeds vmapped: {many:,.0f} ({many / reference:.1f}x)")


if __name__ == "__main__":
  cli.run(main)
