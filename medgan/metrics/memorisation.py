"""Memorisation audit: are synthetic samples closer to training images than new real images are?

For each synthetic sample, the distance to its nearest real **training** sample in feature space.
The reference is the same distance for real **test** samples, which the generator never saw: how
close an honest new image of this population comes to the training set. A synthetic sample closer
than the reference's 1st percentile is a "likely copy"; the memorisation fraction is their share.
For a generator that does not copy, about 1% of its samples fall there by chance (that is what
the 1st percentile means), so a fraction well above 1% says that some samples reproduce training
images more closely than independent images ever do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors

__all__ = ["MemorisationAudit", "memorisation_audit"]


@dataclass
class MemorisationAudit:
    """The result of :func:`memorisation_audit`.

    Attributes:
        distances: ``(M,)`` distance of each synthetic sample to its nearest training sample.
        nearest_train: ``(M,)`` index of that training sample.
        reference: ``(T,)`` distance of each held-out real sample to its nearest training sample.
        threshold: the ``percentile``-th percentile of ``reference``.
        percentile: the percentile that defines the threshold (1.0 by default).
    """

    distances: np.ndarray
    nearest_train: np.ndarray
    reference: np.ndarray
    threshold: float
    percentile: float

    @property
    def likely_copies(self) -> np.ndarray:
        """Boolean ``(M,)``: synthetic samples closer to the training set than the threshold."""
        return self.distances < self.threshold

    def metrics(self) -> dict[str, float]:
        """``memorisation/*``: the fraction, the count, the threshold and the distance medians."""
        copies = self.likely_copies
        return {
            "memorisation/fraction": float(copies.mean()) if len(copies) else 0.0,
            "memorisation/n_likely_copies": float(copies.sum()),
            "memorisation/threshold": float(self.threshold),
            "memorisation/min_distance": float(self.distances.min()) if len(self.distances) else float("nan"),
            "memorisation/median_distance": float(np.median(self.distances)) if len(self.distances) else float("nan"),
            "memorisation/median_reference_distance": float(np.median(self.reference)),
        }

    def closest_pairs(self, n: int = 16) -> list[tuple[int, int, float]]:
        """The ``n`` synthetic samples nearest the training set: ``(synthetic index, train index, distance)``."""
        order = np.argsort(self.distances, kind="stable")[:n]
        return [(int(i), int(self.nearest_train[i]), float(self.distances[i])) for i in order]


def memorisation_audit(
    synthetic: np.ndarray, train: np.ndarray, reference: np.ndarray, percentile: float = 1.0
) -> MemorisationAudit:
    """Nearest-training-sample distances of synthetic features, against a held-out reference.

    Args:
        synthetic: ``(M, F)`` features of the synthetic samples.
        train: ``(N, F)`` features of the real training samples (what the generator saw).
        reference: ``(T, F)`` features of held-out real samples (the test split).
        percentile: the reference percentile below which a synthetic sample is a likely copy.

    Example:
        >>> audit = memorisation_audit(f_syn, f_train, f_test)
        >>> audit.metrics()["memorisation/fraction"]
        0.006
    """
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must lie in (0, 100), got {percentile}")
    if len(train) == 0 or len(reference) == 0:
        raise ValueError("the audit needs training and reference samples")
    nn = NearestNeighbors(n_neighbors=1).fit(np.asarray(train, dtype=np.float64))
    ref_dist = nn.kneighbors(np.asarray(reference, dtype=np.float64))[0][:, 0]
    if len(synthetic):
        syn_dist, syn_idx = nn.kneighbors(np.asarray(synthetic, dtype=np.float64))
        syn_dist, syn_idx = syn_dist[:, 0], syn_idx[:, 0]
    else:
        syn_dist, syn_idx = np.zeros(0), np.zeros(0, dtype=np.int64)
    return MemorisationAudit(
        distances=syn_dist,
        nearest_train=syn_idx,
        reference=ref_dist,
        threshold=float(np.percentile(ref_dist, percentile)),
        percentile=percentile,
    )
