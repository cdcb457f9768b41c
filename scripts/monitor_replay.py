r"""Send a dataset's images with their true labels through a running prediction server.

    python -m scripts.monitor_replay --url=http://127.0.0.1:8000 --dataset=mnist --split=test

Each batch of images goes to /v1/models/<name>:predict as TF Serving instances,
then each prediction's true label to /v1/feedback; at the end the server's
/v1/monitor report is printed: live accuracy, per-class F1 and drift. Replaying
another dataset (fashion_mnist into an MNIST model) shows the accuracy drop
and the drift flag.
"""

import json
import logging

import httpx
from absl import flags

from data import datasets
from data import errors
from data import progress
from data.errors import UserError
from experiments import cli

logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise

FLAGS = flags.FLAGS
flags.DEFINE_string("url", "http://127.0.0.1:8000", "The server's address.")
flags.DEFINE_string("dataset", "mnist", "The dataset whose images are sent.")
flags.DEFINE_enum("split", "test", ["train", "test"], "Which split.")
flags.DEFINE_integer("limit", 2000, "How many images (the first of the split).")
flags.DEFINE_integer("batch_size", 100, "Images per request.")
flags.DEFINE_string("auth_token_file", None, "The server's token, if it needs one.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")


def _checked(response: httpx.Response) -> dict:
  if response.status_code != 200:
    try:
      message = response.json()["error"]
    except (ValueError, KeyError, TypeError):
      message = response.text[:200]
    raise UserError(f"{response.request.url}: {response.status_code} {message}")
  return response.json()


def main(argv):
  del argv
  errors.check_integer("limit", FLAGS.limit, 1, errors.MAX_COUNT)
  errors.check_integer("batch_size", FLAGS.batch_size, 1, 1024)
  datasets.DATASETS.get(FLAGS.dataset)
  headers = {}
  if FLAGS.auth_token_file:
    with open(FLAGS.auth_token_file, encoding="utf-8") as f:
      headers["Authorization"] = f"Bearer {f.read().strip()}"
  try:
    with httpx.Client(base_url=FLAGS.url, headers=headers, timeout=60) as client:
      name = _checked(client.get("/v1/models"))["models"][0]  # the server answers: then the data
      arrays = datasets.load_arrays(FLAGS.dataset, FLAGS.archive_dir, FLAGS.tfds_data_dir)
      images = arrays[f"{FLAGS.split}_images"][:FLAGS.limit]
      labels = arrays[f"{FLAGS.split}_labels"][:FLAGS.limit]
      with progress.bar(total=len(images), unit="image", disable=not FLAGS.progress) as bar:
        for start in range(0, len(images), FLAGS.batch_size):
          batch = images[start:start + FLAGS.batch_size]
          predictions = _checked(client.post(f"/v1/models/{name}:predict",
                                             json={"instances": batch.tolist()}))["predictions"]
          _checked(client.post("/v1/feedback", json=[
              {"id": p["id"], "label": int(label)}
              for p, label in zip(predictions, labels[start:start + FLAGS.batch_size])]))
          bar.update(len(batch))
      report = _checked(client.get("/v1/monitor"))
  except httpx.HTTPError as e:
    raise UserError(f"cannot reach {FLAGS.url}: {e}") from None
  summary = {k: report[k] for k in ("labelled", "accuracy", "macro_f1", "drift")}
  print(json.dumps(summary))  # one line, the last


if __name__ == "__main__":
  cli.run(main)
