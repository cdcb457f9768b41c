"""How good a generator's samples are, judged by a classifier of the real data.

With p(y|x) a trained classifier's class probabilities for a sample x, and
p(y) = E_x p(y|x) their mean over the samples:

  classifier score  exp(E_x KL(p(y|x) ‖ p(y)))  (the Inception Score, Salimans
                    et al. 2016, with an MNIST classifier in place of Inception):
                    K for confident predictions spread evenly over K classes,
                    1 when every sample is read as the same class or none is
                    read with confidence;
  class shares      the fraction of samples whose most probable class is k;
  Fréchet distance  between Gaussians fit to the classifier's penultimate
                    features of the samples and of real images (Heusel et al.
                    2017): ‖μ1 - μ2‖² + Tr(Σ1 + Σ2 - 2 (Σ1^½ Σ2 Σ1^½)^½), 0 for
                    equal statistics.
All in float64.
"""

import numpy as np


def classifier_score(probabilities: np.ndarray) -> float:
  """exp of the mean KL(p(y|x) ‖ p(y)) over the rows of ``probabilities`` (N, K)."""
  p = np.asarray(probabilities, np.float64)
  marginal = p.mean(0)
  with np.errstate(divide="ignore", invalid="ignore"):
    kl = np.where(p > 0, p * (np.log(p) - np.log(marginal)), 0.0).sum(1)
  return float(np.exp(kl.mean()))


def class_shares(probabilities: np.ndarray) -> list[float]:
  """The fraction of rows whose largest probability is class k, for each of the K classes."""
  p = np.asarray(probabilities)
  return (np.bincount(p.argmax(1), minlength=p.shape[1]) / len(p)).tolist()


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The mean (D,) and covariance (D, D) of ``features`` (N, D), with 1/(N - 1)."""
  f = np.asarray(features, np.float64)
  return f.mean(0), np.cov(f, rowvar=False)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
  """The symmetric square root of a positive semi-definite matrix (eigenvalues floored at 0)."""
  values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
  return (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T


def frechet_distance(mean1, covariance1, mean2, covariance2) -> float:
  """‖μ1 - μ2‖² + Tr(Σ1 + Σ2 - 2 (Σ1^½ Σ2 Σ1^½)^½)."""
  root1 = _sqrt_psd(covariance1)
  cross = _sqrt_psd(root1 @ covariance2 @ root1)
  distance = (np.sum((np.asarray(mean1) - mean2) ** 2)
              + np.trace(covariance1) + np.trace(covariance2) - 2 * np.trace(cross))
  return float(max(distance, 0.0))
