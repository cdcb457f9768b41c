r"""Serve an exported model over HTTP, with a drawing page and live monitoring.

    python -m scripts.serve --model=/tmp/perceptrax/export [--port=8000]

Loads and verifies the export written by ``scripts.export``, compiles its
function for every batch size the dynamic batcher uses, then serves
``experiments/serving/server.py``'s routes under uvicorn: TF Serving's REST
predict API at /v1/models/<name>:predict, feedback and monitoring, Prometheus
metrics, and the pages at / (draw a digit) and /monitor. Binds 127.0.0.1
unless --host says otherwise; --auth_token_file makes every route but /healthz
require the token in it. SIGTERM or Ctrl-C finishes the requests in flight
and exits 0. A missing or damaged export, a port in use or a feedback log held
by another server is one line and exit 1, before serving.
"""

import contextlib
import ipaddress
import logging
import os
import signal
import socket

import uvicorn
from absl import flags

from data import errors
from data import files
from data.errors import UserError
from experiments import cli
from experiments.serving import artifact as artifact_lib
from experiments.serving import http_limits
from experiments.serving import monitor
from experiments.serving import routes
from experiments.serving import server as server_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "/tmp/perceptrax/export", "A folder written by scripts.export.")
flags.DEFINE_string("model_name", None, "The name in /v1/models/<name>:predict (default: the "
                    "model's dataset, e.g. mnist).")
flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (0.0.0.0: every interface; "
                    "give --auth_token_file then).")
flags.DEFINE_integer("port", 8000, "Port to listen on (0: any free port, printed at start).")
flags.DEFINE_string("auth_token_file", None, "A file holding the bearer token every route but "
                    "/healthz requires.")
flags.DEFINE_integer("max_batch", 64, "Most images in one call of the model (dynamic batching).")
flags.DEFINE_float("max_wait_ms", 0.0, "Longest wait (ms) for more requests to fill a batch "
                  "(0: none; requests that arrive while the model runs form the next batch).")
flags.DEFINE_integer("max_instances", 1024, "Most instances in one request.")
flags.DEFINE_integer("max_body_bytes", 16 * 2**20, "Largest request body (bytes); larger: 413.")
flags.DEFINE_integer("max_drain_bytes", 64 * 2**20, "Of a body over --max_body_bytes, how many "
                     "more bytes are read and dropped so that the client reads its 413 (a larger "
                     "one is answered at once and its connection closed).")
flags.DEFINE_float("body_timeout", 30.0, "Seconds for a request's whole body to arrive; "
                   "later: 408.")
flags.DEFINE_integer("max_request_line", http_limits.Limits().max_request_line,
                     "Longest request line (method, path, query) in bytes; longer: 414.")
flags.DEFINE_integer("max_header_bytes", http_limits.Limits().max_header_bytes,
                     "Largest request headers in all (bytes); larger: 431.")
flags.DEFINE_integer("max_headers", http_limits.Limits().max_headers,
                     "Most request headers; more: 431.")
flags.DEFINE_float("header_timeout", http_limits.Limits().header_timeout,
                   "Seconds for a request line and headers to arrive, from the connection or "
                   "the request's first byte; later: 408 (a slow or silent client).")
flags.DEFINE_float("keep_alive_timeout", 5.0, "Seconds an idle keep-alive connection stays open.")
flags.DEFINE_integer("max_connections", http_limits.Limits().max_connections,
                     "Most open connections; one more is answered 503 and closed.")
flags.DEFINE_integer("workers", 2, "Threads that decode image bodies and parse large JSON bodies "
                     "(off the event loop).")
flags.DEFINE_boolean("frame_digits", True, "Frame an image body of another size than the "
                     "model's as MNIST's digits were made (scripts.predict's --frame).")
flags.DEFINE_string("feedback_log", None, "JSON-lines log of the labelled predictions (default: "
                    "/tmp/perceptrax/serve/<model_name>/feedback.jsonl).")
flags.DEFINE_integer("monitor_window", 1000, "Labelled predictions in the monitor's window.")
flags.DEFINE_integer("drift_window", 1000, "Recent images compared with the training data's.")
flags.DEFINE_float("history_interval", 5.0, "Seconds between the monitor's history points.")
flags.DEFINE_bool("access_log", False, "Log one line per request to stderr (client, method, "
                  "path, status; never bodies).")


def _token(path: str | None) -> str | None:
  if path is None:
    return None
  try:
    with files.open_regular(path) as f:
      token = f.read().decode("utf-8", "replace").strip()
  except OSError as e:
    raise UserError(f"cannot read --auth_token_file {path}: {e.strerror}") from None
  if len(token) < 16 or any(c.isspace() for c in token):
    raise UserError(f"the token in {path} must be at least 16 characters without spaces")
  return token


def _listen(host: str, port: int) -> socket.socket:
  """A listening socket on ``host``:``port``; UserError naming why not (a port in use)."""
  try:
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
  except ValueError:
    raise UserError(f"--host must be an IP address, got {host!r}") from None
  sock = socket.socket(family, socket.SOCK_STREAM)
  sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  try:
    sock.bind((host, port))
  except OSError as e:
    sock.close()
    raise UserError(f"cannot listen on {host}:{port}: {e.strerror}") from None
  sock.listen(2048)
  return sock


def _log_requests() -> None:
  """uvicorn's access log, one line per request on stderr: client - "METHOD path HTTP/v" status.

  (Its logger writes at INFO, below the server's warning level, so it needs
  its own level and handler.)
  """
  access = logging.getLogger("uvicorn.access")
  handler = logging.StreamHandler()
  handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
  access.addHandler(handler)
  access.setLevel(logging.INFO)
  access.propagate = False


class _Uvicorn(uvicorn.Server):
  """uvicorn's server; after a graceful stop on SIGTERM / SIGINT the process exits 0.

  (uvicorn raises the signal again once stopped, which would end the process with
  status 128 + n although every request was answered.)
  """

  @contextlib.contextmanager
  def capture_signals(self):
    previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
      yield
    finally:
      for sig, handler in previous.items():
        signal.signal(sig, handler)


def main(argv):
  del argv
  errors.check_integer("port", FLAGS.port, 0, 65535)
  for name in ("max_batch", "max_instances", "max_body_bytes", "monitor_window", "drift_window",
               "max_request_line", "max_header_bytes", "max_headers", "max_connections"):
    errors.check_integer(name, getattr(FLAGS, name), 1, 2**31 - 1)
  errors.check_integer("max_drain_bytes", FLAGS.max_drain_bytes, 0, 2**40)
  errors.check_integer("workers", FLAGS.workers, 1, 256)
  errors.check_number("max_wait_ms", FLAGS.max_wait_ms, 0.0, 10_000.0)
  errors.check_number("history_interval", FLAGS.history_interval, 0.1, 86_400.0)
  for name in ("body_timeout", "header_timeout", "keep_alive_timeout"):
    errors.check_number(name, getattr(FLAGS, name), 0.0, 86_400.0, low_open=True)
  token = _token(FLAGS.auth_token_file)
  import jax
  # A request's model call runs on the calling thread: handing it to JAX's dispatch thread
  # costs more than a small batch's call (measured 135 -> 108 µs at batch 1).
  jax.config.update("jax_cpu_enable_async_dispatch", False)
  model = artifact_lib.load(FLAGS.model)
  name = FLAGS.model_name or model.manifest["dataset"]
  if not name or "/" in name or ":" in name:
    raise UserError(f"--model_name must be a name without '/' or ':', got {name!r}")
  feedback = monitor.FeedbackLog(FLAGS.feedback_log or os.path.join(
      "/tmp/perceptrax/serve", name, "feedback.jsonl"))
  settings = server_lib.Settings(
      name, FLAGS.max_batch, FLAGS.max_wait_ms / 1000, FLAGS.max_instances, FLAGS.max_body_bytes,
      FLAGS.max_drain_bytes, FLAGS.body_timeout, token, FLAGS.monitor_window,
      FLAGS.drift_window, FLAGS.history_interval, FLAGS.frame_digits, FLAGS.workers)
  limits = http_limits.Limits(FLAGS.max_request_line, FLAGS.max_header_bytes, FLAGS.max_headers,
                              FLAGS.header_timeout, FLAGS.max_connections)
  server = server_lib.Server(model, settings, feedback)
  if server.skipped:
    logging.warning("%s: %d lines skipped (cut short or not of this form)", feedback.path,
                    server.skipped)
  sock = _listen(FLAGS.host, FLAGS.port)
  if not ipaddress.ip_address(FLAGS.host).is_loopback and token is None:
    logging.warning("serving on %s without --auth_token_file: anyone who reaches this address "
                    "can use the model", FLAGS.host)
  server.batcher.warm()  # every batch size compiled before the first request is accepted
  host, port = sock.getsockname()[:2]
  print(f"serving {name} ({model.manifest['model']}, {model.directory}) at "
        f"http://{f'[{host}]' if ':' in host else host}:{port}/ "
        f"(batches up to {FLAGS.max_batch}; feedback log {feedback.path})", flush=True)
  config = uvicorn.Config(routes.create_app(server), log_level="warning", access_log=False,
                          timeout_graceful_shutdown=30, lifespan="on",
                          http=http_limits.limited_protocol(limits),
                          timeout_keep_alive=FLAGS.keep_alive_timeout)
  if FLAGS.access_log:
    _log_requests()
  _Uvicorn(config).run(sockets=[sock])
  feedback.close()
  print("stopped: requests in flight answered", flush=True)


if __name__ == "__main__":
  cli.run(main)
