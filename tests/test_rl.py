"""Reinforcement learning: FrozenLake against gymnasium's, value iteration against NumPy,
Q-learning's update by hand, and Q-learning reaching the optimum."""

import json
import os

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.rl import frozen_lake
from models.rl import tabular


@pytest.mark.parametrize("size", ["4x4", "8x8"])
@pytest.mark.parametrize("slippery", [True, False])
def test_the_transition_table_is_gymnasiums_entry_by_entry(size, slippery):
  env = gymnasium.make("FrozenLake-v1", map_name=size, is_slippery=slippery).unwrapped
  table = frozen_lake.make(size, slippery).table
  for s, actions in env.P.items():
    for a, moves in actions.items():
      for k, (p, s_next, r, done) in enumerate(moves):
        got = (table.probability[s, a, k], table.next_state[s, a, k], table.reward[s, a, k],
               table.terminated[s, a, k])
        assert got == pytest.approx((p, s_next, r, done), rel=1e-6), (s, a, k)
      assert table.probability[s, a, len(moves):].sum() == 0


@pytest.mark.parametrize("size", ["4x4", "8x8"])
def test_episodes_step_as_gymnasiums_on_the_same_moves(size):
  """The lake without slipping is deterministic: the same actions give the same states,
  rewards, ends and truncations as gymnasium's (its TimeLimit included)."""
  env = gymnasium.make("FrozenLake-v1", map_name=size, is_slippery=False)
  lake = frozen_lake.make(size, slippery=False)
  rng = np.random.default_rng(0)
  step = jax.jit(lambda state, a, key: frozen_lake.step(lake, state, a, key))
  for episode in range(20):
    observation, _ = env.reset(seed=episode)
    state, mine = frozen_lake.reset(lake)
    assert int(mine) == observation
    for _ in range(lake.time_limit + 1):
      a = int(rng.integers(4)) if episode % 2 else int(rng.choice([1, 2]))
      observation, reward, terminated, truncated, _ = env.step(a)
      state, mine, my_reward, my_terminated, my_truncated = step(state, a, jax.random.key(0))
      assert (int(mine), float(my_reward), bool(my_terminated), bool(my_truncated)) == (
          observation, reward, terminated, truncated)
      if terminated or truncated:
        break


def test_slipping_draws_each_of_the_three_moves_a_third_of_the_time():
  lake = frozen_lake.make("4x4")
  state = frozen_lake.State(jnp.int32(5 + 1), jnp.int32(0))  # row 1, col 2: F with 4 neighbours
  keys = jax.random.split(jax.random.key(0), 30_000)
  landed = jax.vmap(lambda k: frozen_lake.step(lake, state, 2, k)[1])(keys)  # right
  counts = np.bincount(np.asarray(landed), minlength=16)
  # right -> 7 (H), slipping up -> 2, down -> 10: each 1/3 (3σ of a binomial: 0.008).
  np.testing.assert_allclose(counts[[2, 7, 10]] / 30_000, 1 / 3, atol=0.01)
  assert counts.sum() == counts[[2, 7, 10]].sum()


def _numpy_value_iteration(env, gamma, tol=1e-12):
  n_s, n_a = env.observation_space.n, env.action_space.n
  v = np.zeros(n_s)
  while True:
    q = np.array([[sum(p * (r + gamma * (not done) * v[s2]) for p, s2, r, done in env.P[s][a])
                   for a in range(n_a)] for s in range(n_s)])
    if np.max(np.abs(q.max(1) - v)) <= tol:
      return q
    v = q.max(1)


@pytest.mark.parametrize("size", ["4x4", "8x8"])
def test_value_iteration_equals_a_float64_numpy_solution(size):
  env = gymnasium.make("FrozenLake-v1", map_name=size).unwrapped
  want = _numpy_value_iteration(env, 0.99)
  with jax.enable_x64(True):
    got, sweeps = jax.jit(lambda: tabular.value_iteration(frozen_lake.make(size).table, 0.99,
                                                           tol=1e-12))()
  np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
  assert int(sweeps) > 10


def test_one_q_learning_update_by_hand():
  q = jnp.zeros((3, 2)).at[2].set(jnp.array([0.5, 2.0])).at[0, 1].set(1.0)
  # Q(0, 1) ← 1 + 0.1 (0.5 + 0.9 · max(0.5, 2) − 1) = 1 + 0.1 · 1.3 = 1.13
  new = tabular.q_update(q, 0, 1, 0.5, 2, 0.0, 0.1, 0.9)
  assert float(new[0, 1]) == pytest.approx(1.13, rel=1e-6)
  assert float(tabular.q_update(q, 0, 1, 0.5, 2, 1.0, 0.1, 0.9)[0, 1]) == pytest.approx(0.95)
  np.testing.assert_array_equal(np.asarray(new).ravel()[[0, 2, 3, 4, 5]],
                                np.asarray(q).ravel()[[0, 2, 3, 4, 5]])


def test_exact_success_of_a_policy_matches_sampled_episodes_of_gymnasium():
  lake = frozen_lake.make("4x4")
  q, _ = tabular.value_iteration(lake.table, 0.99)
  policy = jnp.argmax(q, axis=1)
  exact = float(tabular.success(lake, policy))
  policy = np.asarray(policy)  # read per step: a host array
  env = gymnasium.make("FrozenLake-v1", map_name="4x4")
  wins = 0
  for episode in range(3000):
    s, _ = env.reset(seed=episode)
    while True:
      s, r, terminated, truncated, _ = env.step(int(policy[s]))
      if terminated or truncated:
        wins += r > 0
        break
  assert 0.70 < exact < 0.78
  assert abs(wins / 3000 - exact) < 0.025  # 3σ of 3 000 episodes: 0.024


def test_q_learning_seeds_vmapped_equal_each_alone():
  lake = frozen_lake.make("4x4")
  settings = tabular.Settings(num_steps=2_000)
  keys = jax.random.split(jax.random.key(0), 3)
  run = jax.jit(lambda key: tabular.q_learning(settings, lake, key)[0])
  together = jax.jit(jax.vmap(lambda key: tabular.q_learning(settings, lake, key)[0]))(keys)
  for i in range(3):
    np.testing.assert_allclose(together[i], run(keys[i]), rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_the_rl_command_trains_seeds_together_and_refuses_bad_settings(run_module, tmp_path):
  result = run_module("experiments.rl", "--num_steps=100000", "--seeds=0,1,2,3",
                      f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr[-2000:]
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["seeds"] == [0, 1, 2, 3] and len(summary["greedy_success"]) == 4
  assert summary["optimal_success"] == pytest.approx(0.7402, abs=1e-3)
  # Measured at 100 000 steps: 0.675 (seeds 0.511 to 0.730); 500 000 reach 0.740 each.
  assert 0.55 < summary["greedy_success_mean"] <= summary["optimal_success"] + 1e-6
  assert summary["env_steps_per_second"] > 0 and min(summary["episodes"]) > 1000
  assert result.stdout.strip().splitlines()[-1] == (
      f"results in {tmp_path}: summary.json, metrics.jsonl; figures: policy.png, success.png")
  assert not (tmp_path / "checkpoint.npz").exists()  # a finished run's is removed
  for flag, message in [("--algorithm=ppo", "unknown algorithm 'ppo'"),
                        ("--gamma=1.5", "--gamma must be a finite number in [0, 1], got 1.5"),
                        ("--seeds=1,1", "--seeds must be distinct integers"),
                        ("--num_steps=0", "--num_steps must be an integer")]:
    refused = run_module("experiments.rl", flag, f"--workdir={tmp_path / 'refused'}")
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 1 and len(lines) == 1 and message in lines[0], flag
    assert not (tmp_path / "refused").exists()


def test_cartpole_steps_as_gymnasiums_from_the_same_state():
  """From each of gymnasium's states (float64) cast to float32, one step gives its next state
  to 1e-6 (float32 rounding of terms of order 1), and the same ends; episodes of random
  actions run to their end (termination or the 500-step truncation)."""
  from models.rl import cartpole
  env = gymnasium.make("CartPole-v1")
  step = jax.jit(cartpole.step)
  rng = np.random.default_rng(0)
  steps = 0
  for episode in range(8):
    observation, _ = env.reset(seed=episode)
    balancing = episode % 2 == 0  # push against the pole's lean: long episodes
    time = 0
    while True:
      physics = np.array(env.unwrapped.state, np.float64)
      a = int(physics[2] + 0.5 * physics[3] > 0) if balancing else int(rng.integers(2))
      observation, reward, terminated, truncated, _ = env.step(a)
      state = cartpole.State(jnp.asarray(physics, jnp.float32), jnp.int32(time))
      state, mine, my_reward, my_terminated, my_truncated = step(state, a)
      time += 1
      np.testing.assert_allclose(mine, observation, atol=1e-6, rtol=1e-6)
      assert (float(my_reward), bool(my_terminated), bool(my_truncated)) == (
          reward, terminated, truncated)
      steps += 1
      if terminated or truncated:
        break
  assert steps > 1000  # the balancing episodes reach the time limit


def test_cartpole_resets_within_its_bounds():
  from models.rl import cartpole
  states = jax.vmap(lambda k: cartpole.reset(k)[1])(jax.random.split(jax.random.key(0), 1000))
  assert float(jnp.abs(states).max()) <= 0.05 and float(jnp.abs(states).max()) > 0.049


@pytest.mark.parametrize("double", [False, True])
@pytest.mark.parametrize("huber", [False, True])
def test_the_dqn_td_loss_equals_a_numpy_computation(double, huber):
  from models.rl import dqn
  settings = dqn.Settings(double=double, huber=huber, gamma=0.9)
  net = dqn.network(settings)
  params = net.init(jax.random.key(0), jnp.zeros((1, 4)))
  target = net.init(jax.random.key(1), jnp.zeros((1, 4)))
  rng = np.random.default_rng(0)
  batch = dqn.Buffer(jnp.asarray(rng.normal(size=(16, 4)), jnp.float32),
                     jnp.asarray(rng.integers(0, 2, 16), jnp.int32), jnp.ones(16),
                     jnp.asarray(rng.normal(size=(16, 4)), jnp.float32),
                     jnp.asarray(rng.integers(0, 2, 16), jnp.float32))
  q = np.asarray(net.apply(params, batch.observation), np.float64)
  q_next_target = np.asarray(net.apply(target, batch.next_observation), np.float64)
  q_next_online = np.asarray(net.apply(params, batch.next_observation), np.float64)
  chosen = q_next_online.argmax(1) if double else q_next_target.argmax(1)
  y = 1.0 + 0.9 * (1 - np.asarray(batch.terminated)) * q_next_target[np.arange(16), chosen]
  d = q[np.arange(16), np.asarray(batch.action)] - y
  want = np.mean(np.where(np.abs(d) <= 1, 0.5 * d * d, np.abs(d) - 0.5) if huber else d * d)
  got = float(dqn.td_loss(settings, params, target, batch))
  assert got == pytest.approx(want, rel=1e-5)


def test_dqn_seeds_vmapped_equal_each_alone():
  from models.rl import dqn
  settings = dqn.Settings(num_steps=600, buffer_size=200, learning_starts=100, batch_size=8,
                          target_every=50)
  keys = jax.random.split(jax.random.key(0), 2)
  together = jax.jit(jax.vmap(lambda k: dqn.train(settings, k)[0].params))(keys)
  for i in range(2):
    alone = jax.jit(lambda k: dqn.train(settings, k)[0].params)(keys[i])
    for a, b in zip(jax.tree.leaves(jax.tree.map(lambda x, i=i: x[i], together)),
                    jax.tree.leaves(alone)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_dqn_learns_nothing_before_learning_starts_and_copies_its_target_on_schedule():
  from models.rl import dqn
  settings = dqn.Settings(num_steps=100, buffer_size=100, learning_starts=100, target_every=50)
  carry, returns, losses = jax.jit(lambda k: dqn.train(settings, k))(jax.random.key(0))
  start = dqn.init(settings, jax.random.key(0))
  for a, b in zip(jax.tree.leaves(carry.params), jax.tree.leaves(start.params)):
    np.testing.assert_array_equal(a, b)
  assert losses.shape == (10,) and returns.shape == (100,)
  assert int(np.sum(~np.isnan(np.asarray(returns)))) >= 1  # random play ends episodes early


@pytest.mark.slow
def test_the_rl_command_trains_dqn_seeds_and_evaluates_them(run_module, tmp_path):
  result = run_module("experiments.rl", "--algorithm=dqn", "--env=cartpole", "--seeds=0,1",
                      "--num_steps=20000", "--buffer_size=2000", "--learning_starts=2000",
                      f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr[-2000:]
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert len(summary["eval_mean_return"]) == 2 and summary["settings"]["buffer_size"] == 2000
  # Measured: 217 (seeds 117 and 318) after 20 000 steps; an untrained network's greedy
  # policy lasts about 9 steps; 500 000 steps solve CartPole (docs/rl.md).
  assert summary["eval_mean_return_mean"] > 20
  assert (tmp_path / "returns.png").stat().st_size > 0
  refused = run_module("experiments.rl", "--algorithm=dqn", "--alpha=0.1",
                       f"--workdir={tmp_path / 'refused'}")
  assert refused.returncode == 1 and refused.stderr.strip() == (
      "error: --alpha is a setting of q_learning, not of dqn")


def _segmented_q_learning(workdir, settings, lake, keys, units, stop=lambda o, s: None):
  from experiments.acting import segments
  return segments.run(
      lambda learners, starts: jax.vmap(
          lambda learner: tabular.q_learning_chunks(settings, lake, learner, starts))(learners),
      jax.vmap(lambda key: tabular.q_learning_init(lake, key))(keys),
      tabular.chunk_starts(settings), tabular.CHUNK, settings.num_steps, units, str(workdir),
      {"num_steps": settings.num_steps, "alpha": settings.alpha},
      lambda outcomes: {"episodes": [int(np.sum(o > 0)) for o in outcomes]}, stop)


def test_a_run_stopped_between_segments_resumes_equal_to_one_never_stopped(tmp_path):
  """Segments of 2 chunks, the run stopped after the second segment (as a kill after its
  checkpoint), then started again on the same workdir: Q and every step's outcome equal
  the one-program run's, and metrics.jsonl has one row per segment."""
  from experiments.acting import segments
  lake = frozen_lake.make("4x4")
  settings = tabular.Settings(num_steps=5 * tabular.CHUNK + 100)
  keys = jnp.stack([jax.random.key(s) for s in (3, 4)])
  whole_q, whole_outcomes = jax.vmap(lambda k: tabular.q_learning(settings, lake, k))(keys)

  def killed(outputs, step):
    if step > 2 * 2 * tabular.CHUNK:
      raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    _segmented_q_learning(tmp_path, settings, lake, keys, 2, killed)
  assert os.path.exists(tmp_path / segments.CHECKPOINT)
  resumed = _segmented_q_learning(tmp_path, settings, lake, keys, 2)
  assert resumed.resumed_from == 4 and resumed.units_run == 2
  np.testing.assert_array_equal(resumed.carry.q, whole_q)
  np.testing.assert_array_equal(resumed.outputs[:, :settings.num_steps], whole_outcomes)
  rows = [json.loads(line) for line in (tmp_path / segments.METRICS).read_text().splitlines()]
  assert [r["step"] for r in rows] == [2 * 4096, 4 * 4096, settings.num_steps]
  assert sum(sum(r["episodes"]) for r in rows) == int(np.sum(resumed.outputs > 0))


def test_a_checkpoint_of_other_settings_or_damaged_is_refused_and_kept(tmp_path):
  from data.errors import UserError
  from experiments.acting import segments
  lake = frozen_lake.make("4x4")
  settings = tabular.Settings(num_steps=3 * tabular.CHUNK)
  keys = jnp.stack([jax.random.key(0)])
  with pytest.raises(KeyboardInterrupt):
    _segmented_q_learning(tmp_path, settings, lake, keys, 1,
                          lambda o, step: (_ for _ in ()).throw(KeyboardInterrupt))
  path = tmp_path / segments.CHECKPOINT
  assert not path.exists()  # stopped before its first save: nothing half-written
  stop_second = lambda o, step: step > tabular.CHUNK and (_ for _ in ()).throw(  # noqa: E731
      KeyboardInterrupt)
  with pytest.raises(KeyboardInterrupt):
    _segmented_q_learning(tmp_path, settings, lake, keys, 1, stop_second)
  saved = path.read_bytes()
  other = tabular.Settings(num_steps=3 * tabular.CHUNK, alpha=0.5)
  with pytest.raises(UserError, match=r"holds a run with other settings \(alpha\)"):
    _segmented_q_learning(tmp_path, other, lake, keys, 1)
  path.write_bytes(saved[:-10] + b"0123456789")
  with pytest.raises(UserError, match="is damaged .*SHA-256.*delete it to start over"):
    _segmented_q_learning(tmp_path, settings, lake, keys, 1)
  assert path.read_bytes()[:-10] == saved[:-10]  # kept as it was


def test_dqns_divergence_rule_stops_before_saving_the_segment(tmp_path):
  """A NaN loss in a segment: one line naming the seed and the step; the checkpoint before
  it stays."""
  from data.errors import UserError
  from experiments.acting import segments
  stop = segments.non_finite_stop("DQN", [7, 8], str(tmp_path), lambda outputs: outputs[1])
  losses = np.array([[0.1, 0.2], [0.3, np.nan]])
  stop((np.zeros((2, 20)), losses[:, :1]), 10)  # finite: goes on
  with pytest.raises(UserError, match="the loss of seed 8 is not finite by step 20"):
    stop((np.zeros((2, 20)), losses), 20)
  assert not (tmp_path / segments.CHECKPOINT).exists()
