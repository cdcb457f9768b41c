r"""Measure the prediction server: requests/s and latency at 1, 8 and 64 concurrent clients.

    python -m scripts.benchmark_serve --model=/tmp/perceptrax/export_mlp --model=/tmp/perceptrax/export_cnn

For each export, starts ``scripts.serve`` on a free port, measures the
export's offline throughput at the server's largest batch in this process
(the limit a server can approach), then runs N clients that each send one
28x28 image per request, back to back, over keep-alive connections, for
--seconds at each concurrency. The clients are a minimal asyncio HTTP/1.1
loop, so the figures are the server's, not a client library's. Prints a
Markdown table and writes it as JSON (--output_json).
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
from experiments import cli
from experiments.serving import artifact as artifact_lib
from data.errors import UserError

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


async def _load(url: str, name: str, image: np.ndarray, clients: int, seconds: float):
  host, port = re.match(r"http://([\d.]+):(\d+)", url).groups()
  body = json.dumps({"instances": [image.tolist()]}).encode()
  request = (f"POST /v1/models/{name}:predict HTTP/1.1\r\nHost: {host}\r\n"
             f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
  start = time.perf_counter()
  latencies = []
  await asyncio.gather(*(_client(host, int(port), request, start + 1 + seconds, start + 1, latencies)
                         for _ in range(clients)))
  latencies = np.array(latencies)
  return {"clients": clients, "requests_per_second": len(latencies) / seconds,
          "p50_ms": float(np.percentile(latencies, 50) * 1000),
          "p99_ms": float(np.percentile(latencies, 99) * 1000)}


def _serve(model_dir: str, log: str) -> tuple[subprocess.Popen, str]:
  process = subprocess.Popen(
      [sys.executable, "-m", "scripts.serve", f"--model={model_dir}", "--port=0",
       f"--max_batch={FLAGS.max_batch}", f"--feedback_log={log}"],
      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  line = process.stdout.readline()
  found = re.search(r"at (http://[\d.]+:\d+)/", line)
  if not found:
    process.kill()
    raise UserError(f"scripts.serve --model={model_dir} did not start")
  return process, found.group(1)


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
    process, url = _serve(model_dir, os.path.join(model_dir + ".benchmark-feedback", "f.jsonl"))
    try:
      for clients in levels:
        row = asyncio.run(_load(url, model.manifest["dataset"],
                                np.zeros(model.input_shape[:2], np.uint8), clients, FLAGS.seconds))
        row.update(model=model.manifest["model"], offline_images_per_second=offline,
                   fraction_of_offline=row["requests_per_second"] / offline)
        rows.append(row)
        print(f"{row['model']}: {clients} clients: {row['requests_per_second']:.0f} requests/s, "
              f"p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms", flush=True)
    finally:
      process.terminate()
      process.wait(timeout=60)
  print("\n| model | clients | requests/s | p50 ms | p99 ms | offline images/s (batch "
        f"{FLAGS.max_batch}) | server / offline |\n|---|---:|---:|---:|---:|---:|---:|")
  for r in rows:
    print(f"| {r['model']} | {r['clients']} | {r['requests_per_second']:.0f} | {r['p50_ms']:.2f} | "
          f"{r['p99_ms']:.2f} | {r['offline_images_per_second']:.0f} | "
          f"{100 * r['fraction_of_offline']:.0f}% |")
  if FLAGS.output_json:
    files.write_json(FLAGS.output_json, rows)


if __name__ == "__main__":
  cli.run(main)
