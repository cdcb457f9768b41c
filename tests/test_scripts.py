"""The worked backprop example, the activation table, the generated tables of docs/, the benchmark."""

import json
import os
import pathlib

import pytest

from data import files
from scripts import activation_table
from tests.helpers import ROOT


@pytest.mark.slow
def test_backprop_example_checks_itself_and_converges(run_module):
  result = run_module("experiments.backprop_example")
  assert result.returncode == 0, result.stderr[-2000:]
  out = result.stdout
  assert "max |hand - jax.grad| = 0.00e+00" in out
  # The first iteration's numbers, by hand: s_1(1) = 0.1 + 2*0.3 + (-1)*(-0.2) = 0.9.
  assert "s(k=1)                          +0.900000  +0.500000" in out
  assert "converged after" in out
  final_output = float(out.strip().splitlines()[-2].split()[1])
  assert final_output > 0.98


@pytest.mark.slow
def test_backprop_example_rejects_bad_weights_in_one_line(run_module):
  result = run_module("experiments.backprop_example", "--w2=1,2")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == ["error: --w2 needs 3 numbers, got 2"]


def test_activation_table_renders_every_function(tmp_path):
  path = str(tmp_path / "table.png")
  errors = activation_table.render(path)
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert set(errors) == set(activation_table.activations.ACTIVATIONS) - {"swish"}
  assert max(errors.values()) < 1e-5  # hand derivatives vs jax.grad, float32


def test_the_docs_tables_are_generated_from_the_code(run_module):
  """In a process of its own: the flag table is read from experiments.mnist's flags."""
  result = run_module("scripts.doc_tables", "--check")
  assert result.returncode == 0, result.stderr[-2000:] + " (run python -m scripts.doc_tables)"
  flags_page = pathlib.Path(ROOT, "docs", "flags.md").read_text(encoding="utf-8")
  assert "| `--weight_decay` | `0.0` | λ of decoupled weight decay" in flags_page
  assert "| `--workdir` | `/tmp/perceptrax/mnist` |" in flags_page
  assert "| `adam` | " in pathlib.Path(ROOT, "docs", "optimizers.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_table_check_fails_on_stale_docs_and_works_from_any_directory(run_module, tmp_path):
  for name, page in (("flags", "flags.md"), ("optimizer", "optimizers.md")):
    begin, end = files.generated_section(f"{name} table", "scripts.doc_tables")
    (tmp_path / page).write_text(f"intro\n{begin}\n| old |\n{end}\nrest\n")
  result = run_module("scripts.doc_tables", f"--docs={tmp_path}", "--check")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].endswith("run python -m scripts.doc_tables")
  assert run_module("scripts.doc_tables", f"--docs={tmp_path}").returncode == 0
  for page in ("flags.md", "optimizers.md"):
    text = (tmp_path / page).read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n") and "| old |" not in text
  assert "| `--seed` | `0` |" in (tmp_path / "flags.md").read_text()
  assert run_module("scripts.doc_tables", f"--docs={tmp_path}", "--check").returncode == 0
  elsewhere = run_module("scripts.doc_tables", "--check", cwd=str(tmp_path))
  assert elsewhere.returncode == 0, elsewhere.stderr[-2000:]


@pytest.mark.slow
def test_benchmark_times_the_training_loop(run_module, tmp_path):
  output = tmp_path / "bench.json"
  result = run_module("scripts.benchmark", "--models=mlp", "--hidden_sizes=64", "--num_epochs=1",
                      "--synthetic_data", "--validation_size=1000", "--train_size=2000", "--repeats=1",
                      "--matmul_size=256", f"--output={output}")
  assert result.returncode == 0, result.stderr[-2000:]
  (row,) = json.loads(output.read_text())["results"]
  assert row["model"] == "mlp" and row["optimizer"] == "adam" and row["schedule"] == "cosine"
  assert row["images_per_second"] > 0 and 0 < row["fraction_of_matmul_peak"]
  assert "| mlp | adam |" in result.stdout


@pytest.mark.slow
def test_benchmark_sweep_mode_compares_vmapped_and_sequential(run_module, tmp_path):
  output = tmp_path / "bench.json"
  result = run_module("scripts.benchmark", "--mode=sweep", "--ks=2", "--repeats=1",
                      "--synthetic_data", "--validation_size=1000", "--train_size=2000",
                      f"--output={output}")
  assert result.returncode == 0, result.stderr[-2000:]
  rows = json.loads(output.read_text())["results"]
  assert [r["hidden_sizes"] for r in rows] == [[], [64], [512, 512], [128]]  # the last an LSTM
  for r in rows:
    assert r["k"] == 2 and r["vmapped_images_per_second"] > 0
    assert r["speedup"] == pytest.approx(
        r["vmapped_images_per_second"] / r["sequential_images_per_second"])
  assert "| softmax 784-10 | 2 |" in result.stdout


ENTRYPOINTS = sorted(
    f"{folder}.{name[:-3]}" for folder in ("experiments", "scripts")
    for name in os.listdir(os.path.join(ROOT, folder))
    if name.endswith(".py") and "__main__" in open(os.path.join(ROOT, folder, name),
                                                    encoding="utf-8").read())


@pytest.mark.slow
@pytest.mark.parametrize("module", ENTRYPOINTS)
def test_help_exits_0_on_every_entrypoint(module, run_module):
  result = run_module(module, "--help")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "--" in result.stdout
