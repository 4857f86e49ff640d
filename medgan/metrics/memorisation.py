"""Memorisation audit: are synthetic samples closer to training images than new real images are?

For each synthetic sample, the distance to its nearest real **training** sample in feature space.
The reference is the same distance for real **test** samples, which the generator never saw: how
close an honest new image of this population comes to the training set. A synthetic sample closer
than the reference's 1st percentile is a "likely copy"; the memorisation fraction is their share.
For a generator that does not copy, about 1% of its samples fall there by chance (that is what
the 1st percentile means), so a fraction well above 1% says that some samples reproduce training
images more closely than independent images ever do.

Translated images (the cycle family, :func:`translation_audit`) are audited against both domains.
An output is made from one source image and is expected to stay close to it, so that distance is
reported on its own and never counts as copying. A likely copy is an output nearer a training image
of the target domain, or a training image of the source domain other than its own source, than
held-out real images of that domain come to the same training images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors

__all__ = ["MemorisationAudit", "TranslationAudit", "memorisation_audit", "translation_audit"]


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
            "memorisation/p_value": self.p_value(),
        }

    def p_value(self) -> float:
        """The chance of at least this many likely copies from a generator that copies nothing.

        Such a generator's samples are, for the audit, draws like the held-out reference images: the
        share of that distribution below the threshold (an order statistic of ``T`` reference
        distances) is Beta-distributed, and the count of flagged samples beta-binomial. The threshold
        lies at or above the ``k``-th smallest reference distance, ``k = floor(p (T - 1)) + 1``; the
        test counts against the ``(k+1)``-th, which errs towards "no evidence of copying".
        """
        from scipy.stats import betabinom

        m, t = len(self.distances), len(self.reference)
        copies = int(self.likely_copies.sum())
        if m == 0 or copies == 0:
            return 1.0
        k = min(int(np.floor(self.percentile / 100 * (t - 1))) + 2, t)
        return float(betabinom.sf(copies - 1, m, k, t - k + 1))

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


@dataclass
class TranslationAudit:
    """The result of :func:`translation_audit`: translated images against both domains.

    Attributes:
        to_source: ``(M,)`` distance of each output to the image it was made from (expected small;
            not a sign of copying).
        target: each output against the target domain's training images, with the target domain's
            held-out images as the reference (a :class:`MemorisationAudit`).
        other_source: ``(M,)`` distance of each output to its nearest source-domain training image
            other than its own source.
        nearest_other_source: ``(M,)`` index of that image.
        source_reference: ``(S,)`` distance of each held-out source-domain image to the nearest
            source-domain training image.
        source_threshold: the ``percentile``-th percentile of ``source_reference``.
        percentile: the percentile that defines both thresholds.
    """

    to_source: np.ndarray
    target: MemorisationAudit
    other_source: np.ndarray
    nearest_other_source: np.ndarray
    source_reference: np.ndarray
    source_threshold: float
    percentile: float

    @property
    def likely_copies(self) -> np.ndarray:
        """Boolean ``(M,)``: outputs closer than a threshold to a target training image or another source image."""
        return self.target.likely_copies | (self.other_source < self.source_threshold)

    def metrics(self) -> dict[str, float]:
        """``memorisation/*``: the fractions (either domain, each domain), thresholds and distance medians."""
        copies, n = self.likely_copies, len(self.to_source)
        other = self.other_source < self.source_threshold
        med = lambda a: float(np.median(a)) if len(a) else float("nan")  # noqa: E731
        return {
            "memorisation/fraction": float(copies.mean()) if n else 0.0,
            "memorisation/n_likely_copies": float(copies.sum()),
            "memorisation/fraction_target": float(self.target.likely_copies.mean()) if n else 0.0,
            "memorisation/fraction_other_source": float(other.mean()) if n else 0.0,
            "memorisation/threshold": float(self.target.threshold),
            "memorisation/threshold_source": float(self.source_threshold),
            "memorisation/median_distance": med(self.target.distances),
            "memorisation/median_reference_distance": med(self.target.reference),
            "memorisation/median_distance_to_source": med(self.to_source),
            "memorisation/median_distance_other_source": med(self.other_source),
            "memorisation/median_source_reference_distance": med(self.source_reference),
        }


def translation_audit(
    translated: np.ndarray,
    sources: np.ndarray,
    source_index: np.ndarray,
    source_train: np.ndarray,
    target_train: np.ndarray,
    source_reference: np.ndarray,
    target_reference: np.ndarray,
    percentile: float = 1.0,
) -> TranslationAudit:
    """Audit translated images against both domains, in a feature space.

    Args:
        translated: ``(M, F)`` features of the outputs.
        sources: ``(M, F)`` features of each output's own source image.
        source_index: ``(M,)`` index of each output's source in ``source_train``, or -1 when the
            source is not a training image (it is then not excluded from "other source images").
        source_train: ``(N_s, F)`` the source domain's training images (what the translator saw).
        target_train: ``(N_t, F)`` the target domain's training images.
        source_reference: ``(S, F)`` held-out real images of the source domain.
        target_reference: ``(T, F)`` held-out real images of the target domain.
        percentile: the reference percentile below which an output is a likely copy.

    Example:
        >>> audit = translation_audit(f_out, f_src, idx, f_benign_train, f_malig_train, f_benign_test, f_malig_test)
        >>> audit.metrics()["memorisation/median_distance_to_source"]
        3.1
    """
    translated = np.asarray(translated, dtype=np.float64)
    source_index = np.asarray(source_index, dtype=np.int64).reshape(-1)
    if len(sources) != len(translated) or len(source_index) != len(translated):
        raise ValueError(f"{len(translated)} outputs but {len(sources)} sources and {len(source_index)} source indices")
    if len(source_train) < 2 or len(source_reference) == 0:
        raise ValueError("the audit needs at least two source-domain training images and a source reference")
    to_source = np.linalg.norm(translated - np.asarray(sources, dtype=np.float64), axis=1)
    target = memorisation_audit(translated, target_train, target_reference, percentile)
    nn = NearestNeighbors(n_neighbors=2).fit(np.asarray(source_train, dtype=np.float64))
    ref_dist = nn.kneighbors(np.asarray(source_reference, dtype=np.float64), n_neighbors=1)[0][:, 0]
    if len(translated):
        dist, idx = nn.kneighbors(translated)
        own = idx[:, 0] == source_index  # the nearest is the output's own source: take the next one
        other, nearest = np.where(own, dist[:, 1], dist[:, 0]), np.where(own, idx[:, 1], idx[:, 0])
    else:
        other, nearest = np.zeros(0), np.zeros(0, dtype=np.int64)
    return TranslationAudit(
        to_source=to_source,
        target=target,
        other_source=other,
        nearest_other_source=nearest,
        source_reference=ref_dist,
        source_threshold=float(np.percentile(ref_dist, percentile)),
        percentile=percentile,
    )
