"""experiments.autoencoder and experiments.gan as users run them, on 5000 or 10 000 real MNIST
images (--train_size)."""

import json

import pytest
from PIL import Image

from tests.helpers import USERS_COMPILER

pytestmark = pytest.mark.slow

SMALL = ["--num_epochs=1", "--validation_size=1000", "--train_size=5000", "--noprogress",
         "--notensorboard"]


@pytest.mark.parametrize("module,flag,message", [
    ("experiments.gan", "--hidden_sizes=64", "--hidden_sizes does not apply to dcgan"),
    ("experiments.gan", "--folds=3", "--folds does not apply to dcgan (trained for adversarial)"),
    ("experiments.autoencoder", "--latent_size=2", "--latent_size does not apply to ae"),
    ("experiments.autoencoder", "--model=cnn", "experiments.autoencoder trains ae, conv_ae, vae"),
    ("experiments.gan", "--model=vae", "experiments.gan trains dcgan, got --model=vae (trained "
                                       "for elbo: experiments.autoencoder)"),
    ("experiments.mnist", "--model=ae", "experiments.mnist trains mlp, cnn, cnn_small, "
                                        "cifar_convnet, rnn, lstm, gru, got --model=ae"),
])
def test_a_setting_that_does_not_belong_is_one_line_before_any_data(run_module, tmp_path, module,
                                                                     flag, message):
  (tmp_path / "archives").mkdir()  # no archives in it: no data could be read
  result = run_module(module, flag, f"--archive_dir={tmp_path / 'archives'}",
                      f"--workdir={tmp_path / 'work'}")
  assert result.returncode == 1
  (line,) = result.stderr.strip().splitlines()
  assert line.startswith(f"error: {message}")
  assert not (tmp_path / "work").exists()


def test_an_autoencoder_is_compared_with_pca(run_module, mnist_data_dir, tmp_path):
  result = run_module("experiments.autoencoder", "--model=ae", "--code_size=16", "--num_epochs=2",
                      "--validation_size=1000", "--train_size=10000", "--noprogress", "--notensorboard",
                      f"--tfds_data_dir={mnist_data_dir}", f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr[-2000:]
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["model"] == "ae" and summary["pca_components"] == 16
  # Reconstructing every image as the training mean (the first thing a decoder learns) gives
  # 0.068 per pixel; measured after 2 epochs on 10 000 images: 0.029 at the constant α (0.039 with
  # the cosine decay; PCA-16: 0.027).
  assert 0 < summary["test_reconstruction_mse"] < 0.055
  assert 0.02 < summary["pca_test_reconstruction_mse"] < 0.035
  assert {"reconstructions.png", "training_curves.png"} <= set(summary["figures"])


def test_a_vae_with_a_2d_latent_draws_its_codes_and_manifold(run_module, trained,
                                                            mnist_data_dir, tmp_path):
  result = run_module("experiments.autoencoder", "--model=vae", "--latent_size=2", *SMALL,
                      f"--scorer_workdir={trained('cnn')}", f"--tfds_data_dir={mnist_data_dir}",
                      f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr[-2000:]
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert 100 < summary["test_neg_elbo"] < 250  # nats per image; measured: 178
  assert 1 <= summary["classifier_score"] <= summary["real_classifier_score"] <= 10
  assert len(summary["class_shares"]) == 10 and sum(summary["class_shares"]) == pytest.approx(1)
  assert summary["frechet_distance"] > 0
  assert {"latent_space.png", "manifold.png", "samples.png"} <= set(summary["figures"])
  assert Image.open(tmp_path / "manifold.png").size[0] > 300
  refused = run_module("scripts.export", f"--workdir={tmp_path}", f"--output={tmp_path / 'x'}")
  assert refused.returncode == 1 and refused.stderr.strip().splitlines() == [
      f"error: {tmp_path} holds a vae model (trained for elbo), not a classifier: only "
      "experiments.mnist's classifiers are exported, served and predicted with"]
  assert not (tmp_path / "x").exists()


def test_a_gan_trains_an_epoch_and_scores_its_samples(run_module, trained, mnist_data_dir,
                                                     tmp_path):
  result = run_module("experiments.gan", *SMALL, f"--scorer_workdir={trained('cnn')}",
                      f"--tfds_data_dir={mnist_data_dir}", f"--workdir={tmp_path}",
                      env=USERS_COMPILER)
  assert result.returncode == 0, result.stderr[-2000:]
  summary = json.loads((tmp_path / "summary.json").read_text())
  for key in ("classifier_score", "real_classifier_score", "frechet_distance", "class_shares"):
    assert key in summary
  (row,) = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  for key in ("train_loss", "train_generator_loss", "train_d_real", "train_d_fake",
              "sample_classifier_score", "sample_frechet_distance"):
    assert key in row
  assert (tmp_path / "samples_epoch_01.png").exists()
  assert "epoch 1:" in result.stderr and "D(G(z))" in result.stderr
