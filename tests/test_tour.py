"""The tour's check (scripts/tour.py): the README's stops and figures as it reads them, the
commands moved under a fresh root, a claim's comparison, and one stop run for real."""

import json
import os
import re
import subprocess

import pytest

from data.errors import UserError
from scripts import tour
from scripts import tour_claims
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def readme() -> str:
  with open(tour.README, encoding="utf-8") as f:
    return f.read()


def test_the_tour_has_thirteen_stops_each_with_commands_and_stop_5_is_the_main_job(readme):
  stops = tour.stops(readme)
  assert [s.number for s in stops] == list(range(1, 14))
  assert all(s.commands for s in stops)
  main_job = stops[tour.MAIN_JOB_STOP - 1].commands
  assert main_job == (".venv/bin/python -m experiments.mnist --optimizer=adam "
                      "--archive_dir=../shared/data",)


def test_every_claim_is_in_the_readme_once_and_a_missing_one_is_refused(readme):
  assert len(tour_claims.claims_in(readme)) == len(tour_claims.CLAIMS) >= 30
  changed = readme.replace("LMS reaches 99.53%", "LMS reaches 99.54%")
  with pytest.raises(UserError, match="LMS reaches"):
    tour_claims.claims_in(changed)


def test_the_readme_holds_the_tours_times_for_every_stop(readme):
  begin, end = tour.TIMES
  line = readme.split(begin)[1].split(end)[0]
  assert re.fullmatch(r"\n(\d+: \d+\.\d)( · \d+: \d+\.\d)*; the whole tour \d+\.\n", line), line
  assert [int(n) for n in re.findall(r"(\d+): ", line)] == [s.number for s in tour.stops(readme)]


HELPFULL = """experiments.gan:
  --scorer_workdir: The classifier that scores samples: a workdir of experiments.mnist
    (default /tmp/perceptrax/mnist, the main job's).
  --workdir: Output directory.
    (default: '/tmp/perceptrax/gan')
  --output: The table.
    (default: 'docs/model_choice.md')
  --[no]plots: Draw figures.
    (default: 'true')
"""


def test_path_defaults_are_the_flags_whose_default_is_a_path_the_tour_moves():
  assert tour.path_defaults(HELPFULL) == {"workdir": "/tmp/perceptrax/gan",
                                          "output": "docs/model_choice.md"}


def test_a_command_is_moved_under_the_root_except_the_flags_it_gives():
  defaults = {"experiments.gan": {"workdir": "/tmp/perceptrax/gan", "output": "docs/t.md"}}
  command = ".venv/bin/python -m experiments.gan --output=/tmp/perceptrax/x --archive_dir=d"
  assert tour.relocated(command, "/r", defaults) == (
      ".venv/bin/python -m experiments.gan --workdir=/r/gan --output=/r/x --archive_dir=d")
  served = tour.relocated(".venv/bin/python -m scripts.serve --model=/tmp/perceptrax/e", "/r", {})
  assert "--feedback_log=/r/serve/feedback.jsonl" in served and "/tmp/perceptrax" not in served


def test_each_claim_is_written_by_the_first_stop_naming_its_folder():
  claims = [tour_claims.Claim("x {1}", "mnist/summary.json:a"),
            tour_claims.Claim("y {2}", "tour.json:stops.[number=5].commands.0.seconds")]
  commands = {5: ["python -m m --workdir=/r/mnist"], 13: ["python -m e --workdir=/r/mnist"]}
  assert tour_claims.writers(claims, commands, "/r") == {claims[0]: 5, claims[1]: 5}
  assert tour_claims.writers([tour_claims.Claim("z {3}", "gan/summary.json:a")], commands,
                             "/r") == {}


@pytest.mark.parametrize("claim, measured, holds", [
    (tour_claims.Claim("{99.34}%", "s.json:a", 100), 0.99345, True),    # rounds to 99.35: one unit
    (tour_claims.Claim("{99.34}%", "s.json:a", 100), 0.9936, False),    # two units off
    (tour_claims.Claim("{0.0036}", "s.json:a"), 0.00372, True),
    (tour_claims.Claim("{0.0036}", "s.json:a"), 0.0038, False),
    (tour_claims.Claim("{96.7}%", "s.json:a", 100, ">="), 0.969, True),
    (tour_claims.Claim("{96.7}%", "s.json:a", 100, ">="), 0.966, False),
    (tour_claims.Claim("{13}%", "s.json:a.max", 100, "<="), [0.1, 0.131], False),
    (tour_claims.Claim("{55 000}/s", "s.json:a", relative=0.3), 70_000, True),
    (tour_claims.Claim("{55 000}/s", "s.json:a", relative=0.3), 72_000, False),
])
def test_a_claim_holds_within_one_unit_of_its_last_digit_or_its_bound(tmp_path, claim,
                                                                      measured, holds):
  (tmp_path / "s.json").write_text(json.dumps({"a": measured}))
  assert tour_claims.measure(claim, str(tmp_path))["holds"] is holds


def test_a_claim_reads_a_row_of_a_list_and_adds_keys(tmp_path):
  rows = {"rows": [{"learner": "knn", "f": 1.0, "p": 0.5}, {"learner": "tree", "f": 9.0}]}
  (tmp_path / "t.json").write_text(json.dumps(rows))
  claim = tour_claims.Claim("{1.5} s", "t.json:rows.[learner=knn].f+rows.[learner=knn].p")
  result = tour_claims.measure(claim, str(tmp_path))
  assert result["measured"] == 1.5 and result["holds"]


@pytest.mark.slow
def test_a_stop_run_as_written_checks_its_figures_and_reruns_only_to_recheck(tmp_path):
  """Stop 12 (Q-learning on the 8x8 lake, about 15 s) through the tour's own command."""
  root = tmp_path / "tour"
  command = [f"{ROOT}/.venv/bin/python", "-m", "scripts.tour", "--stops=12", f"--root={root}"]
  result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
  record = json.loads((root / "tour.json").read_text())
  assert [s["number"] for s in record["stops"]] == [12]
  assert os.path.exists(root / "rl8x8" / "summary.json")
  claims = {c["text"]: c for c in record["claims"]}
  assert claims["success of {0.851}"]["holds"], claims
  assert claims["against {0.863} for the optimal"]["holds"], claims
  assert result.returncode == (0 if all(c["holds"] for c in claims.values()) else 1)
  again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert again.returncode == 1 and again.stderr.strip().splitlines() == [
      f"error: --root={root} is not empty: its runs would resume, not run"]
  recheck = subprocess.run([*command, "--recheck"], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
  assert recheck.returncode == result.returncode
  assert json.loads((root / "tour.json").read_text())["claims"] == record["claims"]
