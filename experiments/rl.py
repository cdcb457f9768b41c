r"""Reinforcement learning: Q-learning on FrozenLake, deep Q-learning on CartPole, seeds vmapped;
Monte Carlo tree search on tic-tac-toe and connect four, games vmapped.

    python -m experiments.rl --algorithm=q_learning --env=frozenlake
    python -m experiments.rl --env=frozenlake8x8
    python -m experiments.rl --algorithm=dqn --env=cartpole
    python -m experiments.rl --algorithm=mcts --env=tictactoe
    python -m experiments.rl --algorithm=mcts --env=connect_four

The agent, the environment and the updates run as one compiled ``lax.scan``
over environment steps, every seed of ``--seeds`` in one vmapped program
(``models/rl/``). Q-learning: value iteration on the lake's transition table
gives the optimal policy, and each greedy policy's success (the goal within
the time limit) is computed exactly; writes ``greedy_success`` per seed and
its ``_mean``, ``optimal_success``, policy.png and success.png. DQN: 100
greedy episodes per seed after training; writes ``eval_mean_return`` per
seed and its ``_mean`` and returns.png. Both write ``env_steps_per_second``
(all seeds' steps over the training's wall time, compiling excluded), and
``metrics.jsonl``, a row per segment of ``--checkpoint_steps`` steps (each
seed's episodes and success, or return and loss). After each segment a
checkpoint: a killed run started again on its workdir resumes there and ends
equal to the run never stopped (``experiments/acting/segments.py``); a DQN
whose loss is not finite stops with one line, its last good checkpoint kept. MCTS
(UCT, ``models/rl/mcts.py``) plays ``--games`` games per seed on each side
against a random player and, on tic-tac-toe, the perfect (minimax) player;
writes ``wins``, ``draws`` and ``losses`` (each a mapping from the opponent
to a count of games), ``outcomes`` (the same by side),
``simulations_per_second`` (the searching player's simulations over the
matches' wall time, compiling excluded), matches.png and first_move.png.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from absl import logging

from data import errors
from data import files
from experiments import cli
from experiments.acting import matches
from experiments.acting import segments
from models.rl import dqn
from models.rl import frozen_lake
from models.rl import in_a_row
from models.rl import mcts
from models.rl import tabular

ALGORITHMS = errors.Registry("algorithm", {
    "q_learning": "tabular Q-learning, ε-greedy (frozenlake, frozenlake8x8)",
    "dqn": "deep Q-learning with a replay buffer and a target network (cartpole)",
    "mcts": "Monte Carlo tree search, UCT (tictactoe, connect_four)"})
ENVIRONMENTS = errors.Registry("env", {
    "frozenlake": "q_learning", "frozenlake8x8": "q_learning", "cartpole": "dqn",
    "tictactoe": "mcts", "connect_four": "mcts"})
# Measured over seeds 0-15 (greedy success, mean; the optimum's 0.740 on 4x4, 0.863 on 8x8):
# 4x4, 500k steps: α = 0.1 0.685 (one seed stuck at 0), 0.05 0.740 (every seed);
# 8x8, 2M steps: α = 0.1 0.798, 0.02 0.851.
DEFAULT_STEPS = {"frozenlake": 500_000, "frozenlake8x8": 2_000_000, "cartpole": 500_000}
DEFAULT_ALPHA = {"frozenlake": 0.05, "frozenlake8x8": 0.02}
LEARNING = ("num_steps", "gamma", "epsilon_start", "epsilon_end", "exploration_fraction",
            "checkpoint_steps")
SETTINGS = {  # each algorithm's flags; --seeds and --workdir are everyone's
    "q_learning": ("alpha",) + LEARNING,
    "dqn": ("learning_rate", "buffer_size", "batch_size", "learning_starts", "train_every",
            "target_every", "double", "huber") + LEARNING,
    "mcts": ("simulations", "exploration", "games"),
}
EVALUATION_EPISODES = 100
MAX_TREE_BYTES = 4 * 2**30  # the node arrays of every game searching at once

flags.DEFINE_string("algorithm", "q_learning", " | ".join(ALGORITHMS))
flags.DEFINE_string("env", None, " | ".join(ENVIRONMENTS) + " (default: the algorithm's first)")
flags.DEFINE_list("seeds", None, "Seeds, trained together (vmapped) (default: 0-15; mcts 0).")
flags.DEFINE_integer("num_steps", None, "Environment steps per seed (default: frozenlake "
                     "500000, frozenlake8x8 2000000, cartpole 500000).")
flags.DEFINE_integer("checkpoint_steps", None, "Steps between checkpoints (default: a tenth of "
                     "the run); a killed run resumes from its workdir's last one.")
flags.DEFINE_float("gamma", 0.99, "Discount γ.")
flags.DEFINE_float("epsilon_start", 1.0, "ε at the first step.")
flags.DEFINE_float("epsilon_end", 0.05, "ε after the exploration steps.")
flags.DEFINE_float("exploration_fraction", 0.5, "Share of the steps over which ε falls linearly.")
flags.DEFINE_float("alpha", None, "q_learning: the step size α (default: frozenlake 0.05, "
                   "frozenlake8x8 0.02).")
flags.DEFINE_float("learning_rate", 2.5e-4, "dqn: Adam's α.")
flags.DEFINE_integer("buffer_size", 10_000, "dqn: transitions the replay buffer holds.")
flags.DEFINE_integer("batch_size", 128, "dqn: transitions per update.")
flags.DEFINE_integer("learning_starts", 10_000, "dqn: steps before the first update.")
flags.DEFINE_integer("train_every", 10, "dqn: environment steps per update.")
flags.DEFINE_integer("target_every", 500, "dqn: steps between target-network copies "
                     "(a multiple of --train_every).")
flags.DEFINE_boolean("double", False, "dqn: double DQN's target.")
flags.DEFINE_boolean("huber", False, "dqn: Huber's loss instead of the squared error.")
flags.DEFINE_integer("simulations", None, "mcts: simulations per move (default: tictactoe "
                     "4000, connect_four 400).")
flags.DEFINE_float("exploration", mcts.Settings.exploration, "mcts: UCB1's c.")
flags.DEFINE_integer("games", 100, "mcts: games per seed on each side against each opponent.")
flags.DEFINE_string("workdir", "/tmp/perceptrax/rl", "Output directory.")
FLAGS = flags.FLAGS


def _seeds(algorithm: str) -> list[int]:
  if FLAGS.seeds is None:
    return [0] if algorithm == "mcts" else list(range(16))
  try:
    seeds = [int(s) for s in FLAGS.seeds]
  except ValueError as e:
    raise errors.UserError(f"--seeds must be integers: {e}") from e
  if not seeds or len(set(seeds)) != len(seeds):
    raise errors.UserError(f"--seeds must be distinct integers, got {FLAGS.seeds}")
  for seed in seeds:
    errors.check_integer("--seeds", seed, 0, errors.MAX_SEED)
  return seeds


def _dqn_settings(num_steps: int) -> dqn.Settings:
  errors.check_number("--learning_rate", FLAGS.learning_rate, 0.0, 1.0, low_open=True)
  for name in ("buffer_size", "batch_size", "train_every", "target_every"):
    errors.check_integer(f"--{name}", FLAGS[name].value, 1, errors.MAX_COUNT)
  errors.check_integer("--learning_starts", FLAGS.learning_starts, 0, errors.MAX_COUNT)
  if FLAGS.buffer_size > num_steps:
    raise errors.UserError(f"--buffer_size={FLAGS.buffer_size} is larger than the run's "
                           f"{num_steps} steps: it would never fill")
  if FLAGS.learning_starts >= num_steps:
    raise errors.UserError(f"--learning_starts={FLAGS.learning_starts} leaves no update in "
                           f"the run's {num_steps} steps")
  if FLAGS.target_every % FLAGS.train_every:
    raise errors.UserError(f"--target_every={FLAGS.target_every} must be a multiple of "
                           f"--train_every={FLAGS.train_every}")
  return dqn.Settings(
      learning_rate=FLAGS.learning_rate, gamma=FLAGS.gamma, epsilon_start=FLAGS.epsilon_start,
      epsilon_end=FLAGS.epsilon_end, exploration_fraction=FLAGS.exploration_fraction,
      num_steps=num_steps, buffer_size=FLAGS.buffer_size, batch_size=FLAGS.batch_size,
      learning_starts=FLAGS.learning_starts, train_every=FLAGS.train_every,
      target_every=FLAGS.target_every, double=FLAGS.double, huber=FLAGS.huber)


def check_flags():
  """(algorithm, env, seeds, settings), each checked before anything runs."""
  algorithm = ALGORITHMS.check(FLAGS.algorithm)
  env = FLAGS.env or next(e for e, a in ENVIRONMENTS.items() if a == algorithm)
  if ENVIRONMENTS.get(env) != algorithm:
    raise errors.UserError(f"{algorithm} runs on {', '.join(e for e, a in ENVIRONMENTS.items() if a == algorithm)}, not {env}")
  for name in sorted({name for names in SETTINGS.values() for name in names}):
    if FLAGS[name].present and name not in SETTINGS[algorithm]:
      owners = " and ".join(a for a, names in SETTINGS.items() if name in names)
      raise errors.UserError(f"--{name} is a setting of {owners}, not of {algorithm}")
  seeds = _seeds(algorithm)
  if algorithm == "mcts":
    simulations = mcts.SIMULATIONS[env] if FLAGS.simulations is None else FLAGS.simulations
    errors.check_integer("--simulations", simulations, 1, errors.MAX_COUNT)
    errors.check_integer("--games", FLAGS.games, 1, errors.MAX_COUNT)
    errors.check_number("--exploration", FLAGS.exploration, 0.0)
    trees = FLAGS.games * len(seeds) * mcts.tree_bytes(in_a_row.GAMES[env], simulations)
    if trees > MAX_TREE_BYTES:
      raise errors.UserError(
          f"--games={FLAGS.games} x {len(seeds)} seeds searching at once with --simulations="
          f"{simulations} need {trees / 2**30:.1f} GiB of trees (at most "
          f"{MAX_TREE_BYTES // 2**30} GiB): fewer games, seeds or simulations")
    return algorithm, env, seeds, mcts.Settings(simulations, FLAGS.exploration)
  num_steps = DEFAULT_STEPS[env] if FLAGS.num_steps is None else FLAGS.num_steps
  errors.check_integer("--num_steps", num_steps, 1, errors.MAX_COUNT)
  if FLAGS.checkpoint_steps is not None:
    errors.check_integer("--checkpoint_steps", FLAGS.checkpoint_steps, 1, errors.MAX_COUNT)
  errors.check_number("--gamma", FLAGS.gamma, 0.0, 1.0, high_open=False)
  for name in ("epsilon_start", "epsilon_end", "exploration_fraction"):
    errors.check_number(f"--{name}", FLAGS[name].value, 0.0, 1.0, high_open=False)
  if algorithm == "dqn":
    return algorithm, env, seeds, _dqn_settings(num_steps)
  alpha = DEFAULT_ALPHA[env] if FLAGS.alpha is None else FLAGS.alpha
  errors.check_number("--alpha", alpha, 0.0, 1.0, low_open=True, high_open=False)
  return algorithm, env, seeds, tabular.Settings(
      alpha=alpha, gamma=FLAGS.gamma, epsilon_start=FLAGS.epsilon_start,
      epsilon_end=FLAGS.epsilon_end, exploration_fraction=FLAGS.exploration_fraction,
      num_steps=num_steps)


def _segments(algorithm, env, seeds, settings, advance, carry, starts, unit_steps, metrics,
              stop=lambda outputs, step: None) -> segments.Finished:
  """The run in segments of about ``--checkpoint_steps`` steps, a checkpoint after each."""
  steps = settings.num_steps // 10 if FLAGS.checkpoint_steps is None else FLAGS.checkpoint_steps
  units = max(1, -(-steps // unit_steps))
  run_settings = {"algorithm": algorithm, "env": env, "seeds": seeds, **vars(settings)}
  return segments.run(advance, carry, starts, unit_steps, settings.num_steps, units,
                      FLAGS.workdir, run_settings, metrics, stop)


def _success_rates(outcomes) -> dict:
  """metrics.jsonl's row of a Q-learning segment: each seed's episodes and their success."""
  ended = [o[o > 0] for o in outcomes]
  rates = [float(np.mean(e == 2)) if len(e) else None for e in ended]
  return {"episodes": [len(e) for e in ended], "success_rate": rates}


def _q_learning(env, seeds, settings, keys):
  from experiments.acting import figures  # matplotlib: not before a flag is refused
  lake = frozen_lake.make(frozen_lake.ENVIRONMENTS[env])
  optimal_q, sweeps = jax.jit(lambda: tabular.value_iteration(lake.table, settings.gamma))()
  optimum = float(tabular.success(lake, jnp.argmax(optimal_q, axis=1)))
  run = _segments(
      "q_learning", env, seeds, settings,
      lambda learners, starts: jax.vmap(
          lambda learner: tabular.q_learning_chunks(settings, lake, learner, starts))(learners),
      jax.vmap(lambda key: tabular.q_learning_init(lake, key))(keys),
      tabular.chunk_starts(settings), tabular.CHUNK, _success_rates)
  q, outcomes = run.carry.q, run.outputs[:, :settings.num_steps]
  greedy = [float(v) for v in jax.vmap(lambda q: tabular.success(lake, jnp.argmax(q, 1)))(q)]
  successes = [tabular.episode_successes(o) for o in outcomes]
  print(f"greedy policy's success {np.mean(greedy):.3f} (seeds {min(greedy):.3f} to "
        f"{max(greedy):.3f}); the optimal policy's {optimum:.3f}")
  drawn = [figures.policy(lake, [(f"Q-learning, seed {seeds[0]}", q[0]),
                                 ("value iteration (optimal)", optimal_q)],
                          os.path.join(FLAGS.workdir, "policy.png")),
           figures.success_over_episodes(successes, optimum,
                                         os.path.join(FLAGS.workdir, "success.png"))]
  return {"greedy_success": greedy, "greedy_success_mean": float(np.mean(greedy)),
          "optimal_success": optimum, "value_iteration_sweeps": int(sweeps),
          "episodes": [len(s) for s in successes]}, run, drawn


def _returns_and_losses(outputs) -> dict:
  """metrics.jsonl's row of a DQN segment: each seed's finished episodes, mean return, loss."""
  returns, losses = outputs
  ended = [r[~np.isnan(r)] for r in returns]
  return {"episodes": [len(r) for r in ended],
          "mean_return": [float(r.mean()) if len(r) else None for r in ended],
          "loss": [float(np.mean(loss)) for loss in losses]}


def _dqn(env, seeds, settings, keys):
  from experiments.acting import figures  # matplotlib: not before a flag is refused
  run = _segments(
      "dqn", env, seeds, settings,
      lambda carry, starts: jax.vmap(lambda c: dqn.advance(settings, c, starts))(carry),
      jax.vmap(lambda key: dqn.init(settings, key))(keys), dqn.block_starts(settings),
      settings.train_every, _returns_and_losses,
      segments.non_finite_stop("DQN", seeds, FLAGS.workdir, lambda outputs: outputs[1]))
  returns, _ = run.outputs
  evaluation = jax.jit(jax.vmap(lambda params, key: dqn.evaluate(
      settings, params, jax.random.fold_in(key, 1), EVALUATION_EPISODES)))(run.carry.params, keys)
  means = [float(m) for m in evaluation.mean(axis=1)]
  print(f"greedy return over {EVALUATION_EPISODES} episodes {np.mean(means):.1f} (seeds "
        f"{min(means):.1f} to {max(means):.1f}); {sum(m >= 475 for m in means)} of "
        f"{len(means)} seeds at 475 or more (CartPole-v1 solved)")
  drawn = [figures.returns_over_steps(returns, os.path.join(FLAGS.workdir, "returns.png"))]
  return {"eval_mean_return": means, "eval_mean_return_mean": float(np.mean(means)),
          "episodes": [int(np.sum(~np.isnan(r))) for r in returns]}, run, drawn


def _learn(algorithm, env, seeds, settings, keys):
  """Q-learning or DQN, then the common summary of a training run."""
  run = _q_learning if algorithm == "q_learning" else _dqn
  results, timed, drawn = run(env, seeds, settings, keys)
  unit_steps = tabular.CHUNK if algorithm == "q_learning" else settings.train_every
  steps = min(timed.units_run * unit_steps, settings.num_steps)  # by this process
  speed = len(seeds) * steps / timed.seconds if steps else None
  print(f"{algorithm} on {env}: {len(seeds)} seeds x {steps} steps in {timed.seconds:.2f} s "
        f"({speed or 0:,.0f} steps/s, compile {timed.compile_seconds:.2f} s)")
  return {**results, "train_seconds": timed.seconds, "compile_seconds": timed.compile_seconds,
          "env_steps_per_second": speed, "resumed_from_step": timed.resumed_from * unit_steps,
          }, drawn


def main(argv):
  del argv
  algorithm, env, seeds, settings = check_flags()
  keys = jnp.stack([jax.random.key(s) for s in seeds])
  files.check_writable(FLAGS.workdir)
  with files.workdir_lock(FLAGS.workdir):
    _run(algorithm, env, seeds, settings, keys)


def _run(algorithm, env, seeds, settings, keys):
  if algorithm == "mcts":
    logging.info("%d games per seed and side, %d simulations a move", FLAGS.games,
                 settings.simulations)
    results, drawn = matches.play(env, seeds, settings, keys, FLAGS.games, FLAGS.workdir)
  else:
    logging.info("training %d seeds for %d steps each", len(seeds), settings.num_steps)
    results, drawn = _learn(algorithm, env, seeds, settings, keys)
  summary = {"algorithm": algorithm, "env": env, "seeds": seeds, "settings": vars(settings),
             **results}
  files.write_json(os.path.join(FLAGS.workdir, "summary.json"), summary)
  if algorithm != "mcts":
    segments.remove_checkpoint(FLAGS.workdir)
  print(cli.written(FLAGS.workdir, drawn, ("summary.json",) if algorithm == "mcts"
                    else ("summary.json", segments.METRICS)))


if __name__ == "__main__":
  cli.run(main)
