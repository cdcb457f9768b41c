"""The prediction server's state: an exported model, its batcher, monitor and metrics.

Routes (every one but /healthz needs the bearer token when a token is set):

  POST /v1/models/<name>:predict   TF Serving's REST body {"instances": [...]}, each
                                   instance an array of the input shape (28x28 or
                                   28x28x1) of integers 0-255; or raw uint8 pixels
                                   (application/octet-stream, n images back to back);
                                   or an image file body (Content-Type image/*),
                                   decoded and framed as scripts.predict does.
                                   -> {"predictions": [{"id", "class", "label",
                                   "probabilities", "low_confidence"}]};
                                   ?preview=true: a drawing in progress, answered
                                   without an id and left out of the monitor's figures
  GET  /v1/models/<name>           the model's manifest (no file digests)
  POST /v1/feedback                {"id": ..., "label": ...} or a list of them: true labels
  GET  /v1/monitor                 live accuracy, per-class precision / recall / F1, the
                                   confusion matrix, drift, and their history
  GET  /healthz, /readyz           alive; loaded, warmed and not shutting down
  GET  /metrics                    Prometheus' text format
  GET  /, /monitor                 the drawing page and the monitoring page

Bad input is a ``BadRequest`` (``bodies.py``: a JSON {"error": "..."} with a 4xx
status); the server keeps serving. Nothing an image holds is logged or stored: the
feedback log keeps ids, classes, labels, confidences and times.
"""

import asyncio
import collections
import concurrent.futures
import os
import time
from typing import NamedTuple

import numpy as np
import prometheus_client as prom

from experiments.serving import artifact as artifact_lib
from experiments.serving import batcher as batcher_lib
from experiments.serving import bodies
from experiments.serving import drift
from experiments.serving import images as images_lib
from experiments.serving import monitor
from experiments.serving.bodies import BadRequest


class Settings(NamedTuple):
  """The server's settings (scripts/serve.py's flags)."""

  model_name: str
  max_batch: int = 64
  max_wait: float = 0.0  # seconds
  max_instances: int = 1024
  max_body_bytes: int = 16 * 2**20
  max_drain_bytes: int = 64 * 2**20  # of a body over the limit, read and dropped before the 413
  body_timeout: float = 30.0  # seconds for a whole body to arrive
  token: str | None = None
  window: int = 1000  # labelled predictions in the monitor's window
  drift_window: int = 1000  # images in the drift window
  history_interval: float = 5.0  # seconds between the monitor's history points
  frame_digits: bool = True  # image bodies framed as MNIST's digits (images.frame_digit)
  workers: int = 2  # threads decoding images and parsing large JSON bodies


class Metrics:
  """The Prometheus metrics of one server, in a registry of its own."""

  def __init__(self, class_names):
    self.registry = prom.CollectorRegistry()
    r = self.registry
    self.requests = prom.Counter("perceptrax_requests", "Requests by route and status.",
                                 ["route", "status"], registry=r)
    self.latency = prom.Histogram(
        "perceptrax_request_seconds", "Request latency by route.", ["route"], registry=r,
        buckets=(.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5))
    self.batch = prom.Histogram("perceptrax_batch_size", "Images per call of the model.",
                                registry=r, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
    self.predictions = prom.Counter("perceptrax_predictions", "Predictions by class.",
                                    ["label"], registry=r)
    self.previews = prom.Counter("perceptrax_previews", "Predictions of drawings in progress "
                                 "(not in the other figures).", registry=r)
    self.confidence = prom.Histogram(
        "perceptrax_confidence", "The predicted class's probability.", registry=r,
        buckets=(.1, .2, .3, .4, .5, .6, .7, .8, .9, .95, .99, 1.0))
    self.accuracy = prom.Gauge("perceptrax_monitor_accuracy",
                               "Accuracy over the labelled window.", registry=r)
    self.labelled = prom.Gauge("perceptrax_monitor_labelled",
                               "Labelled predictions in the window.", registry=r)
    self.f1 = prom.Gauge("perceptrax_monitor_f1", "F1 per class over the labelled window.",
                         ["label"], registry=r)
    self.psi = prom.Gauge("perceptrax_drift_psi", "Population stability index of the pixel "
                          "histogram against the training data's.", registry=r)
    self.drifted = prom.Gauge("perceptrax_drift", "1 when the drift flag is raised.", registry=r)
    # every class appears from the start, at 0; the children are looked up once, not per request
    self.prediction_counters = [self.predictions.labels(name) for name in class_names]
    self._requests, self._latencies = {}, {}

  def count_request(self, route: str, status: int, seconds: float) -> None:
    """One answered request of ``route``: its status counted and its latency observed."""
    key = (route, status)
    if key not in self._requests:
      self._requests[key] = self.requests.labels(route, str(status))
      self._latencies.setdefault(route, self.latency.labels(route))
    self._requests[key].inc()
    self._latencies[route].observe(seconds)


class Server:
  """The state behind the routes: the model, the batcher, the monitor and the metrics."""

  def __init__(self, artifact: artifact_lib.Artifact, settings: Settings,
               feedback: monitor.FeedbackLog):
    self.artifact, self.settings, self.feedback = artifact, settings, feedback
    self.class_names = artifact.class_names
    self.model_id = artifact.manifest["files"][artifact_lib.MODEL_FILE][:16]
    self.metrics = Metrics(self.class_names)
    self.batcher = batcher_lib.Batcher(artifact.probabilities, artifact.input_shape,
                                       settings.max_batch, settings.max_wait,
                                       self.metrics.batch.observe)
    self.window = monitor.Window(len(self.class_names), settings.window)
    self.drift = drift.Window(artifact.manifest["pixel_statistics"], settings.drift_window)
    self.recent = collections.OrderedDict()  # id -> (class, confidence), newest last
    self.recent_limit = 100_000
    self.history = collections.deque(maxlen=720)
    self.predicted_images = 0
    self.previews = 0
    self.started = time.time()
    self.ready = False
    self._workers = concurrent.futures.ThreadPoolExecutor(settings.workers,
                                                          thread_name_prefix="decode")
    self.labelled_ids = set()  # of the predictions in ``recent`` that have their label
    records, self.skipped = feedback.read(self.model_id, len(self.class_names))
    for record in records[-settings.window:]:  # the window continues where it stopped
      self.window.add(record["label"], record["predicted"])

  # -- predictions --------------------------------------------------------------------------

  async def offload(self, function, *args):
    """``function(*args)`` in a worker thread: the event loop goes on answering meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(self._workers, function, *args)

  def close(self) -> None:
    self._workers.shutdown(wait=False, cancel_futures=True)

  async def predict(self, images: np.ndarray, preview: bool = False) -> list[dict]:
    """Each image's class, its label, the probabilities and, below ``LOW_CONFIDENCE``, a flag.

    A prediction gets an id (for its feedback) and counts in the monitor's
    figures, the drift window and the metrics; a ``preview`` (a drawing the
    page shows while it is being drawn) is only counted as a preview.
    """
    probabilities = await self.batcher.predict(images)
    if preview:
      self.previews += len(images)
      self.metrics.previews.inc(len(images))
    else:
      self.drift.add(images)
      self.predicted_images += len(images)
    out = []
    for p in probabilities:
      k = int(np.argmax(p))
      confidence = float(p[k])
      prediction = {"class": k, "label": self.class_names[k], "probabilities": p.tolist(),
                    "low_confidence": confidence < images_lib.LOW_CONFIDENCE}
      if not preview:
        prediction["id"] = os.urandom(16).hex()  # 128 random bits, as a UUID4's 122
        self.recent[prediction["id"]] = (k, confidence)
        if len(self.recent) > self.recent_limit:
          self.labelled_ids.discard(self.recent.popitem(last=False)[0])
        self.metrics.prediction_counters[k].inc()
        self.metrics.confidence.observe(confidence)
      out.append(prediction)
    return out

  def pixels(self, body: bytes) -> np.ndarray:
    return bodies.pixels_array(body, self.artifact.input_shape, self.settings.max_instances)

  def instances(self, data: bytes) -> np.ndarray:
    return bodies.instances_from_json(data, self.artifact.input_shape,
                               self.artifact.manifest["input"]["name"],
                               self.settings.max_instances)

  # -- monitoring ---------------------------------------------------------------------------

  def record_feedback(self, body) -> int:
    items = body if isinstance(body, list) else [body]
    if not items or len(items) > self.settings.max_instances:
      raise BadRequest(400, f"feedback is an object {{\"id\", \"label\"}} or a list of 1 to "
                       f"{self.settings.max_instances} of them")
    records, seen = [], set()
    now = time.time()
    for item in items:
      if not isinstance(item, dict) or set(item) != {"id", "label"}:
        raise BadRequest(400, 'each feedback must be an object {"id": ..., "label": ...}')
      prediction_id, label = item["id"], self._label(item["label"])
      if not isinstance(prediction_id, str) or prediction_id not in self.recent:
        raise BadRequest(404, f"no prediction with id {prediction_id!r} (ids are kept for the "
                         f"last {self.recent_limit} predictions)")
      if prediction_id in self.labelled_ids or prediction_id in seen:
        raise BadRequest(409, f"prediction {prediction_id} already has its label")
      seen.add(prediction_id)
      predicted, confidence = self.recent[prediction_id]
      records.append({"id": prediction_id, "label": label, "predicted": predicted,
                      "confidence": round(confidence, 6), "time": round(now, 3),
                      "model": self.model_id})
    try:
      self.feedback.append(records)
    except OSError as e:
      raise BadRequest(507, f"could not record the feedback in {self.feedback.path} "
                       f"({e.strerror})") from None
    for record in records:
      self.window.add(record["label"], record["predicted"])
      self.labelled_ids.add(record["id"])
    return len(records)

  def _label(self, label) -> int:
    if type(label) is int and 0 <= label < len(self.class_names):
      return label
    if isinstance(label, str) and label in self.class_names:
      return self.class_names.index(label)
    raise BadRequest(400, f"label must be a class index 0-{len(self.class_names) - 1} or one of "
                     f"the class names, got {label!r}")

  def report(self) -> dict:
    out = self.window.report(self.class_names)
    out["drift"] = self.drift.report()
    out["started"] = round(self.started, 3)  # the drift window and the counts start here
    out["predictions"] = self.predicted_images
    out["previews"] = self.previews
    out["skipped_feedback_lines"] = self.skipped
    out["history"] = list(self.history)
    return out

  async def sample_history(self) -> None:
    """Every ``history_interval`` seconds: the time, accuracy, request rate and drift."""
    last_count, last_time = self.predicted_images, time.time()
    while True:
      await asyncio.sleep(self.settings.history_interval)
      now = time.time()
      report = self.window.report(self.class_names)
      self.history.append({
          "time": round(now, 3), "accuracy": report["accuracy"],
          "predictions_per_second": (self.predicted_images - last_count) / (now - last_time),
          "psi": self.drift.report()["psi"]})
      last_count, last_time = self.predicted_images, now

  def update_gauges(self) -> None:
    report = self.report()
    m = self.metrics
    m.labelled.set(report["labelled"])
    m.accuracy.set(report["accuracy"] if report["accuracy"] is not None else float("nan"))
    for row in report["per_class"]:
      m.f1.labels(row["label"]).set(row["f1"])
    m.psi.set(report["drift"]["psi"] if report["drift"]["psi"] is not None else float("nan"))
    m.drifted.set(int(report["drift"]["drifted"]))
