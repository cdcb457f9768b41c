"""Single-layer rules: convergence facts, closed forms, per-node equivalence, errors."""

import json
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data import toy
from models import classic
from tests.helpers import ROOT


def _gate(name):
  split = toy.logic_gate(name)
  return jnp.asarray(split.images), jnp.asarray(split.labels, jnp.float32)


def test_mcculloch_pitts_threshold_equals_bias_form():
  x = jnp.asarray(np.random.default_rng(0).integers(0, 2, size=(64, 5)), jnp.float32)
  w = jnp.array([1.0, -2.0, 0.5, 1.5, 1.0])
  for threshold in (-1.0, 0.0, 0.75, 2.0):
    np.testing.assert_array_equal(
        classic.mcculloch_pitts(x, w, threshold), classic.mcculloch_pitts_bias_form(x, w, threshold)
    )
  # AND of two inputs: weights 1, 1 and threshold 1.5.
  np.testing.assert_array_equal(
      classic.mcculloch_pitts(jnp.asarray(toy.INPUTS), jnp.array([1.0, 1.0]), 1.5), [0, 0, 0, 1]
  )


@pytest.mark.parametrize("gate", ["and", "or"])
def test_perceptron_separates_a_separable_set_after_finitely_many_mistakes(gate):
  x, d = _gate(gate)
  result = classic.perceptron(x, d, 1.0, max_passes=100)
  assert bool(result.converged) and int(result.passes) < 100
  assert int(result.updates) > 0
  np.testing.assert_array_equal(classic.predict(result.weights, x, 0.0), d)


def test_perceptron_on_separable_blobs():
  split = toy.blobs(200, seed=0)
  result = classic.perceptron(jnp.asarray(split.images), jnp.asarray(split.labels, jnp.float32), 1.0)
  assert bool(result.converged)
  np.testing.assert_array_equal(classic.predict(result.weights, jnp.asarray(split.images), 0.0),
                                split.labels)


def test_perceptron_cannot_learn_xor():
  x, d = _gate("xor")
  result = classic.perceptron(x, d, 1.0, max_passes=1000)
  assert not bool(result.converged) and int(result.passes) == 1000
  assert int(jnp.sum(classic.predict(result.weights, x, 0.0) == d)) <= 3


def _regression_problem(seed=0, n=40, m=3, k=None):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, m)).astype(np.float32)
  shape = (n,) if k is None else (n, k)
  d = rng.uniform(size=shape).astype(np.float32)
  return jnp.asarray(x), jnp.asarray(d)


@pytest.mark.parametrize("k", [None, 3])
def test_least_squares_matches_numpy_lstsq(k):
  x, d = _regression_problem(k=k)
  expected, *_ = np.linalg.lstsq(np.c_[np.ones(40), np.asarray(x)].astype(np.float64),
                                 np.asarray(d, np.float64), rcond=None)
  # Both float64; the only difference left is the cast of the result to float32.
  np.testing.assert_allclose(classic.least_squares(x, d), expected, rtol=1e-6, atol=1e-7)


def test_least_squares_is_the_minimum_norm_solution_when_singular():
  """Repeated and all-zero columns: of all minimizers of E, the one of least norm.

  Checked without lstsq: w is orthogonal to the null space of [1, X] (so no
  minimizer is shorter) and its residual is orthogonal to the column space.
  """
  x, d = _regression_problem()
  x = jnp.concatenate([x, x[:, :1], jnp.zeros((40, 2))], axis=1)  # rank 4 of 6 columns
  w = np.asarray(classic.least_squares(x, d), np.float64)
  xb = np.c_[np.ones(40), np.asarray(x, np.float64)]
  null_space = np.array([[0, 1, 0, 0, -1, 0, 0], [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1]])
  np.testing.assert_allclose(null_space @ w, 0.0, atol=1e-7)  # float32 rounding of w ~ 1e-8
  np.testing.assert_allclose(xb.T @ (xb @ w - np.asarray(d)), 0.0, atol=1e-5)
  np.testing.assert_allclose(w[1], w[4], rtol=1e-6)  # the repeated column shares the weight


@pytest.mark.slow
def test_least_squares_on_mnist_is_numpy_lstsq(mnist_data_dir, archive_dir):
  """All 10 classes, one-hot targets, the first 10 000 training images: E and predictions as
  float64 lstsq's (rank 664 of 785: blank pixels, and fewer images than on all of MNIST)."""
  from data import datasets
  arrays = datasets.load_arrays("mnist", archive_dir, mnist_data_dir)
  n = 10_000
  x = datasets.to_model_input(arrays["train_images"][:n]).reshape(n, -1)
  d = np.eye(10, dtype=np.float32)[arrays["train_labels"][:n]]
  w = np.asarray(classic.least_squares(jnp.asarray(x), jnp.asarray(d)), np.float64)
  xb = np.c_[np.ones(n), np.asarray(x, np.float64)]
  expected, _, rank, _ = np.linalg.lstsq(xb, d.astype(np.float64), rcond=None)
  assert rank == 664
  error = lambda w: 0.5 * np.mean(np.sum((xb @ w - d) ** 2, axis=1))  # noqa: E731
  # E is flat at its minimum: float32 rounding of w (~1e-7 relative) moves it by far less.
  np.testing.assert_allclose(error(w), error(expected), rtol=1e-6)
  test_x = np.c_[np.ones(10_000), datasets.to_model_input(arrays["test_images"]).reshape(10_000, -1)]
  np.testing.assert_array_equal(np.argmax(test_x @ w, 1), np.argmax(test_x @ expected, 1))
  assert np.abs(xb.T @ (xb @ w - d)).max() < 1e-2  # the gradient: 12 with float32's cut-off


def test_sdm_converges_to_least_squares():
  x, d = _regression_problem()
  result = classic.steepest_descent(x, d, 0.2, tol=1e-7, max_passes=5000)
  assert bool(result.converged)
  # Stopping when steps fall below 1e-7 leaves ~1e-6 of distance on this problem.
  np.testing.assert_allclose(result.weights, classic.least_squares(x, d), atol=1e-5)


def test_lms_with_small_c_converges_to_least_squares():
  """Sequential LMS settles within O(c) of the least-squares weights (a limit cycle)."""
  x, d = _regression_problem()
  w_ls = classic.least_squares(x, d)
  errors = []
  for c in (0.02, 0.002):
    result = classic.lms(x, d, c, tol=1e-7, max_passes=5000)
    assert bool(result.converged)
    errors.append(float(jnp.max(jnp.abs(result.weights - w_ls))))
  # measured: 8.5e-3 at c = 0.02 and 6.9e-4 at c = 0.002, about linear in c.
  assert errors[1] < 2e-3
  assert errors[1] < errors[0] / 5


@pytest.mark.parametrize("rule", ["perceptron", "lms", "sdm"])
def test_multi_node_rule_equals_single_node_rule_per_output(rule):
  x, _ = _regression_problem(n=30)
  d = jnp.asarray(np.random.default_rng(1).integers(0, 2, size=(30, 3)), jnp.float32)
  fit = {
      "perceptron": lambda d: classic.perceptron(x, d, 0.5, max_passes=7).weights,
      "lms": lambda d: classic.lms(x, d, 0.01, tol=-1.0, max_passes=7).weights,
      "sdm": lambda d: classic.steepest_descent(x, d, 0.1, tol=-1.0, max_passes=7).weights,
  }[rule]
  together = fit(d)
  for j in range(3):
    np.testing.assert_allclose(together[:, j], fit(d[:, j]), rtol=1e-6, atol=1e-6)


def test_step_sizes_vmap_into_one_program():
  x, d = _regression_problem()
  cs = jnp.array([0.001, 0.01, 0.05])
  batched = jax.vmap(lambda c: classic.lms(x, d, c, tol=1e-6, max_passes=50))(cs)
  for i, c in enumerate(cs):
    alone = classic.lms(x, d, float(c), tol=1e-6, max_passes=50)
    np.testing.assert_allclose(batched.weights[i], alone.weights, rtol=1e-5, atol=1e-6)
    assert int(batched.passes[i]) == int(alone.passes)


def test_bad_input_is_refused():
  x, d = _regression_problem()
  with pytest.raises(ValueError, match="observations"):
    classic.lms(x, d[:10], 0.1)
  with pytest.raises(ValueError, match="c must be > 0"):
    classic.perceptron(x, d, 0.0)
  with pytest.raises(ValueError, match=r"\(N, M\)"):
    classic.least_squares(x[0], d)


@pytest.mark.slow
def test_experiment_on_xor_says_it_cannot_be_learned_and_writes_outputs(run_module, tmp_path):
  result = run_module("experiments.classic", "--algorithm=perceptron", "--dataset=xor", f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "xor is not linearly separable" in result.stdout
  assert "learned truth table" in result.stdout
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["converged"] is False and summary["train_accuracy"] < 1.0
  assert (tmp_path / "decision.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_experiment_vmaps_several_step_sizes(run_module, tmp_path):
  result = run_module("experiments.classic", "--algorithm=lms", "--dataset=blobs", "--c=0.01,0.1",
                        f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr[-2000:]
  runs = json.loads((tmp_path / "summary.json").read_text())["runs"]
  assert [r["c"] for r in runs] == [0.01, 0.1]
  assert all(r["test_accuracy"] > 0.95 for r in runs)


@pytest.mark.slow
@pytest.mark.parametrize("flag,message", [
    ("--algorithm=adaline", "unknown algorithm 'adaline'; choose one of perceptron, lms, sdm, "
                            "least_squares"),
    ("--dataset=nand", "unknown dataset 'nand'"),
    ("--c=-1", "c must be a finite number in (0, inf), got -1.0"),
    ("--c=inf", "c must be a finite number in (0, inf), got inf"),
    ("--tolerance=nan", "tolerance must be a finite number in [0, inf), got nan"),
    ("--max_passes=99999999999", "max_passes must be an integer in [1, 2147483647]"),
    ("--num_examples=0", "num_examples must be an integer in [2, 2147483647], got 0"),
])
def test_experiment_rejects_bad_flags_in_one_line(run_module, flag, message, tmp_path):
  result = run_module("experiments.classic", flag, f"--workdir={tmp_path}")
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and message in lines[0]


@pytest.mark.slow
def test_least_squares_reports_a_closed_form_without_step_size_or_passes(run_module, tmp_path):
  result = run_module("experiments.classic", "--algorithm=least_squares", "--dataset=and",
                      f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "| solution | train acc | test acc |" in result.stdout
  assert "| closed form | " in result.stdout and "None" not in result.stdout


@pytest.mark.slow
def test_the_lms_command_on_mnist_prints_only_its_own_lines_under_load(mnist_data_dir,
                                                                       tmp_path):
  """Two LMS runs on MNIST 0 vs 1 at once (a busy machine): neither console holds a line of
  XLA's (a compiled function that closed over the data made XLA fold it, with a
  ``slow_operation_alarm`` per second), nor any other line but the command's own."""
  commands = [[sys.executable, "-m", "experiments.classic", "--algorithm=lms",
               "--dataset=mnist", "--classes=0,1", f"--tfds_data_dir={mnist_data_dir}",
               f"--workdir={tmp_path / str(k)}"] for k in range(2)]
  runs = [subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True) for c in commands]
  outputs = [run.communicate(timeout=600) for run in runs]
  own = re.compile(r"^[IWE]\d{4} [\d:.]+ +\d+ (classic|datasets|archives)\.py:\d+\] ")
  for run, (stdout, stderr) in zip(runs, outputs):
    assert run.returncode == 0, stderr[-2000:]
    assert "results in" in stdout
    assert [line for line in stderr.splitlines() if line and not own.match(line)] == []
