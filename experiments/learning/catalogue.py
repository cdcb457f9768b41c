"""The learners by name: each one's model module, settings, tasks and scikit-learn twin.

A learner's settings are its ``Settings`` fields; the command's flags carry
the same names, and a flag a learner does not take is refused. Defaults are
the module's, which are scikit-learn's. ``twin`` builds the scikit-learn
estimator with the same settings; ``learned`` compares what the two learned
beyond their predictions (None where only the predictions compare).
"""

import dataclasses
import types
from collections.abc import Callable

import jax
import numpy as np

from data import errors
from models.learners import boosting
from models.learners import forest
from models.learners import kernel_svm
from models.learners import kmeans
from models.learners import knn
from models.learners import linear_svm
from models.learners import logistic
from models.learners import naive_bayes
from models.learners import splits
from models.learners import tree


@dataclasses.dataclass(frozen=True)
class Learner:
  description: str
  module: types.ModuleType
  settings: tuple[str, ...]  # the Settings fields a user may set
  twin: Callable  # (settings, regression) -> an unfitted scikit-learn estimator
  fixed: dict = dataclasses.field(default_factory=dict)  # Settings fields the learner fixes
  regression: bool = False  # whether it also regresses
  learned: Callable | None = None  # (params, estimator, data) -> {name: difference}
  images: Callable | None = None  # params -> (images (K, D), title) to draw, or None
  compact: Callable | None = None  # params -> the same model without what predicts nothing
  twin_predict: Callable = lambda estimator, data: estimator.predict(data.x_test)
  image_train_size: int | None = None  # the first N training images it fits by default
  text: Callable | None = None  # (params, image_shape) -> the model as text, or None
  lightgbm: Callable | None = None  # (settings, regression) -> LightGBM's same learner, unfitted


def _relative(ours, theirs) -> float:
  """max |ours − theirs| / max |theirs|."""
  ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
  return float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300))


def _log_likelihoods(params, estimator, data):
  ours = naive_bayes.joint_log_likelihood(params, data.x_test)
  theirs = estimator.predict_joint_log_proba(data.x_test)
  return {"joint_log_likelihood_relative_difference": float(np.max(
      np.abs(np.asarray(ours, np.float64) - theirs) / np.maximum(np.abs(theirs), 1e-300)))}


def _coefficients(params, estimator, data):
  del data
  return {"coefficient_relative_difference": _relative(params.w.T, estimator.coef_.reshape(
      params.w.T.shape)), "intercept_difference": float(np.max(np.abs(
          np.asarray(params.b) - estimator.intercept_)))}


def _objectives(params, estimator, data):
  """Our dual objective against the primal objective of scikit-learn's weights (equal at the optimum)."""
  s = params.settings
  theirs = np.concatenate([np.atleast_1d(estimator.intercept_)[None],
                           np.atleast_2d(estimator.coef_).T], axis=0).reshape(params.w.shape)
  theirs_primal = np.asarray(linear_svm.primal_objective(s, theirs.astype(np.float32),
                                                         data.x_train, data.y_train), np.float64)
  ours_dual = np.asarray(linear_svm.dual_objective(params, data.y_train), np.float64)
  ours_primal = np.asarray(linear_svm.primal_objective(s, params.w, data.x_train, data.y_train))
  return {"dual_objective": float(ours_dual.sum()), "primal_objective": float(ours_primal.sum()),
          "sklearn_primal_objective": float(theirs_primal.sum()),
          "objective_relative_difference": float(abs(ours_dual.sum() - theirs_primal.sum())
                                                 / abs(theirs_primal.sum()))}


def _inertia(params, estimator, data):
  del data
  return {"inertia": float(params.inertia), "sklearn_inertia": float(estimator.inertia_),
          "inertia_relative_difference": float((params.inertia - estimator.inertia_)
                                               / estimator.inertia_)}


def _knn_twin(s, regression):
  from sklearn import neighbors
  kind = neighbors.KNeighborsRegressor if regression else neighbors.KNeighborsClassifier
  return kind(n_neighbors=s.k, weights=s.weights, algorithm="brute")


def _nb_twin(s, regression):
  from sklearn import naive_bayes as nb
  del regression
  if s.kind == "gaussian":
    return nb.GaussianNB(var_smoothing=s.var_smoothing)
  if s.kind == "bernoulli":
    return nb.BernoulliNB(alpha=s.alpha, binarize=s.binarize)
  return nb.MultinomialNB(alpha=s.alpha)


def _logistic_twin(s, regression):
  from sklearn.linear_model import LogisticRegression
  del regression
  return LogisticRegression(C=s.c, tol=s.tol, max_iter=s.max_iter)


def _linear_svm_twin(s, regression):
  from sklearn import svm
  if regression:
    return svm.LinearSVR(C=s.c, epsilon=s.epsilon, loss="epsilon_insensitive", tol=s.tol,
                         max_iter=s.max_iter, dual=True)
  return svm.LinearSVC(C=s.c, loss="hinge", tol=s.tol, max_iter=s.max_iter, dual=True)


def _kernel_svm_twin(s, regression):
  from sklearn import svm
  del regression
  return svm.SVC(C=s.c, kernel=s.kernel, gamma=s.gamma or "scale", degree=s.degree,
                 coef0=s.coef0, tol=s.tol)


def _kmeans_twin(s, regression):
  from sklearn.cluster import KMeans
  del regression
  return KMeans(s.num_clusters, n_init=s.n_init, max_iter=s.max_iter, tol=s.tol, random_state=0)


def _tree_twin(s, regression):
  from sklearn import tree as sklearn_tree
  kind = sklearn_tree.DecisionTreeRegressor if regression else sklearn_tree.DecisionTreeClassifier
  return kind(criterion=splits.criterion(s), max_depth=s.max_depth,
              min_samples_leaf=int(s.min_samples_leaf), max_features=s.max_features or None,
              random_state=0)


def _tree_shape(params, estimator, data):
  """The two trees' leaves and depths, and their feature importances' largest difference."""
  del data
  leaves = int(np.sum(~np.asarray(params.split) & (np.asarray(
      params.value).sum(axis=1) > 0)))
  return {"leaves": leaves, "sklearn_leaves": int(estimator.get_n_leaves()),
          "sklearn_depth": int(estimator.get_depth()),
          "importance_difference": float(np.max(np.abs(
              np.asarray(params.importance) - estimator.feature_importances_)))}


def _forest_twin(s, regression):
  from sklearn import ensemble
  kind = ensemble.RandomForestRegressor if regression else ensemble.RandomForestClassifier
  return kind(n_estimators=s.num_trees, criterion=splits.criterion(forest.tree_settings(s, 1)),
              max_depth=s.max_depth, min_samples_leaf=int(s.min_samples_leaf),
              max_features=s.max_features or "sqrt", bootstrap=s.bootstrap, oob_score=s.bootstrap,
              n_jobs=-1, random_state=0)


def _forest_shape(params, estimator, data):
  """The out-of-bag scores, the trees' mean leaves and depth, the importances' largest difference."""
  del data
  trees = params.trees
  leaves = np.sum(~np.asarray(trees.split) & (np.asarray(trees.value).sum(axis=2) > 0), axis=1)
  out = {"leaves_per_tree": float(np.mean(leaves)),
         "sklearn_leaves_per_tree": float(np.mean([e.get_n_leaves() for e in estimator.estimators_])),
         "sklearn_depth": int(max(e.get_depth() for e in estimator.estimators_)),
         "importance_difference": float(np.max(np.abs(
             np.asarray(params.importance) - estimator.feature_importances_)))}
  if params.settings.bootstrap:
    out["sklearn_oob_score"] = float(estimator.oob_score_)
  return out


def _boosting_twin(s, regression):
  from sklearn import ensemble
  kind = (ensemble.HistGradientBoostingRegressor if regression else
          ensemble.HistGradientBoostingClassifier)
  return kind(max_iter=s.num_rounds, learning_rate=s.learning_rate, max_leaf_nodes=s.max_leaves,
              max_depth=s.max_depth or None, min_samples_leaf=int(s.min_samples_leaf),
              l2_regularization=s.l2, max_bins=min(s.bins, 255), early_stopping="auto" if s.patience else False,
              validation_fraction=s.validation_fraction or None, n_iter_no_change=s.patience or 10,
              tol=s.tol, scoring="neg_mean_squared_error" if regression else "accuracy",
              random_state=0)


def _boosting_lightgbm(s, regression):
  """LightGBM's same model, trained for every round on every training row (no early stopping)."""
  import lightgbm
  kind = lightgbm.LGBMRegressor if regression else lightgbm.LGBMClassifier
  return kind(n_estimators=s.num_rounds, learning_rate=s.learning_rate, num_leaves=s.max_leaves,
              max_depth=s.max_depth or -1, min_child_samples=int(s.min_samples_leaf),
              reg_lambda=s.l2, min_child_weight=s.min_hessian, max_bin=min(s.bins, 255),
              random_state=0, verbose=-1)


def _rounds(params, estimator, data):
  """The rounds each trained (LightGBM: all of them)."""
  del data
  theirs = getattr(estimator, "n_iter_", None) or estimator.n_estimators
  return {"rounds": int(params.rounds), "their_rounds": int(theirs)}


def _tree_text(params, image_shape):
  names = None
  if image_shape is not None:
    names = [f"pixel_{r}_{c}" for r in range(image_shape[0]) for c in range(image_shape[1])]
  return tree.describe(params, names)


def _majority_of_clusters(estimator, data):
  """scikit-learn's clusters named by their majority training label, as ``kmeans.predict``."""
  names = kmeans.majority_labels(estimator.labels_, data.y_train, estimator.n_clusters,
                                 int(data.num_classes))
  return np.asarray(names)[estimator.predict(data.x_test)]


def _class_means(params):
  if params.settings.kind == "gaussian":
    return params.theta, "class means θ_c"
  return jax.numpy.exp(params.theta), "p(pixel on | class)" if params.settings.kind == "bernoulli" \
      else "p(pixel | class)"


_NAIVE_BAYES = dict(module=naive_bayes, twin=_nb_twin, learned=_log_likelihoods,
                    images=_class_means)

LEARNERS = errors.Registry("learner", {
    "knn": Learner("k-nearest neighbours (brute force, chunked)", knn, ("k", "weights"),
                   _knn_twin, regression=True),
    "gaussian_nb": Learner("Gaussian naive Bayes", settings=("var_smoothing",),
                           fixed={"kind": "gaussian"}, **_NAIVE_BAYES),
    "bernoulli_nb": Learner("Bernoulli naive Bayes (binarized pixels)",
                            settings=("alpha", "binarize"), fixed={"kind": "bernoulli"},
                            **_NAIVE_BAYES),
    "multinomial_nb": Learner("multinomial naive Bayes", settings=("alpha",),
                              fixed={"kind": "multinomial"}, **_NAIVE_BAYES),
    "logistic": Learner("logistic regression, L2, L-BFGS", logistic, ("c", "tol", "max_iter"),
                        _logistic_twin, learned=_coefficients,
                        images=lambda p: (p.w.T, "weights of each class")),
    "linear_svm": Learner("linear SVM, dual coordinate ascent", linear_svm,
                          ("c", "epsilon", "tol", "max_iter"), _linear_svm_twin, regression=True,
                          learned=_objectives),
    "kernel_svm": Learner("kernel SVM (RBF or polynomial), SMO, one-vs-rest", kernel_svm,
                          ("c", "kernel", "gamma", "degree", "coef0", "tol", "max_iter"),
                          _kernel_svm_twin, compact=kernel_svm.support_vectors,
                          # scikit-learn's SVC is quadratic to cubic in N: its usual subset
                          image_train_size=10_000),
    "kmeans": Learner("k-means, k-means++ and Lloyd, restarts vmapped", kmeans,
                      ("num_clusters", "n_init", "tol", "max_iter"), _kmeans_twin,
                      learned=_inertia, twin_predict=_majority_of_clusters, images=lambda p: (p.centres, "cluster centres")),
    "tree": Learner("decision tree (CART) on feature histograms, level by level", tree,
                    ("criterion", "max_depth", "width", "min_samples_leaf", "max_features",
                     "bins"), _tree_twin,
                    regression=True, learned=_tree_shape, text=_tree_text,
                    images=lambda p: (p.importance[None], "feature importances")),
    "forest": Learner("random forest: bootstrap trees, √D features a split, vmapped", forest,
                      ("num_trees", "criterion", "max_depth", "width", "min_samples_leaf",
                       "max_features", "bins"), _forest_twin, regression=True, learned=_forest_shape,
                      images=lambda p: (p.importance[None], "feature importances")),
    "boosting": Learner("gradient boosting: Newton trees on histograms, early stopping", boosting,
                        ("num_rounds", "learning_rate", "max_leaves", "max_depth",
                         "min_samples_leaf", "l2", "validation_fraction", "patience", "bins"),
                        _boosting_twin, regression=True, learned=_rounds,
                        lightgbm=_boosting_lightgbm),
})
SETTINGS = sorted({name for _, learner in LEARNERS.items() for name in learner.settings})


def settings_of(name: str, given: dict, num_classes: int):
  """The learner's Settings: its defaults, the ``given`` fields, and the data's class count."""
  learner = LEARNERS.get(name)
  return learner.module.Settings(**learner.fixed, **given, num_classes=num_classes)
