"""Principal component analysis: the best linear code of a given size, the autoencoders' baseline.

Images are rows x (P pixels, x/255). With the training mean m and covariance
C = (1/N) Σ_n (x_n - m)(x_n - m)ᵀ, the k components V_k (P x k) are C's
eigenvectors of the k largest eigenvalues. An image is coded as V_kᵀ(x - m)
and reconstructed as m + V_k V_kᵀ(x - m): the orthogonal projection onto the
k-dimensional affine subspace that, of all such subspaces, leaves the least
squared error on the training images (Eckart-Young). No linear autoencoder
with a code of k does better on them.
"""

import numpy as np


def fit(images: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
  """(mean (P,), components (P, k)) of uint8 ``images`` (N, ...) read as x/255, in float64."""
  x = images.reshape(len(images), -1).astype(np.float64) / 255.0
  mean = x.mean(0)
  centred = x - mean
  _, vectors = np.linalg.eigh(centred.T @ centred / len(x))  # ascending eigenvalues
  return mean, vectors[:, ::-1][:, :k]


def reconstruct(images: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
  """m + V Vᵀ (x - m) for each image, as rows (N, P) of x/255."""
  x = images.reshape(len(images), -1).astype(np.float64) / 255.0
  return mean + (x - mean) @ components @ components.T


def test_reconstruction_mse(train_images: np.ndarray, test_images: np.ndarray, k: int) -> float:
  """The mean squared error per pixel on ``test_images`` of PCA with k components fit on
  ``train_images``."""
  mean, components = fit(train_images, k)
  x = test_images.reshape(len(test_images), -1).astype(np.float64) / 255.0
  return float(np.mean((reconstruct(test_images, mean, components) - x) ** 2))
