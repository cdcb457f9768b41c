r"""Measure the prediction server: requests/s and latency at 1, 8 and 64 concurrent clients.

    python -m scripts.benchmark_serve --model=/tmp/perceptrax/export_mlp --model=/tmp/perceptrax/export_cnn

For each export, starts ``scripts.serve`` on a free port, measures the
export's offline throughput at the server's largest batch in this process
(the limit a server can approach), then runs N clients that each send one
28x28 image per request, back to back, over keep-alive connections, for
--seconds at each concurrency, as TF Serving's JSON body and as raw uint8
pixels (application/octet-stream). The clients are a minimal asyncio HTTP/1.1
loop, so the figures are the server's, not a client library's.

Beside each figure, with the same clients in the same run: the framework's
floor, a server of the same framework (Starlette on uvicorn with uvloop and
httptools) that parses the same body into the same checked uint8 array
(``bodies.instances_array`` / ``pixels_array``) and sends an answer of the
same size, with no model, no batching and no monitoring. The server's
requests/s as a fraction of the floor's say how much the project's own path
costs. Prints a Markdown table and writes it as JSON (--output_json).
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
from absl import flags

from data import errors
from data import files
from data.errors import UserError
from experiments import cli
from experiments.serving import artifact as artifact_lib

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("model", [], "An export folder (repeat for several).")
flags.DEFINE_list("clients", ["1", "8", "64"], "Concurrent clients to measure.")
flags.DEFINE_float("seconds", 5.0, "Seconds measured at each concurrency (after 1 s of warm-up).")
flags.DEFINE_integer("max_batch", 64, "The server's --max_batch.")
flags.DEFINE_string("output_json", None, "Where to write the results as JSON.")


def offline_throughput(model: artifact_lib.Artifact, batch: int, seconds: float = 3.0) -> float:
  """Images/s of the export's function on batches of ``batch`` zero images, compiled first."""
  images = np.zeros((batch, *model.input_shape), np.uint8)
  model.probabilities(images)
  count, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    model.probabilities(images)
    count += batch
  return count / (time.perf_counter() - start)


async def _client(host, port, request: bytes, stop_at: float, warm_until: float, latencies):
  reader, writer = await asyncio.open_connection(host, port)
  try:
    while (now := time.perf_counter()) < stop_at:
      writer.write(request)
      status = await reader.readline()
      length = 0
      while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
          length = int(line.split(b":")[1])
      await reader.readexactly(length)
      if not status.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"the server answered {status!r}")
      if now >= warm_until:
        latencies.append(time.perf_counter() - now)
  finally:
    writer.close()


BODIES = {"json": "application/json", "binary": "application/octet-stream"}


def _body(image: np.ndarray, kind: str) -> bytes:
  """One image (H, W, C) as a JSON instance (H x W for one channel) or as raw pixels."""
  if kind == "binary":
    return image.tobytes()
  return json.dumps({"instances": [(image[..., 0] if image.shape[-1] == 1 else image).tolist()]}
                    ).encode()


async def _load(url: str, name: str, image: np.ndarray, kind: str, clients: int, seconds: float):
  host, port = re.match(r"http://([\d.]+):(\d+)", url).groups()
  body = _body(image, kind)
  request = (f"POST /v1/models/{name}:predict HTTP/1.1\r\nHost: {host}\r\n"
             f"Content-Type: {BODIES[kind]}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
  start = time.perf_counter()
  latencies = []
  await asyncio.gather(*(_client(host, int(port), request, start + 1 + seconds, start + 1, latencies)
                         for _ in range(clients)))
  latencies = np.array(latencies)
  return {"clients": clients, "requests_per_second": len(latencies) / seconds,
          "p50_ms": float(np.percentile(latencies, 50) * 1000),
          "p99_ms": float(np.percentile(latencies, 99) * 1000)}


def _start(command: list[str], what: str) -> tuple[subprocess.Popen, str]:
  """Starts a server process; it and the address its first line gives."""
  process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  line = process.stdout.readline()
  found = re.search(r"at (http://[\d.]+:\d+)/", line)
  if not found:
    process.kill()
    raise UserError(f"{what} did not start")
  return process, found.group(1)


def _serve(model_dir: str, log: str) -> tuple[subprocess.Popen, str]:
  return _start([sys.executable, "-m", "scripts.serve", f"--model={model_dir}", "--port=0",
                 f"--max_batch={FLAGS.max_batch}", f"--feedback_log={log}"],
                f"scripts.serve --model={model_dir}")


def floor_app(input_shape: tuple[int, int, int], answer: bytes):
  """The framework's floor: the body parsed and checked as the server does, ``answer`` sent."""
  from starlette.applications import Starlette
  from starlette.responses import Response
  from starlette.routing import Route

  from experiments.serving import bodies as bodies_lib

  async def predict(request):
    body = await request.body()
    if request.headers.get("content-type") == BODIES["binary"]:
      bodies_lib.pixels_array(body, input_shape, 1024)
    else:  # json.loads and np.asarray of the nested lists: the framework's way
      bodies_lib.instances_array(json.loads(body), input_shape, "images", 1024)
    return Response(answer, media_type="application/json")

  return Starlette(routes=[Route("/v1/models/{name}:predict", predict, methods=["POST"])])


def run_floor(shape: str, answer_bytes: int) -> None:
  """Serves ``floor_app`` on a free loopback port with uvicorn as scripts.serve runs it."""
  import socket

  import uvicorn
  sock = socket.socket()
  sock.bind(("127.0.0.1", 0))
  sock.listen(2048)
  print(f"floor at http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
  answer = b'{"predictions": [' + b" " * (answer_bytes - 20) + b"]}"
  app = floor_app(tuple(int(d) for d in shape.split("x")), answer)
  uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


def _floor(shape, answer_bytes: int) -> tuple[subprocess.Popen, str]:
  return _start([sys.executable, "-c", "import sys; from scripts import benchmark_serve; "
                 "benchmark_serve.run_floor(sys.argv[1], int(sys.argv[2]))",
                 "x".join(map(str, shape)), str(answer_bytes)], "the floor server")


def _answer_bytes(url: str, name: str, image: np.ndarray) -> int:
  """The size of the server's answer to one image (the floor's answer has it too)."""
  import httpx
  return len(httpx.post(f"{url}/v1/models/{name}:predict", content=_body(image, "json"),
                        headers={"Content-Type": BODIES["json"]}).content)


def main(argv):
  del argv
  if not FLAGS.model:
    raise UserError("give one or more --model=EXPORT_DIR")
  levels = [int(c) if c.isdigit() else -1 for c in FLAGS.clients]
  for level in levels:
    errors.check_integer("clients", level, 1, 4096)
  rows = []
  for model_dir in FLAGS.model:
    model = artifact_lib.load(model_dir)
    offline = offline_throughput(model, FLAGS.max_batch)
    name, image = model.manifest["dataset"], np.zeros(model.input_shape, np.uint8)
    process, url = _serve(model_dir, os.path.join(model_dir + ".benchmark-feedback", "f.jsonl"))
    floor_process, floor_url = _floor(model.input_shape, _answer_bytes(url, name, image))
    try:
      for kind in BODIES:
        for clients in levels:
          served = asyncio.run(_load(url, name, image, kind, clients, FLAGS.seconds))
          floor = asyncio.run(_load(floor_url, name, image, kind, clients, FLAGS.seconds))
          row = {**served, "model": model.manifest["model"], "body": kind,
                 "offline_images_per_second": offline,
                 "fraction_of_offline": served["requests_per_second"] / offline,
                 "floor_requests_per_second": floor["requests_per_second"],
                 "floor_p50_ms": floor["p50_ms"], "floor_p99_ms": floor["p99_ms"],
                 "fraction_of_floor": served["requests_per_second"] / floor["requests_per_second"]}
          rows.append(row)
          print(f"{row['model']}, {kind}: {clients} clients: {row['requests_per_second']:.0f} "
                f"requests/s (floor {row['floor_requests_per_second']:.0f}), p50 "
                f"{row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms", flush=True)
    finally:
      for p in (process, floor_process):
        p.terminate()
        p.wait(timeout=60)
  print("\n| model | body | clients | requests/s | floor requests/s | server / floor | p50 ms "
        "(floor) | p99 ms (floor) | server / offline (batch "
        f"{FLAGS.max_batch}) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|")
  for r in rows:
    print(f"| {r['model']} | {r['body']} | {r['clients']} | {r['requests_per_second']:.0f} | "
          f"{r['floor_requests_per_second']:.0f} | {r['fraction_of_floor']:.2f}x | "
          f"{r['p50_ms']:.2f} ({r['floor_p50_ms']:.2f}) | {r['p99_ms']:.2f} "
          f"({r['floor_p99_ms']:.2f}) | {100 * r['fraction_of_offline']:.0f}% |")
  if FLAGS.output_json:
    files.write_json(FLAGS.output_json, rows)


if __name__ == "__main__":
  cli.run(main)
