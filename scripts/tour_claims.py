"""The figures the README states, where the tour's commands write them, and whether they agree.

Each claim is a figure of the README (the number in braces, found with its
words around it, once) and the JSON value a tour's command writes. It holds
when the two differ by at most one unit of the stated figure's last digit (a
rerun on another machine may round the other way), or by its relative
tolerance for a time or a speed, which depend on the machine; or, for a
bound (``>=``, ``<=``), when the measured figure keeps it. Read by
``scripts/tour.py``.
"""

import dataclasses
import os
import re

from data import files
from data.errors import UserError


@dataclasses.dataclass(frozen=True)
class Claim:
  """A figure of the README (the braced number in ``text``) and where a command writes it.

  ``source`` is ``FILE:PATH`` under the root; PATH is dotted keys or list indices,
  ``[key=value]`` picks the row of a list, ``min``/``max`` reduce a list, ``P+Q`` adds
  two paths. ``compare`` is ``=`` (within ``relative`` of the stated figure if given, else
  one unit of its last digit), ``>=`` or ``<=``.
  """
  text: str
  source: str
  scale: float = 1.0
  compare: str = "="
  relative: float | None = None


SPEED = 0.3  # a time or a speed: the same machine, quiet, repeats within this fraction
CLAIMS = (
    Claim("({99.34}% test accuracy", "mnist/summary.json:test_accuracy", 100),
    Claim("about {6} minutes on 2 CPU cores", "tour.json:stops.[number=5].seconds", 1 / 60, relative=SPEED),
    Claim("LMS reaches {99.53}%", "classic_lms/summary.json:test_accuracy", 100),
    Claim("{98.4}% test accuracy in 10 epochs", "mlp/summary.json:test_accuracy", 100),
    Claim("about {38 000} images/s", "mlp/summary.json:train_images_per_second",
          relative=SPEED),
    Claim("over {96.7}% in 2 epochs", "adadelta/summary.json:test_accuracy", 100, ">="),
    Claim("reaches {92.39}% on Fashion-MNIST", "fashion_bn/summary.json:test_accuracy", 100),
    Claim("in 3 epochs ({128} s on 2 cores)", "tour.json:stops.[number=7].seconds",
          relative=SPEED),
    Claim("MLP in 3 epochs: {97.59} ±",
          "folds_tour/summary.json:cross_validation.validation_accuracy_mean", 100),
    Claim("97.59 ± {0.08}%",
          "folds_tour/summary.json:cross_validation.validation_accuracy_std", 100),
    Claim("± 0.08% ({34} s on 2 cores)", "tour.json:stops.[number=8].commands.0.seconds",
          relative=SPEED),
    Claim("18 MLPs take {137} s", "tour.json:stops.[number=8].commands.1.seconds",
          relative=SPEED),
    Claim("with α = {0.003}", "sweep_tour/sweep.json:selected.learning_rate"),
    Claim("validation {98.19} ±", "sweep_tour/sweep.json:selected.validation_accuracy_mean", 100),
    Claim("98.19 ± {0.03}%", "sweep_tour/sweep.json:selected.validation_accuracy_std", 100),
    Claim("test {98.32} ±", "sweep_tour/sweep.json:selected.test_accuracy_mean", 100),
    Claim("98.32 ± {0.02}%", "sweep_tour/sweep.json:selected.test_accuracy_std", 100),
    Claim("LSTM {98.55}%", "lstm/summary.json:test_accuracy", 100),
    Claim("test error of {0.0036}", "autoencoder/summary.json:test_reconstruction_mse"),
    Claim("against {0.0090} for PCA", "autoencoder/summary.json:pca_test_reconstruction_mse"),
    Claim("−ELBO of {154.5} nats", "vae/summary.json:test_neg_elbo"),
    Claim("classifier score of {8.32} of 10", "gan/summary.json:classifier_score"),
    Claim("(real digits: {9.89})", "gan/summary.json:real_classifier_score"),
    Claim("20 epochs (about {48} minutes)", "tour.json:stops.[number=10].commands.2.seconds",
          1 / 60, relative=SPEED),
    Claim("every class between {7}%", "gan/summary.json:class_shares.min", 100, ">="),
    Claim("and {13}% (", "gan/summary.json:class_shares.max", 100, "<="),
    Claim("reaches {97.22}% on MNIST", "kernel_svm/summary.json:test_accuracy", 100),
    Claim("against `SVC`'s {96.88}%", "kernel_svm/summary.json:sklearn_test_accuracy", 100),
    Claim("predicts in {6.4} s", "kernel_svm/summary.json:fit_seconds+predict_seconds",
          relative=SPEED),
    Claim("against {29.9} s;", "kernel_svm/summary.json:sklearn_fit_seconds+sklearn_predict_seconds",
          relative=SPEED),
    Claim("scikit-learn's ({97.05}%)",
          "docs/model_choice_mnist.json:rows.[learner=knn].test_accuracy", 100),
    Claim("reaches {86.68}% against",
          "docs/model_choice_mnist.json:rows.[learner=tree].test_accuracy", 100),
    Claim("`DecisionTreeClassifier`'s {86.56}%",
          "docs/model_choice_mnist.json:rows.[learner=tree].sklearn_test_accuracy", 100),
    Claim("trees vmapped) {96.86}%",
          "docs/model_choice_mnist.json:rows.[learner=forest].test_accuracy", 100),
    Claim("`RandomForestClassifier`'s {96.98}%",
          "docs/model_choice_mnist.json:rows.[learner=forest].sklearn_test_accuracy", 100),
    Claim("{97.89}% against `HistGradientBoostingClassifier`'s",
          "docs/model_choice_mnist.json:rows.[learner=boosting].test_accuracy", 100),
    Claim("`HistGradientBoostingClassifier`'s {97.83}%",
          "docs/model_choice_mnist.json:rows.[learner=boosting].sklearn_test_accuracy", 100),
    Claim("{486} s to fit", "docs/model_choice_mnist.json:rows.[learner=boosting].fit_seconds",
          relative=SPEED),
    Claim("against {199} s and",
          "docs/model_choice_mnist.json:rows.[learner=boosting].sklearn_fit_seconds",
          relative=SPEED),
    Claim("2 million steps each in {4.7} s", "rl8x8/summary.json:train_seconds", relative=SPEED),
    Claim("success of {0.851}", "rl8x8/summary.json:greedy_success_mean"),
    Claim("against {0.863} for the optimal", "rl8x8/summary.json:optimal_success"),
)


def normalized(text: str) -> str:
  """``text`` with each run of white space one space (prose wraps anywhere)."""
  return " ".join(text.split())


def _lookup(value, path: str):
  for key in path.split("."):
    if key in ("min", "max") and isinstance(value, list):
      value = min(value) if key == "min" else max(value)
    elif key.isdigit() and isinstance(value, list):
      value = value[int(key)]
    elif key.startswith("["):
      field, wanted = key[1:-1].split("=")
      value = next(row for row in value if str(row.get(field)) == wanted)
    else:
      value = value[key]
  return value


def measure(claim: Claim, root: str) -> dict:
  """The claim's stated and measured figures, and whether they agree."""
  stated_text = re.search(r"\{(.*?)\}", claim.text)[1]
  stated = float(stated_text.replace(" ", ""))
  name, path = claim.source.split(":")
  data = files.read_json(os.path.join(root, name))  # UserError naming a missing or damaged file
  measured = claim.scale * sum(_lookup(data, p) for p in path.split("+"))
  if claim.compare == ">=":
    ok = measured >= stated
  elif claim.compare == "<=":
    ok = measured <= stated
  elif claim.relative is not None:
    ok = abs(measured - stated) <= claim.relative * stated
  else:
    decimals = len(stated_text.partition(".")[2])
    ok = abs(round(measured, decimals) - stated) <= 1.01 * 10**-decimals
  return {"text": claim.text, "source": claim.source, "stated": stated,
          "measured": measured, "compare": claim.compare, "holds": bool(ok)}


def claims_in(readme: str) -> list[Claim]:
  """Each claim whose words (braces dropped) the README holds once; UserError for any other."""
  text = normalized(readme)
  for claim in CLAIMS:
    if text.count(claim.text.replace("{", "").replace("}", "")) != 1:
      raise UserError(f"the README does not hold {claim.text!r} once: update scripts/tour_claims.py")
  return list(CLAIMS)


def writers(claims: list[Claim], commands: dict[int, list[str]], root: str) -> dict[Claim, int]:
  """The stop whose (relocated) commands write each claim's file: the first naming its folder;
  a claim no command names is left out."""
  out = {}
  for claim in claims:
    name, path = claim.source.split(":")
    if name == "tour.json":  # a time the tour measured: stops.[number=N]...
      out[claim] = int(re.search(r"\[number=(\d+)\]", path)[1])
      continue
    folder = os.path.join(root, name.split("/")[0])
    found = [n for n, cs in commands.items() if any(re.search(re.escape(folder) + r"(/|\s|$)", c)
                                                   for c in cs)]
    if found:
      out[claim] = found[0]
  return out
