"""The benchmark's models in PyTorch, trained the same way, for ``scripts.benchmark --compare=torch``.

Each model of ``models/networks.py`` is written again in PyTorch layer by
layer (NCHW; PyTorch's default initializations, which do not change the
speed; the recurrent models as PyTorch's fused nn.RNN, nn.LSTM and nn.GRU,
batch first) and trained with the same optimizer rule, α and cosine schedule, batch
size and number of updates, on the same uint8 MNIST arrays. PyTorch gets its
fastest setting: the whole training split as one float32 NCHW tensor in
memory, indexed per batch. Eager mode and ``torch.compile`` are timed.
PyTorch is an optional dependency: ``pip install -e '.[bench]'``.
"""

import math
import time

import numpy as np

from data.errors import UserError
from models import recurrent

TORCH_OPTIMIZERS = ("sgd", "momentum", "adam")  # the rules PyTorch has exactly


def _torch():
  try:
    import torch
  except ImportError:
    raise UserError("--compare=torch needs PyTorch: pip install -e '.[bench]'") from None
  return torch


def _recurrent(name: str, config, num_classes: int):
  """PyTorch's nn.RNN / nn.LSTM / nn.GRU (batch first) reading the image as ``config`` says,
  its last step's state through a linear layer to the logits."""
  torch = _torch()
  widths = set(config.hidden_sizes)
  if len(widths) != 1:
    raise UserError("--compare=torch times recurrent layers of one width (PyTorch's num_layers), "
                    f"got {','.join(map(str, config.hidden_sizes))}")
  width, layers, directions = widths.pop(), len(config.hidden_sizes), 1 + config.bidirectional
  kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[name]
  extra = {"nonlinearity": config.activation} if name == "rnn" else {}
  if extra and config.activation not in ("tanh", "relu"):
    raise UserError(f"PyTorch's nn.RNN has tanh and relu, not {config.activation}")
  order = (np.asarray(recurrent.as_sequence(np.arange(784).reshape(1, 28, 28, 1), config.sequence))
           .reshape(-1).astype(np.int64) if config.sequence != "rows" else None)

  class Twin(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.layers = kind(28 if order is None else 1, width, layers, batch_first=True,
                         bidirectional=bool(config.bidirectional), **extra)
      self.head = torch.nn.Linear(directions * width, num_classes)

    def forward(self, x):  # x: (B, 1, 28, 28)
      x = x.reshape(x.shape[0], 28, 28) if order is None else x.reshape(x.shape[0], 784, 1)[
          :, order]
      states, _ = self.layers(x)
      last = states[:, -1] if directions == 1 else torch.cat(
          [states[:, -1, :width], states[:, 0, width:]], dim=-1)
      return self.head(last)

  return Twin()


def build(name: str, config, num_classes: int = 10):
  """The PyTorch twin of ``networks.MODELS[name]`` for 28x28x1 inputs (the recurrent
  models with ``config``'s layers and sequence; the others with their default settings)."""
  torch = _torch()
  nn = torch.nn
  if name in ("rnn", "lstm", "gru"):
    return _recurrent(name, config, num_classes)
  if name == "mlp":
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512),
                         nn.ReLU(), nn.Linear(512, num_classes))
  if name == "cnn_small":
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(7 * 7 * 64, 256), nn.ReLU(), nn.Linear(256, num_classes))
  if name == "cnn":
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(7 * 7 * 64, 1024), nn.ReLU(), nn.Dropout(0.5), nn.Linear(1024, num_classes))
  if name == "vae":
    return _vae(config)
  raise UserError(f"--compare=torch has no PyTorch twin of {name!r}; choose mlp, cnn_small, cnn, "
                  "rnn, lstm, gru, vae")


def _vae(config):
  """PyTorch's example VAE (examples/vae): 784-400-(μ, log σ²) of --latent_size, 20-400-784."""
  torch = _torch()
  nn = torch.nn
  (hidden,), latent = config.hidden_sizes, config.latent_size

  class VAE(nn.Module):
    def __init__(self):
      super().__init__()
      self.fc1, self.fc21, self.fc22 = (nn.Linear(784, hidden), nn.Linear(hidden, latent),
                                        nn.Linear(hidden, latent))
      self.fc3, self.fc4 = nn.Linear(latent, hidden), nn.Linear(hidden, 784)

    def forward(self, x):
      h = torch.relu(self.fc1(x.reshape(x.shape[0], 784)))
      mean, log_variance = self.fc21(h), self.fc22(h)
      z = mean + torch.exp(0.5 * log_variance) * torch.randn_like(mean)
      return self.fc4(torch.relu(self.fc3(z))), mean, log_variance

  return VAE()


def _neg_elbo(outputs, x):
  """-ELBO per image, averaged: Bernoulli cross-entropy summed over pixels plus the KL term."""
  torch = _torch()
  logits, mean, log_variance = outputs
  reconstruction = torch.nn.functional.binary_cross_entropy_with_logits(
      logits, x.reshape(x.shape[0], -1), reduction="sum")
  kl = -0.5 * torch.sum(1 + log_variance - mean.pow(2) - log_variance.exp())
  return (reconstruction + kl) / x.shape[0]


def test_neg_elbo(model, images: np.ndarray) -> float:
  """The VAE twin's -ELBO per test image (one z per image), in nats."""
  torch = _torch()
  x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().float().div_(255.0)
  model.eval()
  with torch.no_grad():
    return float(sum(_neg_elbo(model(x[i:i + 1000]), x[i:i + 1000]) * len(x[i:i + 1000])
                     for i in range(0, len(x), 1000)) / len(x))


def optimizer(params, config):
  """The config's optimizer (optax form) as PyTorch writes it: the same update rule."""
  torch = _torch()
  if config.optimizer_form != "optax" or config.optimizer not in TORCH_OPTIMIZERS:
    raise UserError(f"--compare=torch times {', '.join(TORCH_OPTIMIZERS)} in their optax form, "
                    f"got {config.optimizer} ({config.optimizer_form})")
  if config.schedule not in ("constant", "cosine"):
    raise UserError(f"--compare=torch times the constant and cosine schedules, got {config.schedule}")
  if config.optimizer == "adam":
    return torch.optim.Adam(params, lr=config.learning_rate, betas=(config.b1, config.b2),
                            eps=config.eps)
  momentum = config.momentum if config.optimizer == "momentum" else 0.0
  return torch.optim.SGD(params, lr=config.learning_rate, momentum=momentum)  # heavy ball, as optax


def train(name: str, config, images: np.ndarray, labels: np.ndarray, updates_per_epoch: int,
          compiled: bool) -> dict:
  """Trains the PyTorch twin for ``config.num_epochs`` epochs; its images/s, step times and the
  trained model (a classifier on the cross-entropy, the VAE on the -ELBO per image).

  Images/s counts every update but the first, whose time (torch.compile's
  compilation, eager warm-up) is reported apart, as the JAX side reports
  compilation apart.
  """
  torch = _torch()
  torch.manual_seed(config.seed)
  x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().float().div_(255.0)
  y = torch.from_numpy(labels.astype(np.int64))
  model = build(name, config)
  opt = optimizer(model.parameters(), config)
  total = config.num_epochs * updates_per_epoch
  schedule = torch.optim.lr_scheduler.LambdaLR(
      opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, total) / total))
      if config.schedule == "cosine" else 1.0)
  forward = torch.compile(model) if compiled else model
  loss_fn = (lambda outputs, labels, images: _neg_elbo(outputs, images)) if name == "vae" else (
      lambda outputs, labels, images: torch.nn.functional.cross_entropy(outputs, labels))
  model.train()

  def step(idx):
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(forward(x[idx]), y[idx], x[idx])
    loss.backward()
    opt.step()
    schedule.step()
    return loss

  generator = torch.Generator().manual_seed(config.seed)
  batch = config.batch_size
  first_step_seconds, start = None, None
  for _ in range(config.num_epochs):
    order = torch.randperm(len(y), generator=generator)[:updates_per_epoch * batch]
    for idx in order.view(updates_per_epoch, batch):
      if first_step_seconds is None:
        t = time.perf_counter()
        step(idx).item()
        first_step_seconds = time.perf_counter() - t
        start = time.perf_counter()
        continue
      step(idx)
  seconds = time.perf_counter() - start
  return {"images_per_second": (total - 1) * batch / seconds,
          "first_step_seconds": first_step_seconds, "model": model}
