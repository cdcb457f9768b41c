r"""The optimizer table: six names, each in two forms, Optax's and the textbook's.

With gradient g_t and step size α, the **textbook** forms apply exactly the
course's update rules; the **optax** forms are Optax's standard aliases
(``optax.sgd``, ``optax.adagrad``, ...), which differ from several of them.
Both forms are built from Optax GradientTransformations ending in
``optax.scale_by_learning_rate``, so α may be a schedule.

ε convention of the textbook forms: a power of an accumulator that can be 0
is taken with ε inside the root, v^{-1/2} := (v + ε)^{-1/2} and
D^{1/2} := (D + ε)^{1/2} (Zeiler's RMS[x] = sqrt(E[x²] + ε)). Without it
Adadelta's D_0 = 0 would never move, and RMSprop and Adam would divide 0 by 0
on a weight whose gradient has always been 0 (a dead ReLU's). Adagrad also
sets the step to 0 where G_t = 0 (Optax's ``scale_by_rss`` convention).

Default step sizes are peak rates for the experiments' cosine schedule at
batch 128, chosen on MNIST so that every (name, form) trains the
784-512-512-10 MLP to > 95% test accuracy in 2 epochs (README, Optimizers).
Textbook Adagrad starts from G_0 = 0, so its first step moves every weight by
about α, hence a small α. Textbook momentum averages instead of summing,
hence α = 0.5 where Optax's heavy ball has 0.05.

``python -m scripts.doc_tables`` renders the table (rules, defaults and
the exact differences) into the README from this module.
"""

import inspect
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from data import errors
from models import regularizers

FORMS = errors.Registry("optimizer_form", {"optax": "Optax's alias", "textbook": "the course's rule"})

# Hyperparameter names (as flags) and the symbols the rules use for them.
SYMBOLS = {"momentum": "γ", "b1": "β1", "b2": "β2", "eps": "ε", "initial_accumulator": "G_0"}


class Form(NamedTuple):
  """One way to write an optimizer.

  make(learning_rate, **hyperparameters) builds the GradientTransformation;
  ``hyperparameters`` names the ones this form takes, with their defaults.
  """

  make: Callable[..., optax.GradientTransformation]
  default_learning_rate: float
  hyperparameters: dict[str, float]
  rule: str


class Optimizer(NamedTuple):
  optax: Form
  textbook: Form
  difference: str  # what the optax form does differently, exactly


class ScaleByAdadeltaState(NamedTuple):
  v: Any  # E[g²], decay β2
  d: Any  # E[(Δθ/α)²], decay β1


def scale_by_adadelta(b1: float, b2: float, eps: float) -> optax.GradientTransformation:
  """Adadelta with a decay rate for each accumulator; returns u_t, to be scaled by -α.

  v_t = β2 v_{t-1} + (1 - β2) g_t²,  u_t = g_t (D_{t-1} + ε)^{1/2} (v_t + ε)^{-1/2},
  D_t = β1 D_{t-1} + (1 - β1) u_t²,  with v_0 = D_0 = 0.
  With β1 = β2 = ρ this is ``optax.scale_by_adadelta(ρ, ε)``.
  """

  def init_fn(params):
    return ScaleByAdadeltaState(optax.tree.zeros_like(params), optax.tree.zeros_like(params))

  def update_fn(updates, state, params=None):
    del params
    v = optax.tree.update_moment(updates, state.v, b2, 2)
    updates = jax.tree.map(
        lambda g, v_t, d: g * jnp.sqrt(d + eps) * jax.lax.rsqrt(v_t + eps), updates, v, state.d
    )
    d = optax.tree.update_moment(updates, state.d, b1, 2)
    return updates, ScaleByAdadeltaState(v, d)

  return optax.GradientTransformation(init_fn, update_fn)


def _descend(transform: optax.GradientTransformation, learning_rate) -> optax.GradientTransformation:
  """Δθ_t = -α_t · transform(g)_t."""
  return optax.chain(transform, optax.scale_by_learning_rate(learning_rate))


OPTIMIZERS = errors.Registry("optimizer", {
    "sgd": Optimizer(
        optax=Form(optax.sgd, 0.5, {}, "Δθ = -α g"),
        textbook=Form(
            lambda learning_rate: optax.scale_by_learning_rate(learning_rate), 0.5, {},
            "Δθ_t = -α g_t"),
        difference="none: the same update",
    ),
    "momentum": Optimizer(
        optax=Form(
            lambda learning_rate, momentum: optax.sgd(learning_rate, momentum=momentum),
            0.05, {"momentum": 0.9}, "m = γ m + g (heavy ball); Δθ = -α m"),
        textbook=Form(
            lambda learning_rate, momentum: _descend(
                optax.ema(momentum, debias=False), learning_rate),
            0.5, {"momentum": 0.9}, "m_t = γ m_{t-1} + (1 - γ) g_t; Δθ_t = -α m_t"),
        difference=(
            "Optax accumulates g instead of averaging it: m_optax = m / (1 - γ) at every "
            "step, so optax at α(1 - γ) equals textbook at α (hence defaults 0.05 vs 0.5)"),
    ),
    "adagrad": Optimizer(
        optax=Form(
            lambda learning_rate, initial_accumulator, eps: optax.adagrad(
                learning_rate, initial_accumulator_value=initial_accumulator, eps=eps),
            0.2, {"initial_accumulator": 0.1, "eps": 1e-7},
            "G = G + g²; Δθ = -α g (G + ε)^{-1/2}"),
        textbook=Form(
            lambda learning_rate, initial_accumulator, eps: _descend(
                optax.scale_by_rss(initial_accumulator_value=initial_accumulator, eps=eps),
                learning_rate),
            0.02, {"initial_accumulator": 0.0, "eps": 1e-8},
            "G_t = G_{t-1} + g_t²; Δθ_t = -α g_t (G_t + ε)^{-1/2}"),
        difference=(
            "same rule, different defaults: Optax starts the accumulator at G_0 = 0.1 "
            "(textbook 0), which damps the first steps, and uses ε = 1e-7"),
    ),
    "adadelta": Optimizer(
        optax=Form(
            lambda learning_rate, b2, eps: optax.adadelta(learning_rate, rho=b2, eps=eps),
            1.0, {"b2": 0.9, "eps": 1e-6},
            "v = ρ v + (1 - ρ) g²; u = g (D + ε)^{1/2} (v + ε)^{-1/2}; "
            "D = ρ D + (1 - ρ) u²; Δθ = -α u, with ρ = β2"),
        textbook=Form(
            lambda learning_rate, b1, b2, eps: _descend(
                scale_by_adadelta(b1, b2, eps), learning_rate),
            1.0, {"b1": 0.9, "b2": 0.9, "eps": 1e-6},
            "v_t = β2 v_{t-1} + (1 - β2) g_t²; Δθ_t = -α g_t (v_t + ε)^{-1/2} (D_{t-1} + ε)^{1/2}; "
            "D_t = β1 D_{t-1} + (1 - β1) (Δθ_t/α)²"),
        difference=(
            "Optax has one decay rate ρ for both accumulators (the optax form takes it as "
            "--b2); the two coincide when β1 = β2"),
    ),
    "rmsprop": Optimizer(
        optax=Form(
            lambda learning_rate, b2, eps: optax.rmsprop(learning_rate, decay=b2, eps=eps),
            1e-3, {"b2": 0.9, "eps": 1e-8}, "v = β2 v + (1 - β2) g²; Δθ = -α g (v + ε)^{-1/2}"),
        textbook=Form(
            lambda learning_rate, b2, eps: _descend(
                optax.scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=True), learning_rate),
            1e-3, {"b2": 0.9, "eps": 1e-8},
            "v_t = β2 v_{t-1} + (1 - β2) g_t²; Δθ_t = -α g_t (v_t + ε)^{-1/2}"),
        difference="none: the same update (Optax also puts ε inside the root)",
    ),
    "adam": Optimizer(
        optax=Form(
            lambda learning_rate, b1, b2, eps: optax.adam(learning_rate, b1=b1, b2=b2, eps=eps),
            1e-3, {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
            "m, v, m̂, v̂ as textbook; Δθ = -α m̂ / (v̂^{1/2} + ε)"),
        textbook=Form(
            lambda learning_rate, b1, b2, eps: _descend(
                optax.scale_by_adam(b1=b1, b2=b2, eps=0.0, eps_root=eps), learning_rate),
            1e-3, {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
            "m_t = β1 m_{t-1} + (1 - β1) g_t; v_t = β2 v_{t-1} + (1 - β2) g_t²; "
            "m̂_t = m_t/(1 - β1^t); v̂_t = v_t/(1 - β2^t); Δθ_t = -α m̂_t (v̂_t + ε)^{-1/2}"),
        difference=(
            "ε sits outside the root in Optax, (v̂^{1/2} + ε)^{-1}, inside in the textbook "
            "form; identical when ε = 0"),
    ),
})


def form(name: str, form_name: str = "optax") -> Form:
  """The Form ``form_name`` of optimizer ``name``; UserError if either is unknown."""
  optimizer = OPTIMIZERS.get(name)
  return getattr(optimizer, FORMS.check(form_name))


def resolve_hyperparameters(
    name: str, form_name: str, given: Mapping[str, float | None]
) -> dict[str, float]:
  """The form's hyperparameters: its defaults, overridden by the non-None values in ``given``.

  Raises UserError on an out-of-range value or on one this form does not take.
  """
  spec = form(name, form_name)
  given = {k: v for k, v in given.items() if v is not None}
  unused = sorted(set(given) - set(spec.hyperparameters))
  if unused:
    takes = ", ".join(f"--{k}" for k in spec.hyperparameters) or "none"
    raise errors.UserError(
        f"{name} ({form_name} form) does not take --{unused[0]}; it takes: {takes}")
  values = {**spec.hyperparameters, **given}
  for key, value in values.items():
    if key in ("momentum", "b1", "b2"):
      errors.check_number(key, value, 0.0, 1.0)
    else:  # eps > 0, initial_accumulator >= 0
      errors.check_number(key, value, 0.0, low_open=key == "eps")
  return {k: float(v) for k, v in values.items()}


def create_optimizer(
    name: str,
    form_name: str = "optax",
    learning_rate: float | None = None,
    hyperparameters: Mapping[str, float | None] | None = None,
    schedule: optax.Schedule | None = None,
    clip_norm: float | None = None,
    weight_decay: float | None = None,
) -> optax.GradientTransformation:
  """Optimizer ``name`` in form ``form_name``, stepping by α_t = α s(t).

  α and the hyperparameters are wrapped by ``optax.inject_hyperparams``: they
  live in the optimizer state as arrays, so models trained together under
  ``jax.vmap`` can each have their own, and ``opt_state.hyperparams`` shows
  them. The schedule s (peak 1) multiplies the update last, which equals
  scheduling α itself because every form ends in ``scale_by_learning_rate``.

  Args:
    name: a key of OPTIMIZERS.
    form_name: "optax" or "textbook".
    learning_rate: the peak α; None: the form's default.
    hyperparameters: overrides of the form's defaults (None values are ignored).
    schedule: s(t) with s(0) = 1 at its peak (models/schedules.py); None: s = 1.
    clip_norm: if set, g is first rescaled to g · min(1, c / ||g||), with ||g|| the
      global norm over all parameters (``optax.clip_by_global_norm``).
    weight_decay: λ of decoupled weight decay (Loshchilov & Hutter's AdamW
      rule for any optimizer): Δθ_t = -α_t (d_t + λ θ_{t-1}) on the weights
      (models/regularizers.py), d_t the optimizer's own direction. Unlike an
      L2 penalty, λ θ bypasses the optimizer's scaling; with plain SGD the
      two coincide. λ is injected like α (``opt_state.hyperparams``). None
      leaves the decay out of the chain; 0.0 keeps it with λ = 0 (for models
      trained together where some decay and some do not).
  """
  spec = form(name, form_name)
  values = resolve_hyperparameters(name, form_name, hyperparameters or {})
  learning_rate = spec.default_learning_rate if learning_rate is None else learning_rate
  if weight_decay is None:
    tx = optax.inject_hyperparams(spec.make)(learning_rate, **values)
  else:
    if not weight_decay >= 0:
      raise errors.UserError(f"weight_decay must be >= 0, got {weight_decay}")

    def decayed(learning_rate, weight_decay, **hyperparameters):
      return optax.chain(
          spec.make(learning_rate, **hyperparameters),
          optax.add_decayed_weights(-learning_rate * weight_decay, regularizers.weight_mask))

    # inject_hyperparams finds the hyperparameters by name in the signature.
    decayed.__signature__ = inspect.Signature(
        [inspect.Parameter(k, inspect.Parameter.POSITIONAL_OR_KEYWORD)
         for k in ("learning_rate", "weight_decay", *values)])
    tx = optax.inject_hyperparams(decayed)(learning_rate, weight_decay, **values)
  if schedule is not None:
    tx = optax.chain(tx, optax.scale_by_schedule(schedule))
  if clip_norm is not None:
    tx = optax.chain(optax.clip_by_global_norm(clip_norm), tx)
  return tx


def describe(name: str, form_name: str, hyperparameters: Mapping[str, float]) -> str:
  """One line saying which update runs, e.g. ``momentum (textbook): m_t = ...; γ = 0.9``."""
  values = ", ".join(f"{SYMBOLS[k]} = {v:g}" for k, v in hyperparameters.items())
  rule = form(name, form_name).rule
  return f"{name} ({form_name}): {rule}" + (f"; {values}" if values else "")
