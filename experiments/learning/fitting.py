"""Fits a learner on a Tabular split and scores it: compiled, timed, and beside scikit-learn's.

``fit`` and ``predict`` are compiled ahead of time (``experiments/timing.py``)
so that compiling, fitting and predicting are timed apart; XLA's own memory
analysis of each compiled program gives the bytes it holds besides its
arguments and results (``*_temp_bytes``). Scores: accuracy for classes,
R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² for regression.
"""

import dataclasses
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from experiments import timing
from experiments.learning import catalogue
from experiments.learning.tabular import Tabular


def score(y, predictions, num_classes: int) -> float:
  """Accuracy, or R² when ``num_classes`` is 0."""
  y, predictions = np.asarray(y, np.float64), np.asarray(predictions, np.float64)
  if num_classes:
    return float(np.mean(y == predictions))
  return float(1.0 - np.sum((y - predictions) ** 2) / np.sum((y - y.mean()) ** 2))


def score_name(num_classes: int) -> str:
  return "test_accuracy" if num_classes else "test_r2"


def num_parameters(params) -> int:
  """The numbers the fitted model holds (for k-NN, the training set itself)."""
  return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params.replace(settings=None))))


def solver_figures(params) -> dict:
  """The fitted model's scalar facts (L-BFGS steps, passes, the gradient reached, inertia)."""
  values = {field.name: getattr(params, field.name) for field in dataclasses.fields(params)}
  return {name: value.item() for name, value in values.items()
          if isinstance(value, jax.Array) and value.size == 1}


LIBRARIES = ("sklearn", "lightgbm")  # what a learner compares with


def fit_and_score(name: str, settings, data: Tabular, key,
                  compare: tuple[str, ...] = ()) -> tuple[object, dict, np.ndarray]:
  """(params, figures of the run, test predictions) of ``name``'s learner with ``settings``
  on ``data``; for each library of ``compare`` (LIBRARIES), its twin's figures, its keys
  prefixed with the library's name, and the differences."""
  learner = catalogue.LEARNERS.get(name)
  module = learner.module
  x, y, x_test = (jnp.asarray(a) for a in (data.x_train, data.y_train, data.x_test))
  fit = timing.compile_and_run(module.fit, settings, x, y, key)
  params = fit.out if learner.compact is None else learner.compact(fit.out)
  predict = timing.compile_and_run(module.predict, params, x_test)
  predictions = np.asarray(predict.out)
  result = {
      score_name(data.num_classes): score(data.y_test, predictions, data.num_classes),
      "fit_seconds": fit.seconds, "predict_seconds": predict.seconds,
      "compile_seconds": fit.compile_seconds + predict.compile_seconds,
      "fit_temp_bytes": fit.temp_bytes, "predict_temp_bytes": predict.temp_bytes,
      "num_parameters": num_parameters(params), **solver_figures(params),
  }
  for library in compare:
    logging.info("fitting %s's %s", library, name)
    result.update(_compare(name, library, settings, params, data, predictions))
  return params, result, predictions


def _compare(name: str, library: str, settings, params, data: Tabular, predictions) -> dict:
  """The library's same learner fitted and timed on the same data, and the differences."""
  learner = catalogue.LEARNERS.get(name)
  twin = learner.twin if library == "sklearn" else learner.lightgbm
  estimator = twin(settings, data.num_classes == 0)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    start = time.perf_counter()
    estimator.fit(data.x_train, data.y_train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    theirs = learner.twin_predict(estimator, data)
    predict_seconds = time.perf_counter() - start
  out = {
      f"{library}_{score_name(data.num_classes)}": score(data.y_test, theirs, data.num_classes),
      f"{library}_fit_seconds": fit_seconds, f"{library}_predict_seconds": predict_seconds,
      f"{library}_warnings": sorted({str(w.message).split("\n")[0] for w in caught}),
  }
  differences = {}
  if data.num_classes:
    differences["prediction_agreement"] = float(np.mean(np.asarray(predictions) == theirs))
  else:
    differences["largest_prediction_difference"] = float(np.max(np.abs(
        np.asarray(predictions) - theirs)))
  if learner.learned is not None:
    differences.update(learner.learned(params, estimator, data))
  # scikit-learn's differences unprefixed (the usual comparison), another library's prefixed
  return {**out, **{key if library == "sklearn" else f"{library}_{key}": value
                    for key, value in differences.items()}}
