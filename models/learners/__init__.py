"""The course's learners that are not networks, as pure JAX functions.

Each module holds one learner: a ``Settings`` dataclass whose defaults are
scikit-learn's, ``fit(settings, x, y, key) -> params`` (a pytree) and
``predict(params, x)``. Settings that change no shape are pytree leaves, so
``jax.vmap`` over them fits a grid in one compiled program; the others
(sizes, kernels, iteration limits) are static.
"""
