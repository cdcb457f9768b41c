"""The README's and docs' commands, as written: each one's entrypoint exists and accepts every
flag given, and every relative link and image of theirs leads to a file of the repository.

Every shell block's command is read (continuation lines joined); a bare
``python``, ``pip`` or ``tensorboard`` is an error (the README installs into
``.venv`` and never activates it), and for each ``.venv/bin/python -m MODULE``
(also inside ``scripts.launch`` and cluster commands) the module's
``--helpfull`` must list every flag the command passes.
"""

import functools
import glob
import os
import re
import subprocess
import sys
import tomllib

import pytest

from scripts import tour
from tests.helpers import ROOT

PAGES = [f"{ROOT}/README.md", *sorted(glob.glob(f"{ROOT}/docs/*.md"))]


def _text(page: str) -> str:
  with open(page, encoding="utf-8") as f:
    return f.read()


def _commands(page: str) -> list[str]:
  return tour.shell_commands(_text(page))


@functools.cache
def _flags(module: str) -> frozenset[str]:
  result = subprocess.run([sys.executable, "-m", module, "--helpfull"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, f"{module} --helpfull: {result.stderr[-1000:]}"
  names = set()
  for no, name in re.findall(r"^\s+--(\[no\])?(\w+):", result.stdout, re.M):
    names.add(name)
    if no:
      names.add(f"no{name}")
  return frozenset(names)


def _invocations(command: str) -> list[tuple[str, list[str]]]:
  """(module, flag names) of each ``.venv/bin/python -m MODULE ...`` in ``command``."""
  out = []
  for part in re.split(r"(?=\.venv/bin/python -m )", command)[1:]:
    words = part.split('"')[0].split()
    module, arguments = words[2], words[3:]
    if "--" in arguments:  # scripts.launch -- COMMAND: the command is checked on its own
      arguments = arguments[:arguments.index("--")]
    out.append((module, [a[2:].split("=")[0] for a in arguments if a.startswith("--")]))
  return out


COMMANDS = [command for page in PAGES for command in _commands(page)]


def test_the_pages_have_commands_and_none_runs_outside_the_venv():
  assert len(_commands(PAGES[0])) > 10 and len(COMMANDS) > 40
  bare = [c for c in COMMANDS if re.match(r"(python|pip|tensorboard)\b", c)]
  assert not bare, f"commands outside .venv/bin: {bare}"


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in COMMANDS if ".venv/bin/python -m " in c])
def test_each_command_names_an_entrypoint_and_flags_it_has(command):
  for module, names in _invocations(command):
    if not module.startswith(("experiments.", "scripts.")):  # pytest: its own flags
      continue
    known = _flags(module)
    unknown = [n for n in names if n not in known]
    assert not unknown, f"{module} has no flag {unknown} (in: {command})"


def test_each_extra_the_readme_installs_exists():
  with open(f"{ROOT}/pyproject.toml", "rb") as f:
    extras = set(tomllib.load(f)["project"]["optional-dependencies"])
  for command in COMMANDS:
    for extra in re.findall(r"pip install -e '\.\[(\w+)\]'", command):
      assert extra in extras, command


def test_no_two_training_commands_share_a_workdir():
  """Run in order, a second training command on the first's workdir (the flag's default when
  not given) would be refused as another run's: each names its own, across all the pages."""
  defaults = {f"experiments.{name}": f"/tmp/perceptrax/{name}"
              for name in ("mnist", "autoencoder", "gan")} | {
                  "scripts.sweep": "/tmp/perceptrax/sweep"}
  workdirs = []
  for command in COMMANDS:
    for part in re.split(r"(?=\.venv/bin/python -m )", command)[1:]:
      words = part.split('"')[0].split()
      if words[2] in defaults:
        given = [w.split("=", 1)[1] for w in words if w.startswith("--workdir=")]
        workdirs.append(given[0] if given else defaults[words[2]])
  repeated = sorted({w for w in workdirs if workdirs.count(w) > 1})
  assert len(workdirs) >= 10 and not repeated, repeated


@pytest.mark.parametrize("page", PAGES, ids=os.path.basename)
def test_every_relative_link_and_image_leads_to_a_file(page):
  links = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", _text(page))
  local = [link.split("#")[0] for link in links
           if not link.startswith(("http://", "https://", "#", "mailto:"))]
  missing = [link for link in local
             if not os.path.exists(os.path.join(os.path.dirname(page), link))]
  assert not missing, f"{os.path.relpath(page, ROOT)} links to missing files: {missing}"


def test_ci_runs_the_readmes_test_command_as_written():
  with open(f"{ROOT}/.ci/run", encoding="utf-8") as f:
    ci_command = f.read().strip().splitlines()[-1]
  assert ci_command in [c for c in _commands(PAGES[0]) if " -m pytest" in c]
