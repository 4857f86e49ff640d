"""Fidelity and memorisation of a translator (the cycle family): a fresh translated draw, audited against both domains.

The draw is what the benchmark's ``+synthetic`` arms get from a translator: images of each class
translated from the other class's train split (:func:`medgan.synth.translate.translated_pool`).
Fidelity, diversity and the pixel metrics are measured as for any synthetic set
(:func:`medgan.metrics.evaluate.evaluate_detailed`). The memorisation audit is replaced by
:func:`medgan.metrics.memorisation.translation_audit`, per direction: an output is expected to stay
close to its own source, so the plain audit against every training image would call every faithful
translation a copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medgan.data.dataset import PreparedDataset, class_slugs
from medgan.metrics.evaluate import Evaluation, evaluate_detailed
from medgan.metrics.memorisation import TranslationAudit, translation_audit
from medgan.synth.translate import LoadedTranslator, augment_sources, translated_pool

__all__ = ["TranslatorEvaluation", "evaluate_translator", "translator_counts"]


@dataclass
class TranslatorEvaluation:
    """What :func:`evaluate_translator` measured.

    Attributes:
        metrics: ``evaluate``'s metrics with ``memorisation/*`` from the two-domain audit: overall
            ``fraction``, ``n_likely_copies`` and ``median_distance_to_source``, and every audit
            metric per target class (``memorisation/<name>/class_<slug>``).
        images: the translated draw, uint8 ``(N, C, *spatial)``.
        labels: their classes ``(N,)``.
        audits: per target class index, its :class:`TranslationAudit`.
        evaluation: the underlying :class:`~medgan.metrics.evaluate.Evaluation` (its plain audit
            compares against every training image; do not read it as a copy rate).
    """

    metrics: dict[str, float]
    images: np.ndarray
    labels: np.ndarray
    audits: dict[int, TranslationAudit] = field(default_factory=dict)
    evaluation: Evaluation | None = None


def translator_counts(tr: LoadedTranslator, ds: PreparedDataset, n_per_class: int) -> list[int]:
    """Images per class of a fidelity draw: ``n_per_class`` of each of the translator's classes, at most
    as many as the other class has training images (one output per source)."""
    assert tr.source_class is not None and tr.target_class is not None
    train = ds.labels["train"]
    counts = [0] * ds.info.num_classes
    for c, src in ((tr.target_class, tr.source_class), (tr.source_class, tr.target_class)):
        counts[c] = min(n_per_class, int((train == src).sum()))
    return counts


def evaluate_translator(
    ds: PreparedDataset,
    tr: LoadedTranslator,
    n_per_class: int,
    *,
    seed: int = 0,
    arch: str = "cnn",
    device: str = "cpu",
    feature_epochs: int | None = None,
    percentile: float = 1.0,
    **evaluate_kw: Any,
) -> TranslatorEvaluation:
    """Measure a class translator on ``ds`` (the dataset it was trained on; checked).

    Args:
        ds: the real dataset: train split for the references, test split for the held-out audit references.
        tr: from :func:`medgan.synth.translate.load_translator` (class mode).
        n_per_class: translated images per class (capped by :func:`translator_counts`).
        seed: the draw's seed (as ``medgan augment --seed``).
        arch: the domain feature net.
        device: where the nets run.
        feature_epochs: feature-net epochs when it is trained here.
        percentile: the audit's reference percentile.
        evaluate_kw: more arguments of :func:`~medgan.metrics.evaluate.evaluate_detailed`.

    Raises:
        MedganError: a domain translator; a translator trained on other data; inputs the metrics
            cannot compare.
    """
    from medgan.errors import MedganError
    from medgan.metrics.features import DEFAULT_EPOCHS, get_feature_extractor

    if tr.mode != "class":
        raise MedganError(
            "a domain translator has no classes to measure against; evaluate its outputs with "
            "medgan evaluate",
            tr.checkpoint_path,
        )
    tr.check_trained_on(ds.info, "the real data")
    counts = translator_counts(tr, ds, n_per_class)
    images, labels = translated_pool(tr, ds, counts, seed)
    extractor = get_feature_extractor(
        ds, arch, device=device, seed=0, epochs=feature_epochs or DEFAULT_EPOCHS
    )
    ev = evaluate_detailed(ds, (images, labels), extractor=extractor, device=device, seed=0, **evaluate_kw)

    # Section. Memorisation against both domains, one direction at a time.
    train_f, test_f = extractor.split_features(ds, "train"), extractor.split_features(ds, "test")
    train_y, test_y = ds.labels["train"], ds.labels["test"]
    metrics = {k: v for k, v in ev.metrics.items() if not k.startswith("memorisation/")}
    audits: dict[int, TranslationAudit] = {}
    slugs = class_slugs(ds.info.class_names)
    out_f = extractor.extract(images)
    for c in (tr.target_class, tr.source_class):
        assert c is not None
        if counts[c] == 0:
            continue
        src = tr.source_class if c == tr.target_class else tr.target_class
        sources = augment_sources(tr, ds, c, counts[c], seed)  # the same draw translated_pool made
        pool = np.flatnonzero(train_y == src)
        own = np.searchsorted(pool, [int(i.rsplit(":", 1)[1]) for i in sources.ids])
        audit = translation_audit(
            out_f[labels == c],
            train_f[pool[own]],
            own,
            train_f[pool],
            train_f[train_y == c],
            test_f[test_y == src],
            test_f[test_y == c],
            percentile,
        )
        audits[c] = audit
        metrics.update({f"{k}/class_{slugs[c]}": v for k, v in audit.metrics().items()})
    copies = sum(int(a.likely_copies.sum()) for a in audits.values())
    total = sum(len(a.to_source) for a in audits.values())
    metrics["memorisation/fraction"] = copies / total if total else 0.0
    metrics["memorisation/n_likely_copies"] = float(copies)
    metrics["memorisation/median_distance_to_source"] = (
        float(np.median(np.concatenate([a.to_source for a in audits.values()]))) if total else float("nan")
    )
    return TranslatorEvaluation(metrics, images, labels, audits, ev)
