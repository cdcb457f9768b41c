"""The architecture as a test: the import layers of pyproject.toml (import-linter) and ruff.

``lint-imports`` checks the contracts: entrypoints above the training library above
``models/`` above ``data/``, the training library's rooms in layers (so no import circle
can form among them), serving apart. A circle introduced on purpose fails it.
"""

import ast
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def _tool(name: str) -> str:
  path = os.path.join(BIN, name)
  if not os.path.exists(path):
    pytest.fail(f"{name} is not installed beside {sys.executable}: pip install -e '.[test]'")
  return path


def _lint_imports(root: str) -> subprocess.CompletedProcess:
  return subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=root, capture_output=True,
                        text=True, timeout=300)


def test_the_import_contracts_hold():
  result = _lint_imports(ROOT)
  assert result.returncode == 0, result.stdout[-3000:]
  assert "0 broken" in result.stdout


def test_a_circle_introduced_on_purpose_breaks_a_contract(tmp_path):
  """The loop importing the library's top (train imports the loop): the contract fails."""
  copy = tmp_path / "project"
  shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
      ".venv", ".git", ".pytest_cache", "__pycache__", ".import_linter_cache", "docs", "tests"))
  programs = copy / "experiments" / "training" / "loop" / "programs.py"
  programs.write_text(programs.read_text() + "\nfrom experiments.training import train  # noqa\n")
  result = _lint_imports(str(copy))
  assert result.returncode != 0
  assert ("experiments.training.loop is not allowed to import experiments.training.train"
          in " ".join(result.stdout.split()))


def test_ruff_passes():
  result = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stdout[-3000:]


def _python_files():
  for folder in ("experiments", "models", "data", "scripts", "tests"):
    for directory, _, names in os.walk(os.path.join(ROOT, folder)):
      yield from (os.path.join(directory, n) for n in names if n.endswith(".py"))


def test_no_function_is_over_60_lines():
  long = []
  for path in _python_files():
    with open(path, encoding="utf-8") as f:
      tree = ast.parse(f.read())
    long += [f"{os.path.relpath(path, ROOT)}:{node.lineno} {node.name} "
             f"({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(tree)
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
             and node.end_lineno - node.lineno + 1 > 60]
  assert not long


def test_an_objective_is_at_most_eight_members():
  """What the loop asks of an objective: two values and six pure functions."""
  from experiments.training.objectives.objective import Objective
  members = [name for name in vars(Objective) if not name.startswith("_")]
  assert members == ["metrics", "pixel_scaling", "optimizer", "train_step", "outputs", "sums",
                     "divergence", "test_report"]


def test_no_import_circle_anywhere():
  """Every module of the project, rooms and their insides alike: the import graph has no
  cycle (strongly connected components of one module each)."""
  import grimp
  graph = grimp.build_graph("experiments", "models", "data", "scripts")
  index, low, stack, on_stack, circles = {}, {}, [], set(), []

  def visit(module):  # Tarjan's algorithm
    index[module] = low[module] = len(index)
    stack.append(module)
    on_stack.add(module)
    for imported in graph.find_modules_directly_imported_by(module):
      if imported not in index:
        visit(imported)
        low[module] = min(low[module], low[imported])
      elif imported in on_stack:
        low[module] = min(low[module], index[imported])
    if low[module] == index[module]:
      component = []
      while not component or component[-1] != module:
        component.append(stack.pop())
        on_stack.discard(component[-1])
      if len(component) > 1:
        circles.append(sorted(component))

  for module in sorted(graph.modules):
    if module not in index:
      visit(module)
  assert not circles
