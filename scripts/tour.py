r"""The README's tour, run as written: each stop's wall time, and its figures against the README's.

    python -m scripts.tour --root=/tmp/perceptrax_tour [--stops=1,12] [--write_readme]
    python -m scripts.tour --root=/tmp/perceptrax_tour --recheck     # the figures only

Reads the README's "A tour in the course's order": each ``### N.`` stop's
shell commands (stop 5 describes the set-up's main job, so it runs that).
Runs them in order from the repository root into a fresh ``--root``: every
path under ``/tmp/perceptrax`` that a command names, and every flag default
under ``/tmp/perceptrax`` or ``docs/`` that it leaves out (read from the
module's ``--helpfull``), moves under the root, so the tour neither resumes
an earlier run nor rewrites the repository's docs. A server (``scripts.serve``)
runs until its health check answers, then is stopped. Each command's output
goes to ``ROOT/logs/``; ``ROOT/tour.json`` holds each stop's seconds and then
each claim of ``tour_claims.py`` (a figure the README states, set beside the one
the commands wrote). ``--write_readme`` writes the stops' times into the
README's line once every stop has run; ``--recheck`` runs nothing and checks
the claims against the tour already in the root. Exit 1 when a command fails
or a claim does not hold.
"""

import concurrent.futures
import dataclasses
import os
import platform
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request

from absl import flags

from data import files
from data.errors import UserError
from experiments import cli
from scripts import tour_claims

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
DEFAULT_ROOT = "/tmp/perceptrax"
MAIN_JOB_STOP = 5  # "The main job above trains the classic MNIST ConvNet"
SERVER = "scripts.serve"
TIMES = files.generated_section("tour times", "scripts.tour")

flags.DEFINE_string("root", "/tmp/perceptrax_tour", "A new or empty folder: the tour's outputs.")
flags.DEFINE_list("stops", [], "The stops to run (default: all), in the README's order.")
flags.DEFINE_bool("write_readme", False, "Write the measured times into the README's line of them.")
flags.DEFINE_bool("recheck", False, "Run nothing: check the README's figures against the tour "
                  "already in --root (its tour.json), as after rewording the README.")
FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class Stop:
  number: int
  title: str
  commands: tuple[str, ...]


def shell_commands(text: str) -> list[str]:
  """The commands of a Markdown page's bash blocks: continuation lines joined, comments cut."""
  blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", text, re.S)
  lines = [line.split(" # ")[0].strip() for block in blocks
           for line in block.replace("\\\n", " ").splitlines()]
  return [line for line in lines if line and not line.startswith("#")]


def python_part(command: str) -> str:
  """The ``.venv/bin/python -m ...`` part of a set-up command (what follows the install)."""
  return command[command.index(".venv/bin/python -m "):]


def stops(readme: str) -> list[Stop]:
  """The tour's stops, in order; stop ``MAIN_JOB_STOP`` runs the set-up's first command."""
  setup = readme.split("\n## Set-up", 1)[1].split("\n## ", 1)[0]
  tour = readme.split("\n## A tour in the course's order", 1)[1].split("\n## ", 1)[0]
  parts = re.split(r"^### (\d+)\. (.*)$", tour, flags=re.M)
  out = []
  for number, title, body in zip(parts[1::3], parts[2::3], parts[3::3]):
    commands = shell_commands(body)
    if int(number) == MAIN_JOB_STOP:
      commands = [python_part(shell_commands(setup)[0])]
    out.append(Stop(int(number), title.strip(), tuple(commands)))
  return out


def path_defaults(helpfull: str) -> dict[str, str]:
  """The flags of ``--helpfull`` output whose default is a path under /tmp/perceptrax or docs/."""
  out = {}
  for chunk in re.split(r"\n(?=\s+--(?:\[no\])?\w+:)", helpfull):
    name = re.match(r"\s+--(?:\[no\])?(\w+):", chunk)
    default = re.search(r"\(default: '([^']*)'\)", chunk)
    if name and default and default[1].startswith((DEFAULT_ROOT + "/", "docs/")):
      out[name[1]] = default[1]
  return out


def relocated(command: str, root: str, defaults: dict[str, dict[str, str]]) -> str:
  """``command`` writing under ``root``: its /tmp/perceptrax paths, and the path defaults
  (``defaults[module]``) of the flags it leaves out, moved there."""
  command = command.replace(DEFAULT_ROOT, root)
  for module in re.findall(r"\.venv/bin/python -m (\S+)", command):
    given = set(re.findall(r"--(\w+)=", command))
    moved = [f"--{name}={os.path.join(root, value.removeprefix(DEFAULT_ROOT + '/'))}"
             for name, value in defaults.get(module, {}).items() if name not in given]
    if module == SERVER and "feedback_log" not in given:  # its default is named, not given
      moved.append(f"--feedback_log={root}/serve/feedback.jsonl")
    command = command.replace(f"-m {module}", " ".join([f"-m {module}", *moved]), 1)
  return command


def _helpfull(module: str) -> str:
  result = subprocess.run([sys.executable, "-m", module, "--helpfull"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
  if result.returncode:
    raise UserError(f"{module} --helpfull failed: {result.stderr.strip()[-300:]}")
  return result.stdout


def _module_defaults(commands) -> dict[str, dict[str, str]]:
  """Each module's ``path_defaults``, its ``--helpfull`` read in processes side by side."""
  modules = sorted({m for c in commands for m in re.findall(r"\.venv/bin/python -m (\S+)", c)})
  with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
    return {m: path_defaults(text) for m, text in zip(modules, pool.map(_helpfull, modules))}


def _serve(command: str, log) -> None:
  """Starts the server, waits (5 minutes at most) for the line naming its address, checks its
  health, and stops it by SIGINT: it must then exit 0."""
  server = subprocess.Popen(f"exec {command}", shell=True, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # exec: the signal is Python's
  try:
    deadline, url = time.monotonic() + 300, None
    while url is None and server.poll() is None:
      if not select.select([server.stdout], [], [], max(deadline - time.monotonic(), 0))[0]:
        break  # silent past the deadline
      line = server.stdout.readline()
      log.write(line)
      url = re.search(r" at (http://\S+/) ", line)
    if url is None:
      raise UserError(f"the server did not start: {command} (its output: {log.name})")
    with urllib.request.urlopen(url[1] + "healthz", timeout=30) as response:
      if response.status != 200:
        raise UserError(f"{url[1]}healthz answered {response.status}")
  finally:
    if server.poll() is None:
      server.send_signal(signal.SIGINT)
    log.write(server.communicate(timeout=120)[0])
  if server.returncode:
    raise UserError(f"the server exited {server.returncode} when stopped (its output: {log.name})")


def run_command(command: str, log_path: str) -> float:
  """Runs ``command`` from the repository root (its output to ``log_path``); its seconds."""
  start = time.perf_counter()
  with open(log_path, "w", encoding="utf-8") as log:
    if f"-m {SERVER} " in command:
      _serve(command, log)
    elif subprocess.run(command, shell=True, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL).returncode:
      raise UserError(f"failed: {command} (its output: {log_path})")
  return time.perf_counter() - start


def times_line(record: dict) -> str:
  """The README's line of each stop's minutes, from tour.json's record."""
  each = " · ".join(f"{s['number']}: {s['seconds'] / 60:.1f}" for s in record["stops"])
  total = sum(s["seconds"] for s in record["stops"]) / 60
  return f"{each}; the whole tour {total:.0f}."


def _chosen(all_stops: list[Stop]) -> list[Stop]:
  numbers = [s.number for s in all_stops]
  wanted = [int(n) if n.isdigit() else -1 for n in FLAGS.stops] or numbers
  unknown = [n for n, w in zip(FLAGS.stops, wanted) if w not in numbers]
  if unknown:
    raise UserError(f"--stops: no stop {','.join(unknown)} (the tour has {numbers[0]} to "
                    f"{numbers[-1]})")
  return [s for s in all_stops if s.number in wanted]


def _run_stops(chosen: list[Stop], commands: dict[int, list[str]], root: str,
               record: dict) -> None:
  """Runs each chosen stop's (relocated) ``commands``, recording their seconds in tour.json."""
  for stop in chosen:
    entry = {"number": stop.number, "title": stop.title, "commands": [], "seconds": 0.0}
    record["stops"].append(entry)
    for k, command in enumerate(commands[stop.number], 1):
      log = os.path.join(root, "logs", f"{stop.number}_{k}.log")
      print(f"stop {stop.number} ({k}/{len(stop.commands)}): {command}\n  its output: {log}",
            flush=True)
      seconds = run_command(command, log)
      entry["commands"].append({"command": command, "seconds": seconds})
      entry["seconds"] += seconds
      files.write_json(os.path.join(root, "tour.json"), record)
      print(f"  {seconds:.0f} s", flush=True)


def _report(readme: str, record: dict, claims: list, stop_of: dict, root: str) -> None:
  """Measures the claims of the stops run, writes and prints them with the times; UserError
  when one does not hold."""
  ran = {s["number"] for s in record["stops"]}
  record["claims"] = [{"stop": stop_of[c], **tour_claims.measure(c, root)} for c in claims
                      if stop_of.get(c) in ran]
  files.write_json(os.path.join(root, "tour.json"), record)
  for c in record["claims"]:
    print(f"{'holds' if c['holds'] else 'OFF  '}  stop {c['stop']:>2}  stated {c['stated']:g}  "
          f"measured {c['measured']:.4g}  ({c['text']})")
  print(times_line(record))
  if FLAGS.write_readme:
    try:
      files.write_text(README, files.replace_section(readme, TIMES, times_line(record)))
    except ValueError as e:
      raise UserError(f"{README}: {e}") from None
  off = [c["text"] for c in record["claims"] if not c["holds"]]
  if off:
    raise UserError(f"{len(off)} of the README's figures differ from the tour's: {off}")
  print(cli.written(root, results=("tour.json",)))


def main(argv):
  del argv
  with open(README, encoding="utf-8") as f:
    readme = f.read()
  all_stops = stops(readme)
  claims = tour_claims.claims_in(readme)
  root = os.path.abspath(FLAGS.root)
  if FLAGS.recheck:
    record = files.read_json(os.path.join(root, "tour.json"))
    ran = [s["number"] for s in record["stops"]]
  else:
    if os.path.exists(root) and os.listdir(root):
      raise UserError(f"--root={root} is not empty: its runs would resume, not run")
    ran = [s.number for s in _chosen(all_stops)]
  if FLAGS.write_readme and sorted(ran) != [s.number for s in all_stops]:
    raise UserError("--write_readme needs a tour of every stop: leave --stops out")
  if FLAGS.recheck:  # the commands as they ran
    commands = {s["number"]: [c["command"] for c in s["commands"]] for s in record["stops"]}
  else:
    defaults = _module_defaults([c for s in all_stops for c in s.commands])
    commands = {s.number: [relocated(c, root, defaults) for c in s.commands] for s in all_stops}
  stop_of = tour_claims.writers(claims, commands, root)
  if not FLAGS.recheck:
    unwritten = [c.text for c in claims if c not in stop_of]
    if unwritten:
      raise UserError(f"no stop's command writes the figures of {unwritten}")
    os.makedirs(os.path.join(root, "logs"))
    record = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor(),
                          "date": time.strftime("%Y-%m-%d")}, "stops": [], "claims": []}
    _run_stops([s for s in all_stops if s.number in ran], commands, root, record)
  _report(readme, record, claims, stop_of, root)


if __name__ == "__main__":
  cli.run(main)
