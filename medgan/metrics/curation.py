"""Curation of synthetic images: the one rule for which GAN samples are worth keeping.

A synthetic image is **kept** when

1. a classifier trained on the real training images ranks its *intended* class (the class the GAN
   was asked for) first, with a probability of at least ``confidence``, and
2. it is not a likely copy of a real training image: the memorisation audit
   (:mod:`medgan.metrics.memorisation`) finds it closer to its nearest training image than all but
   ``percentile`` % of held-out real images are.

Both the benchmark's ``real+curated-synthetic`` arm and ``medgan run``'s gate use this rule, so a
sample kept by one is kept by the other. :func:`curate` is the rule on numbers already computed
(probabilities and the audit's copy mask); :func:`curate_with_classifier` computes them from a
trained classifier, using its penultimate layer as the audit's feature space.

Example:
    >>> proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    >>> result = curate(proba, np.array([0, 0, 1]), confidence=0.8)
    >>> result.keep.tolist(), result.kept_share, result.reasons.tolist()
    ([True, False, True], [0.5, 1.0], ['kept', 'wrong_class', 'kept'])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["REASONS", "Curation", "curate", "curate_with_classifier"]

REASONS: tuple[str, ...] = ("kept", "wrong_class", "likely_copy")
"""Why each image was kept or dropped: ``wrong_class`` when the classifier ranks another class first or
gives the intended one less than ``confidence``; an image that is both counts as a ``likely_copy``."""


@dataclass
class Curation:
    """The result of :func:`curate`.

    Attributes:
        keep: boolean ``(M,)``: the images that pass.
        reasons: ``(M,)`` strings from :data:`REASONS`.
        confidence: ``(M,)`` the probability of each image's intended class.
        kept: kept images per class (length K).
        candidates: candidate images per class.
        kept_share: ``kept / candidates`` per class (NaN for a class without candidates).
        threshold: the confidence threshold used.
    """

    keep: np.ndarray
    reasons: np.ndarray
    confidence: np.ndarray
    kept: list[int]
    candidates: list[int]
    kept_share: list[float]
    threshold: float
    dropped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        """Plain numbers for a report: kept and candidates per class, the shares, the drop reasons."""
        return {
            "confidence": self.threshold,
            "kept": self.kept,
            "candidates": self.candidates,
            "kept_share": self.kept_share,
            "dropped": dict(self.dropped),
        }


def curate(
    proba: np.ndarray,
    labels: np.ndarray,
    *,
    confidence: float,
    likely_copies: np.ndarray | None = None,
    num_classes: int | None = None,
) -> Curation:
    """Apply the curation rule to synthetic images whose classifier probabilities are ``proba``.

    Args:
        proba: ``(M, K)`` class probabilities from a classifier trained on real images.
        labels: ``(M,)`` the intended class of each synthetic image.
        confidence: the least probability of the intended class, in ``[0, 1]`` (it must also rank
            first; ``0`` keeps every image the classifier assigns to its intended class).
        likely_copies: boolean ``(M,)`` from the memorisation audit
            (:attr:`medgan.metrics.memorisation.MemorisationAudit.likely_copies`), or None for no audit.
        num_classes: K (default: ``proba``'s columns).

    Raises:
        ValueError: mismatched shapes, labels outside ``0..K-1`` or a confidence outside ``[0, 1]``.
    """
    proba = np.asarray(proba, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if proba.ndim != 2 or len(proba) != len(labels):
        raise ValueError(f"proba must be (M, K) with M = {len(labels)} labels, got shape {proba.shape}")
    if not 0 <= confidence <= 1:
        raise ValueError(f"confidence must lie in [0, 1], got {confidence}")
    k = num_classes if num_classes is not None else proba.shape[1]
    if len(labels) and (labels.min() < 0 or labels.max() >= proba.shape[1]):
        raise ValueError(f"labels must lie in 0..{proba.shape[1] - 1}")
    copies = (
        np.zeros(len(labels), bool) if likely_copies is None else np.asarray(likely_copies, bool).reshape(-1)
    )
    if len(copies) != len(labels):
        raise ValueError(f"likely_copies has {len(copies)} entries for {len(labels)} images")
    own = proba[np.arange(len(labels)), labels] if len(labels) else np.zeros(0)
    ranked_first = proba.argmax(axis=1) == labels if len(labels) else np.zeros(0, bool)
    confident = ranked_first & (own >= confidence)
    keep = confident & ~copies
    reasons = np.where(copies, "likely_copy", np.where(confident, "kept", "wrong_class"))
    kept = np.bincount(labels[keep], minlength=k)[:k].tolist()
    candidates = np.bincount(labels, minlength=k)[:k].tolist()
    share = [kk / n if n else float("nan") for kk, n in zip(kept, candidates, strict=True)]
    dropped = {r: int((reasons == r).sum()) for r in REASONS[1:]}
    return Curation(
        keep=keep,
        reasons=reasons,
        confidence=own,
        kept=kept,
        candidates=candidates,
        kept_share=share,
        threshold=float(confidence),
        dropped=dropped,
    )


def curate_with_classifier(
    model: object,
    synthetic: tuple[np.ndarray, np.ndarray],
    train_images: np.ndarray,
    reference_images: np.ndarray,
    *,
    confidence: float,
    percentile: float = 1.0,
    device: str = "cpu",
) -> Curation:
    """Curate ``synthetic`` with a classifier trained on the real ``train_images``.

    The classifier's probabilities give the confidence; its penultimate layer
    (:class:`medgan.networks.classifier.FeatureNet`) is the feature space of the memorisation audit,
    with ``train_images`` as the training set and ``reference_images`` (held-out real images that
    neither the GAN nor the classifier trained on, e.g. the val split) as the reference.

    Args:
        model: a classifier from :func:`medgan.networks.classifier.build_classifier`, trained on
            ``train_images`` (e.g. by :func:`medgan.training.classifier.train_classifier`).
        synthetic: ``(uint8 images (M, C, *spatial), intended labels (M,))``.
        train_images: uint8 ``(N, C, *spatial)``: the real images the GAN and the classifier saw.
        reference_images: uint8 ``(T, C, *spatial)``: held-out real images.
        confidence: see :func:`curate`.
        percentile: the audit's reference percentile.
        device: where the classifier runs.
    """
    import torch

    from medgan.data.scaling import to_model_input
    from medgan.metrics.memorisation import memorisation_audit
    from medgan.networks.classifier import FeatureNet
    from medgan.training.classifier import predict_proba

    net: torch.nn.Module = model  # type: ignore[assignment]
    images, labels = synthetic
    proba = predict_proba(net, images, device=device)
    features = FeatureNet(net).to(device).eval()

    @torch.no_grad()
    def embed(x: np.ndarray) -> np.ndarray:
        out = [
            features(to_model_input(x[i : i + 256]).to(device)).double().cpu() for i in range(0, len(x), 256)
        ]
        return torch.cat(out).numpy() if out else np.zeros((0, 1))

    copies = None
    if len(images) and len(train_images) and len(reference_images):
        audit = memorisation_audit(
            embed(images), embed(train_images), embed(reference_images), percentile=percentile
        )
        copies = audit.likely_copies
    return curate(proba, labels, confidence=confidence, likely_copies=copies, num_classes=proba.shape[1])
