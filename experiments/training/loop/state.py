"""The training state of a run's members: one pytree, with a leading member axis when K > 1.

Everything that differs between members is an array in the state: the
parameters and batch statistics, the optimizer state (which holds α and the
hyperparameters through ``optax.inject_hyperparams``), the step key, and
the penalty weights and dropout rate. So one compiled program, ``jax.vmap``ped
over the member axis, advances all K members (for K = 1, the state has no
member axis and the program is not vmapped).
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax.training import train_state

from experiments.training.loop import run as run_lib
from experiments.training.settings.config import TrainConfig
from models import networks
from models import regularizers


class TrainState(train_state.TrainState):
  """Flax's TrainState (step, params, opt_state) plus what the other settings need.

  ``batch_stats``: batch normalization's running means and variances (empty
  without batch norm), updated by each training step, not by the optimizer.
  ``key``: step t's randomness (dropout masks, a VAE's z, a GAN's noise) is
  drawn from fold_in(key, t), so every step gets a fresh, reproducible key
  without carrying a key chain.
  ``penalty``: the weights λ1, λ2 of the penalty added to the loss (a term is
  None when no member of the run uses it). ``dropout``: the dropout rate
  (None when no member uses dropout).
  """

  batch_stats: Any
  key: jax.Array
  penalty: regularizers.Penalty = regularizers.Penalty()
  dropout: jax.Array | None = None

  @property
  def variables(self) -> dict:
    """What ``apply_fn`` takes: {"params"[, "batch_stats"]}."""
    if self.batch_stats:
      return {"params": self.params, "batch_stats": self.batch_stats}
    return {"params": self.params}


@jax.jit  # one compiled call, not an eager dispatch per split and unstack
def seed_keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The (initialization, step, shuffling) keys derived from a seed."""
  init_key, step_key, shuffle_key = jax.random.split(jax.random.key(seed), 3)
  return init_key, step_key, shuffle_key


def init_variables(run: run_lib.Run, seed: int) -> dict:
  """The initial {"params"[, "batch_stats"]} of the run's model for ``seed``."""
  return networks.init_variables(run.model, seed_keys(seed)[0], run.input_shape)


def member_state(run: run_lib.Run, member: TrainConfig) -> TrainState:
  """The state of ``member`` at step 0, its optional terms as the run decided."""
  variables = init_variables(run, member.seed)
  value = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
  penalty = regularizers.Penalty(value(member.l1) if run.terms.l1 else None,
                                 value(member.l2) if run.terms.l2 else None)
  return TrainState.create(
      apply_fn=run.model.apply, params=variables["params"], tx=run.objective.optimizer(run, member),
      batch_stats=variables.get("batch_stats", {}), key=seed_keys(member.seed)[1],
      penalty=penalty, dropout=value(member.dropout) if run.terms.dropout else None)


def stack(states: list[TrainState]) -> TrainState:
  """Member states stacked along a new leading axis; the first member's ``tx`` runs them all.

  Every member's optimizer has the same structure and reads its α and
  hyperparameters from its own state, so one ``tx`` serves all of them.
  """
  treedef = jax.tree.structure(states[0])  # holds the first member's tx
  leaves = zip(*(jax.tree.leaves(s) for s in states), strict=True)
  return jax.tree.unflatten(treedef, [jnp.stack(xs) for xs in leaves])


def initial_state(run: run_lib.Run) -> TrainState:
  """Every member's state at step 0: stacked (K, ...), or the one member's when K = 1.

  Built by one compiled program, since initializing op by op dispatches
  dozens of small computations.
  """
  if run.size == 1:
    return jax.jit(lambda: member_state(run, run.config))()
  return jax.jit(lambda: stack([member_state(run, m) for m in run.members]))()

