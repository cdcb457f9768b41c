"""The export and the server, end to end on models trained on real MNIST.

scripts.export's two formats against scripts.predict's probabilities, loaded in a
process that cannot import the project; scripts.serve under uvicorn on a free
port, through a real HTTP client: predictions, every bad input, 16 concurrent
clients, feedback and monitoring against scikit-learn, a restart, SIGTERM,
the token, and the errors before serving.
"""

import concurrent.futures
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import httpx
import jax
import numpy as np
import pytest
from PIL import Image
from sklearn import metrics as sk

from data import datasets
from experiments.serving import artifact
from experiments.training.storage import trained_model
from tests.helpers import ROOT
from tests.serving_helpers import Served

pytestmark = pytest.mark.slow

# Float32 tolerance between the export and the in-process function: the same StableHLO
# compiled twice; softmax outputs agree to a few ulp (measured max difference: 0 on CPU).
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def test_images(mnist_data_dir):
  arrays = datasets.load_arrays("mnist", tfds_data_dir=mnist_data_dir)
  return arrays["test_images"][:1000], arrays["test_labels"][:1000]


# Loads both formats with the project's packages unimportable, as a serving host would.
_STANDALONE = textwrap.dedent("""
    import sys
    class Refuse:
      def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("models", "data", "experiments", "scripts"):
          raise ImportError(f"the project's {name} must not be needed")
    sys.meta_path.insert(0, Refuse())
    import jax, numpy as np, tensorflow as tf
    folder, images = sys.argv[1], np.load(sys.argv[2])
    exported = jax.export.deserialize(bytearray(open(f"{folder}/model.jax", "rb").read()))
    np.save(sys.argv[3], np.asarray(exported.call(images)))
    serve = tf.saved_model.load(f"{folder}/saved_model").signatures["serving_default"]
    np.save(sys.argv[4], serve(images=tf.constant(images))["probabilities"].numpy())
""")


@pytest.mark.parametrize("model", ["mlp", "cnn", "lstm"])
def test_both_formats_equal_predict_on_1000_test_images_without_the_project(
    model, trained, exported, test_images, tmp_path):
  images = test_images[0]
  want = np.asarray(jax.jit(trained_model.probability_function(
      trained_model.load(str(trained(model)))))(images))
  np.save(tmp_path / "images.npy", images)
  result = subprocess.run(
      [sys.executable, "-c", _STANDALONE, str(exported(model)), str(tmp_path / "images.npy"),
       str(tmp_path / "jax.npy"), str(tmp_path / "tf.npy")],
      cwd=tmp_path, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  for name in ("jax", "tf"):
    got = np.load(tmp_path / f"{name}.npy")
    assert got.shape == (1000, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=name)
  loaded = artifact.load(str(exported(model)))
  np.testing.assert_allclose(loaded.probabilities(images[:7]), want[:7], rtol=RTOL, atol=ATOL)
  manifest = loaded.manifest
  assert manifest["model"] == model and manifest["dataset"] == "mnist"
  assert manifest["input"] == {"name": "images", "shape": [28, 28, 1], "dtype": "uint8"}
  assert manifest["test_metrics"]["accuracy"] == pytest.approx(json.loads(  # 4 decimals there
      (trained(model) / "summary.json").read_text())["test_accuracy"], abs=5e-5)
  assert abs(manifest["pixel_statistics"]["mean"] - 0.1307) < 1e-3  # MNIST's well-known mean
  assert sorted(manifest["files"]) == sorted(
      os.path.relpath(os.path.join(d, f), exported(model))
      for d, _, names in os.walk(exported(model)) for f in names
      if f not in ("manifest.json", "manifest.json.sha256"))


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
  log = tmp_path_factory.mktemp("serve") / "feedback.jsonl"
  served = Served(f"--model={exported('mlp')}", f"--feedback_log={log}", "--max_instances=64",
                  "--max_body_bytes=2000000")
  served.log = log
  yield served
  served.stop(signal.SIGKILL)


def _predict(client, instances, **kwargs):
  return client.post("/v1/models/mnist:predict", json={"instances": instances}, **kwargs)


def test_served_predictions_equal_the_export(server, exported, test_images):
  images = test_images[0][:64]
  want = artifact.load(str(exported("mlp"))).probabilities(images)
  with httpx.Client(base_url=server.url) as client:
    assert client.get("/healthz").json() == {"status": "alive"}
    assert client.get("/readyz").json()["status"] == "ready"
    answer = _predict(client, images[..., 0].tolist()).json()["predictions"]  # 28x28 instances
    got = np.array([p["probabilities"] for p in answer])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    assert [p["class"] for p in answer] == np.argmax(want, 1).tolist()
    assert [p["label"] for p in answer] == [str(k) for k in np.argmax(want, 1)]
    assert len({p["id"] for p in answer}) == 64
    one = _predict(client, images[:1].tolist()).json()["predictions"][0]  # 28x28x1 instances
    np.testing.assert_allclose(one["probabilities"], want[0], rtol=RTOL, atol=ATOL)
    png = io.BytesIO()
    Image.fromarray(images[0][..., 0]).save(png, format="PNG")
    by_file = client.post("/v1/models/mnist:predict", content=png.getvalue(),
                          headers={"Content-Type": "image/png"}).json()["predictions"][0]
    np.testing.assert_allclose(by_file["probabilities"], want[0], rtol=RTOL, atol=ATOL)
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert client.get("/static/draw.js").status_code == 200


def _digit_json(value=0, shape=(28, 28)):
  return np.full(shape, value).tolist()


BAD_INPUTS = [  # (what, request keyword arguments, status, message start)
    ("malformed JSON", {"content": b'{"instances": [', "headers": {"Content-Type": "application/json"}}, 400, "malformed JSON"),
    ("not an object", {"json": [1, 2]}, 400, 'the body must be a JSON object {"instances"'),
    ("no instances", {"json": {"inputs": []}}, 400, 'the body must be a JSON object {"instances"'),
    ("empty instances", {"json": {"instances": []}}, 400, '"instances" must be a non-empty list'),
    ("wrong shape", {"json": {"instances": [_digit_json(0, (28, 27))]}}, 400, "each instance must be an array of shape 28x28 or 28x28x1, got 28x27"),
    ("ragged", {"json": {"instances": [[[1, 2], [3]]]}}, 400, "each instance must be an array of shape"),
    ("strings", {"json": {"instances": [np.full((28, 28), "a").tolist()]}}, 400, "instance values must be numbers 0-255"),
    ("NaN", {"content": b'{"instances": [[[NaN]]]}', "headers": {"Content-Type": "application/json"}}, 400, "malformed JSON (NaN is not a number 0-255)"),
    ("above 255", {"json": {"instances": [_digit_json(256)]}}, 400, "instance values must be 0-255, got 256"),
    ("negative", {"json": {"instances": [_digit_json(-1)]}}, 400, "instance values must be 0-255, got -1"),
    ("fractions", {"json": {"instances": [_digit_json(0.5)]}}, 400, "instance values must be integers 0-255"),
    ("infinity", {"content": b'{"instances": [' + b"[" + b",".join([b"[" + b",".join([b"1e999"] * 28) + b"]"] * 28) + b"]]}", "headers": {"Content-Type": "application/json"}}, 400, "instance values must be finite"),
    ("too many instances", {"json": {"instances": [_digit_json()] * 65}}, 400, "at most 64 instances per request, got 65"),
    ("body over the limit", {"content": b" " * 2_000_001, "headers": {"Content-Type": "application/json"}}, 413, "the body is over the limit of 2000000 bytes"),
    ("undecodable image", {"content": b"\x89PNG not really", "headers": {"Content-Type": "image/png"}}, 400, "the image cannot be classified: not a readable image"),
    ("unknown content type", {"content": b"hello", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported Content-Type 'text/plain'"),
]


def test_every_bad_input_is_one_json_error_and_the_server_goes_on(server):
  with httpx.Client(base_url=server.url) as client:
    for what, kwargs, status, message in BAD_INPUTS:
      response = client.post("/v1/models/mnist:predict", **kwargs)
      assert response.status_code == status, (what, response.text)
      assert set(response.json()) == {"error"} and response.json()["error"].startswith(message), (
          what, response.json())
    unknown = client.post("/v1/models/cifar10:predict", json={"instances": [_digit_json()]})
    assert unknown.status_code == 404
    assert _predict(client, [_digit_json()]).status_code == 200  # still serving


def test_16_concurrent_clients_get_every_answer_right(server, exported, test_images):
  images = test_images[0][:200]
  want = np.argmax(artifact.load(str(exported("mlp"))).probabilities(images), 1)
  bodies = [json.dumps({"instances": [images[i].tolist()]}) for i in range(200)]

  def client_run(c):
    wrong = 0
    with httpx.Client(base_url=server.url, timeout=60) as client:
      for i in range(200):
        j = (i + 13 * c) % 200
        response = client.post("/v1/models/mnist:predict", content=bodies[j],
                               headers={"Content-Type": "application/json"})
        wrong += response.status_code != 200 or response.json()["predictions"][0]["class"] != want[j]
    return wrong

  with concurrent.futures.ThreadPoolExecutor(16) as pool:
    assert list(pool.map(client_run, range(16))) == [0] * 16
  metrics = httpx.get(f"{server.url}/metrics").text
  batches = [line for line in metrics.splitlines() if line.startswith("perceptrax_batch_size_count")]
  calls = float(batches[0].split()[-1])
  assert calls < 3200  # requests shared calls of the model


def test_feedback_gives_the_monitor_scikit_learns_figures_and_survives_a_restart(
    exported, test_images, tmp_path):
  log = tmp_path / "feedback.jsonl"
  images, labels = test_images[0][:300], test_images[1][:300]
  served = Served(f"--model={exported('mlp')}", f"--feedback_log={log}", "--monitor_window=250")
  try:
    with httpx.Client(base_url=served.url) as client:
      predictions = _predict(client, images[:150].tolist()).json()["predictions"]
      predictions += _predict(client, images[150:].tolist()).json()["predictions"]
      feedback = [{"id": p["id"], "label": int(t)} for p, t in zip(predictions, labels)]
      assert client.post("/v1/feedback", json=feedback[:100]).json() == {"recorded": 100}
      for item in feedback[100:]:
        assert client.post("/v1/feedback", json=item).status_code == 200
      again = client.post("/v1/feedback", json=feedback[0])
      assert again.status_code == 409
      assert client.post("/v1/feedback", json={"id": "nope", "label": 1}).status_code == 404
      assert client.post("/v1/feedback", json={"id": predictions[0]["id"], "label": 10}
                         ).status_code == 400
      before = client.get("/v1/monitor").json()
  finally:
    assert served.stop()[0] == 0
  predicted = np.array([p["class"] for p in predictions])
  t, p = labels[-250:], predicted[-250:]
  assert before["labelled"] == 250
  assert before["accuracy"] == pytest.approx(sk.accuracy_score(t, p), abs=1e-12)
  np.testing.assert_allclose([r["f1"] for r in before["per_class"]],
                             sk.f1_score(t, p, labels=range(10), average=None, zero_division=0),
                             atol=1e-12)
  assert before["confusion_matrix"] == sk.confusion_matrix(t, p, labels=range(10)).tolist()
  assert len(log.read_text().splitlines()) == 300
  assert "image" not in log.read_text() and "probabilities" not in log.read_text()

  restarted = Served(f"--model={exported('mlp')}", f"--feedback_log={log}",
                     "--monitor_window=250")
  try:
    after = httpx.get(f"{restarted.url}/v1/monitor").json()
  finally:
    restarted.stop()
  for key in ("labelled", "accuracy", "per_class", "confusion_matrix"):
    assert after[key] == before[key], key


def test_sigterm_answers_the_requests_in_flight_and_exits_0(exported, tmp_path, test_images):
  served = Served(f"--model={exported('cnn')}", f"--feedback_log={tmp_path / 'f.jsonl'}")
  body = json.dumps({"instances": test_images[0][:512].tolist()})  # ~0.2 s of the cnn each
  clients = [httpx.Client(base_url=served.url, timeout=120) for _ in range(8)]
  for client in clients:
    assert client.get("/healthz").status_code == 200  # connected before the requests

  def ask(client):
    return client.post("/v1/models/mnist:predict", content=body,
                       headers={"Content-Type": "application/json"}).status_code

  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    answers = pool.map(ask, clients)
    time.sleep(0.5)  # every request sent, most still waiting for the model
    status, out, err = served.stop(signal.SIGTERM)
    answers = list(answers)
  assert status == 0, err[-2000:]
  assert answers == [200] * 8
  assert out.splitlines()[-1] == "stopped: requests in flight answered"


def test_the_token_guards_every_route_but_healthz(exported, tmp_path):
  token_file = tmp_path / "token"
  token_file.write_text("s3cret-token-of-32-characters!!!\n")
  served = Served(f"--model={exported('mlp')}", f"--feedback_log={tmp_path / 'f.jsonl'}",
                  f"--auth_token_file={token_file}")
  try:
    with httpx.Client(base_url=served.url) as client:
      assert client.get("/healthz").status_code == 200
      for method, path in [("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/v1/monitor"),
                           ("GET", "/"), ("GET", "/monitor"), ("POST", "/v1/models/mnist:predict"),
                           ("POST", "/v1/feedback"), ("GET", "/v1/models")]:
        assert client.request(method, path).status_code == 401, path
        wrong = client.request(method, path, headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 401, path
      good = {"Authorization": "Bearer s3cret-token-of-32-characters!!!"}
      assert _predict(client, [_digit_json()], headers=good).status_code == 200
      client.cookies.set("perceptrax_token", "s3cret-token-of-32-characters!!!")
      assert client.get("/").status_code == 200  # the pages' cookie
  finally:
    served.stop()


def _serve_error(*flags):
  result = subprocess.run([sys.executable, "-m", "scripts.serve", *flags], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
  lines = [line for line in result.stderr.splitlines() if line and line[:1] not in "IW"]
  return result.returncode, lines


def test_a_damaged_missing_or_foreign_export_is_one_line_before_serving(exported, tmp_path):
  damaged = tmp_path / "damaged"
  shutil.copytree(exported("mlp"), damaged)
  data = bytearray((damaged / "model.jax").read_bytes())
  data[len(data) // 2] ^= 1
  (damaged / "model.jax").write_bytes(bytes(data))
  assert _serve_error(f"--model={damaged}") == (1, [
      f"error: the export in {damaged} is damaged: model.jax does not match its SHA-256 digest"])
  (damaged / "model.jax").unlink()
  status, lines = _serve_error(f"--model={damaged}")
  assert status == 1 and lines == [
      f"error: the export in {damaged} is damaged: model.jax: No such file or directory"]
  assert _serve_error(f"--model={tmp_path / 'none'}") == (1, [
      f"error: no export in {tmp_path / 'none'}: it is not a folder"])
  older = tmp_path / "older"
  shutil.copytree(exported("mlp"), older)
  manifest = json.loads((older / "manifest.json").read_text())
  manifest["version"] = 0
  from data import files
  files.write_verified(str(older / "manifest.json"), json.dumps(manifest).encode())
  assert _serve_error(f"--model={older}") == (1, [
      f"error: the export in {older} is format version 0; this version reads 2: export the "
      "model again"])
  (older / "manifest.json").write_text("{}")
  assert _serve_error(f"--model={older}") == (1, [
      f"error: the export in {older} is damaged: manifest.json: its bytes do not match its "
      "SHA-256 digest"])


def test_a_port_in_use_is_one_line(exported, server, tmp_path):
  port = server.url.rsplit(":", 1)[1]
  assert _serve_error(f"--model={exported('mlp')}", f"--port={port}",
                      f"--feedback_log={tmp_path / 'f.jsonl'}") == (1, [
      f"error: cannot listen on 127.0.0.1:{port}: Address already in use"])
  assert _serve_error(f"--model={exported('mlp')}", f"--feedback_log={server.log}") == (1, [
      f"error: the feedback log {server.log} is in use by another server; give each server its "
      "own --feedback_log"])


def test_export_refuses_a_folder_that_is_not_an_export_and_replaces_one_that_is(
    trained, exported, mnist_data_dir, tmp_path, run_module):
  other = tmp_path / "notes"
  other.mkdir()
  (other / "keep.txt").write_text("mine")
  result = run_module("scripts.export", f"--workdir={trained('mlp')}", f"--output={other}",
                      f"--tfds_data_dir={mnist_data_dir}")
  assert result.returncode == 1 and (other / "keep.txt").read_text() == "mine"
  assert result.stderr.strip().splitlines()[-1] == (
      f"error: {other} exists and is not an export; choose another --output")
  again = tmp_path / "again"
  shutil.copytree(exported("mlp"), again)
  result = run_module("scripts.export", f"--workdir={trained('mlp')}", f"--output={again}",
                      f"--tfds_data_dir={mnist_data_dir}")
  assert result.returncode == 0, result.stderr[-2000:]
  console = (result.stdout + result.stderr).strip().splitlines()  # no TensorFlow start-up lines
  assert len(console) == 1 and console[0].startswith("exported the mlp model of "), console
  artifact.verify(str(again))
  assert sorted(p.name for p in tmp_path.iterdir()) == ["again", "notes"]  # no staging left
