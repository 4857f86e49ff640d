"""The quality gate of ``medgan run``'s export: which synthetic candidates are fit to hand out.

Candidates are drawn per class from the generator (:func:`medgan.synth.sampling.iter_samples`, so
that the manifest's seed and sample index regenerate every kept sample exactly) and kept by the one
curation rule, :func:`medgan.metrics.curation.curate` (the benchmark's ``real+curated-synthetic``
arm applies it too). A candidate is dropped when

- it is a **likely copy**: closer to a training image, in the domain feature space, than all but
  ``percentile`` % of the real test images are (the memorisation audit,
  :mod:`medgan.metrics.memorisation`, applied per sample); or
- the **real-data classifier does not assign it to its class**: the domain classifier, trained on the
  real training split, selected on val and scored on test (:mod:`medgan.metrics.features`, the same
  network whose penultimate layer is the feature space), gives the candidate's class a probability
  below ``confidence`` (0.5 by default: with two classes, it ranks the other class first).

The kept samples are written by :func:`medgan.synth.write.write_batches`, the one way an export
folder is written (free space first, atomically, the writers of ``medgan augment``, ``manifest.csv``
and ``provenance.json``); the provenance records the gate.

Example:
    >>> result = export_gated(gen, extractor, dataset, "out/synthetic", n_per_class=500, fmt="png")
    >>> result.kept_share(0)
    0.82
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medgan.data.dataset import PreparedDataset
from medgan.errors import MedganError
from medgan.metrics.curation import curate
from medgan.metrics.memorisation import memorisation_audit
from medgan.synth.manifest import read_manifest
from medgan.synth.sampling import LATENT_BLOCK, LoadedGenerator, forward_block, iter_samples
from medgan.synth.write import Batch, check_format, write_batches
from medgan.training.classifier import predict_proba
from medgan.utils import atomic_file

if TYPE_CHECKING:
    from medgan.metrics.features import FeatureExtractor

__all__ = ["GATE_RULE", "GateDecision", "GateResult", "export_gated", "gate_candidates"]

GATE_RULE = (
    "keep a candidate unless it is closer to a training image than all but the given percentile of real test "
    "images are (a likely copy), or the classifier trained on the real train split gives its class a "
    "probability below the confidence threshold"
)


@dataclass
class GateDecision:
    """The gate's verdict on the candidates of one class.

    Attributes:
        keep: ``(M,)`` bool, the candidates that pass.
        likely_copy: ``(M,)`` bool, closer to the training set than the threshold.
        wrong_class: ``(M,)`` bool, not assigned to their class by the classifier.
        distance: ``(M,)`` distance to the nearest training image in the feature space.
        probability: ``(M,)`` the classifier's probability of the candidate's class.
        predicted: ``(M,)`` the class the classifier ranks first.
        threshold: the likely-copy distance threshold.
    """

    keep: np.ndarray
    likely_copy: np.ndarray
    wrong_class: np.ndarray
    distance: np.ndarray
    probability: np.ndarray
    predicted: np.ndarray
    threshold: float


@dataclass
class GateResult:
    """What :func:`export_gated` did, per class (keys are class indices).

    Attributes:
        class_names: names by label index.
        candidates: candidates drawn.
        kept: candidates written.
        likely_copies: candidates dropped as likely copies.
        wrong_class: candidates dropped because the classifier did not assign them to their class
            (and that were not likely copies: each candidate is counted once, under the first reason).
        threshold: the likely-copy distance threshold in the feature space.
        settings: the gate's settings and the classifier's test scores (recorded in provenance).
    """

    class_names: list[str]
    candidates: dict[int, int] = field(default_factory=dict)
    kept: dict[int, int] = field(default_factory=dict)
    likely_copies: dict[int, int] = field(default_factory=dict)
    wrong_class: dict[int, int] = field(default_factory=dict)
    threshold: float = float("nan")
    settings: dict[str, Any] = field(default_factory=dict)

    def kept_share(self, c: int) -> float:
        """The share of class ``c``'s candidates that the gate kept (NaN when none were drawn)."""
        n = self.candidates.get(c, 0)
        return self.kept.get(c, 0) / n if n else float("nan")

    def to_json(self) -> dict[str, Any]:
        """Per class name: candidates, kept, kept share and the drops by reason; and the settings."""
        return {
            "rule": GATE_RULE,
            "threshold": self.threshold,
            **self.settings,
            "classes": {
                name: {
                    "candidates": self.candidates.get(c, 0),
                    "kept": self.kept.get(c, 0),
                    "kept_share": self.kept_share(c),
                    "likely_copies": self.likely_copies.get(c, 0),
                    "wrong_class": self.wrong_class.get(c, 0),
                }
                for c, name in enumerate(self.class_names)
                if c in self.candidates
            },
        }


def _classifier(extractor: FeatureExtractor) -> Any:
    net = getattr(extractor.net, "classifier", None)
    if net is None:
        raise ValueError(
            "the quality gate needs a domain feature extractor (get_feature_extractor), whose network "
            "is a classifier; this one has no classifier head"
        )
    return net


def gate_candidates(
    images: np.ndarray,
    class_index: int,
    extractor: FeatureExtractor,
    train_features: np.ndarray,
    reference_features: np.ndarray,
    *,
    percentile: float = 1.0,
    confidence: float = 0.5,
) -> GateDecision:
    """Decide which candidates of one class pass the gate (see the module docstring).

    Args:
        images: uint8 candidates ``(M, C, *spatial)``, all of class ``class_index``.
        class_index: their class.
        extractor: the domain feature extractor; its network's classifier decides the class.
        train_features: ``(N, F)`` features of the real training split.
        reference_features: ``(T, F)`` features of the real test split (the likely-copy reference).
        percentile: the reference percentile below which a candidate is a likely copy.
        confidence: the least probability of its class that a kept candidate must have.
    """
    audit = memorisation_audit(
        extractor.extract(images), train_features, reference_features, percentile=percentile
    )
    proba = predict_proba(_classifier(extractor), images, device=extractor.device)  # (M, K)
    labels = np.full(len(images), class_index, dtype=np.int64)
    kept = curate(
        proba,
        labels,
        confidence=confidence,
        likely_copies=audit.likely_copies,
        num_classes=proba.shape[1] if proba.ndim == 2 else None,
    )
    return GateDecision(
        keep=kept.keep,
        likely_copy=audit.likely_copies,
        wrong_class=kept.confidence < confidence,
        distance=audit.distances,
        probability=kept.confidence,
        predicted=proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=np.int64),
        threshold=audit.threshold,
    )


def export_gated(
    gen: LoadedGenerator,
    extractor: FeatureExtractor,
    dataset: PreparedDataset,
    out: str | Path,
    *,
    n_per_class: int,
    fmt: str,
    seed: int = 0,
    truncation: float | None = None,
    percentile: float = 1.0,
    confidence: float = 0.5,
    batch_size: int = 256,
    arguments: dict[str, Any] | None = None,
    decisions_csv: str | Path | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> GateResult:
    """Draw ``n_per_class`` candidates of every class, gate them, and write the kept ones to ``out``.

    ``out`` gets the samples in ``fmt`` (one folder per class, as ``medgan augment`` writes them),
    ``manifest.csv`` (only kept samples; their seed and sample index regenerate them) and
    ``provenance.json`` with the gate; it is built atomically.

    Args:
        gen: the generator (class-conditional, trained on ``dataset``).
        extractor: ``dataset``'s domain feature extractor.
        dataset: the real data: train split as the reference, test split for the copy threshold.
        out: the output folder.
        n_per_class: candidates per class.
        fmt: ``png``, ``npz``, ``nifti`` or ``dicom``.
        seed: the sampling seed.
        truncation: latent truncation, or None.
        percentile: see :func:`gate_candidates`.
        confidence: see :func:`gate_candidates`.
        batch_size: samples per generator batch (does not change the samples).
        arguments: recorded in the provenance.
        decisions_csv: also write one row per candidate (kept or not, and why) to this file.
        on_batch: called with the size of every batch drawn (a progress bar).

    Raises:
        MedganError: an unconditional generator, or one not trained on ``dataset``; a format that cannot
            hold its samples; an empty test split.
    """
    import torch

    if gen.num_classes == 0:
        raise MedganError(
            "the quality gate checks each sample's class; this generator is unconditional",
            gen.checkpoint_path,
        )
    check_format(fmt, gen)
    gen.check_trained_on(dataset.info, "the run's prepared data")
    if len(dataset.labels["test"]) == 0:
        raise MedganError(
            "the test split is empty; the likely-copy threshold needs held-out real images", dataset.path
        )
    names = list(gen.class_names)
    train_f = extractor.split_features(dataset, "train")
    ref_f = extractor.split_features(dataset, "test")
    result = GateResult(class_names=names)
    result.settings = {
        "n_per_class": n_per_class,
        "seed": seed,
        "truncation": truncation,
        "percentile": percentile,
        "confidence": confidence,
        "classifier": {
            k: extractor.info.get(k)
            for k in (
                "arch",
                "dataset_sha256",
                "selected_epoch",
                "val_balanced_accuracy",
                "test_accuracy",
                "test_balanced_accuracy",
            )
        },
    }
    decisions: list[tuple[int, GateDecision]] = []
    # Provenance fields; the counts and the gate are filled in once the last class is gated, which is
    # before write_batches writes provenance.json (after the last batch).
    record: dict[str, Any] = {
        "format": fmt,
        "checkpoint_path": gen.checkpoint_path,
        "family": gen.family,
        "device": str(gen.device),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "latent_block": LATENT_BLOCK,
        "forward_block": forward_block(gen.size),
    }

    def kept_batches() -> Iterator[Batch]:
        for c in range(gen.num_classes):
            drawn = []
            for batch in iter_samples(
                gen, c, n_per_class, seed=seed, batch_size=batch_size, truncation=truncation
            ):
                drawn.append(batch)
                if on_batch is not None:
                    on_batch(len(batch))
            images = np.concatenate(drawn)
            decision = gate_candidates(
                images, c, extractor, train_f, ref_f, percentile=percentile, confidence=confidence
            )
            decisions.append((c, decision))
            result.threshold = decision.threshold
            result.candidates[c] = len(images)
            result.kept[c] = int(decision.keep.sum())
            result.likely_copies[c] = int(decision.likely_copy.sum())
            result.wrong_class[c] = int((decision.wrong_class & ~decision.likely_copy).sum())
            kept = np.flatnonzero(decision.keep)
            if len(kept):
                yield images[kept], [c] * len(kept), seed, kept, None
        record.update(
            counts={names[c]: k for c, k in result.kept.items()},
            total=sum(result.kept.values()),
            quality_gate=result.to_json(),
        )

    out = Path(out)
    write_batches(
        out,
        kept_batches(),
        fmt=fmt,
        total=n_per_class * gen.num_classes,
        class_names=names,
        maker=gen,
        overwrite=True,
        arguments=arguments,
        record=record,
    )
    if decisions_csv is not None:
        file_of = {(r.class_index, r.sample_index): r.file for r in read_manifest(out)}
        columns = [
            "class_name",
            "class_index",
            "seed",
            "sample_index",
            "p_class",
            "predicted",
            "nearest_train_distance",
            "kept",
            "dropped_because",
            "file",
        ]
        with atomic_file(decisions_csv) as tmp_csv, open(tmp_csv, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(columns)
            for c, d in decisions:
                for i in range(len(d.keep)):
                    why = (
                        "likely copy"
                        if d.likely_copy[i]
                        else "not assigned to its class"
                        if d.wrong_class[i]
                        else ""
                    )
                    w.writerow(
                        [
                            names[c],
                            c,
                            seed,
                            i,
                            f"{d.probability[i]:.4f}",
                            names[d.predicted[i]],
                            f"{d.distance[i]:.6g}",
                            int(d.keep[i]),
                            why,
                            file_of.get((c, i), ""),
                        ]
                    )
    return result
