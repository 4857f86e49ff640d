"""Precision / recall (Kynkäänniemi et al. 2019) and density / coverage (Naeem et al. 2020).

All four estimate the real and synthetic manifolds in feature space as unions of balls: around
each sample, a ball reaching its k-th nearest neighbour in its own set.

- precision: share of synthetic samples inside the real manifold (fidelity);
- recall: share of real samples inside the synthetic manifold (diversity);
- density: how many real balls contain each synthetic sample, divided by k (fidelity that is
  robust to real outliers; about 1 when the distributions match, above 1 when samples crowd
  where real data is dense);
- coverage: share of real samples whose ball contains at least one synthetic sample (diversity
  that is robust to synthetic outliers).

Neighbour searches use scikit-learn's :class:`~sklearn.neighbors.NearestNeighbors`.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from medgan.errors import MedganError

__all__ = ["knn_radii", "prdc"]


def knn_radii(features: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of ``features`` ``(N, F)`` to its k-th nearest other row ``(N,)``."""
    # k + 1 neighbours, because the first one is the point itself.
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    return dist[:, k]


def _balls_containing(centres: np.ndarray, radii: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """For each query, how many balls ``(centres[i], radii[i])`` contain it (boundary included)."""
    if len(queries) == 0:
        return np.zeros(0, dtype=np.int64)
    nn = NearestNeighbors().fit(centres)
    # One radius query at the largest radius finds every candidate; each is then checked against
    # the radius of its own centre. The tiny margin keeps points exactly on the largest sphere.
    reach = float(radii.max()) * (1 + 1e-9) + 1e-12
    dists, idxs = nn.radius_neighbors(queries, radius=reach, return_distance=True)
    return np.array([int(np.count_nonzero(d <= radii[i])) for d, i in zip(dists, idxs, strict=True)])


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` against ``real`` features.

    Args:
        real: ``(N, F)`` real features.
        fake: ``(M, F)`` synthetic features.
        k: the neighbour that sets each ball's radius (3, as in both papers).

    Returns:
        ``{"precision", "recall", "density", "coverage"}``.

    Raises:
        MedganError: when either set has fewer than ``k + 1`` samples.

    Example:
        >>> prdc(real_feats, fake_feats, k=3)["precision"]
        0.83
    """
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be (N, F) with equal F, got {real.shape} and {fake.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if min(len(real), len(fake)) < k + 1:
        raise MedganError(
            f"precision/recall/density/coverage with k={k} need at least k+1 = {k + 1} samples per set; "
            f"got {len(real)} real and {len(fake)} synthetic"
        )
    real_radii = knn_radii(real, k)
    fake_radii = knn_radii(fake, k)
    in_real_balls = _balls_containing(real, real_radii, fake)  # (M,) real balls around each fake
    in_fake_balls = _balls_containing(fake, fake_radii, real)  # (N,) fake balls around each real
    nearest_fake, _ = NearestNeighbors(n_neighbors=1).fit(fake).kneighbors(real)
    return {
        "precision": float(np.mean(in_real_balls > 0)),
        "recall": float(np.mean(in_fake_balls > 0)),
        "density": float(in_real_balls.sum() / (k * len(fake))),
        "coverage": float(np.mean(nearest_fake[:, 0] <= real_radii)),
    }
