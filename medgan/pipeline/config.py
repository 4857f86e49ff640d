"""``RunConfig``: what ``medgan run --config run.yaml`` may change, one section per stage.

Nothing here has to be written for a first run: the training and benchmark configs are derived from
the prepared data (:mod:`medgan.pipeline.derive`). The YAML only overrides; its keys are exactly the
fields below, and unknown keys or wrong types are errors (as for every medgan config).

Example (YAML):
    train:                      # keys of configs/train/*.yaml, nested or dotted
      steps: 4000
      model: {g_channels: 32}
    evaluate: {n_per_class: 500}
    export: {n_per_class: 1000, confidence: 0.8}
    benchmark:                  # keys of configs/benchmark/*.yaml
      seeds: 5
      classifier.epochs: 40
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from medgan.configio import bounded, load_config
from medgan.errors import MedganError

__all__ = ["EvaluateSection", "ExportSection", "RunConfig", "load_run_config"]

ExportFormatChoice = Literal["auto", "png", "npz", "nifti", "dicom"]


@dataclass
class EvaluateSection:
    """Stage 3, ``medgan evaluate`` on a fresh draw from the trained generator.

    Args:
        n_per_class: synthetic samples per class that are measured.
        seed: the sampling seed of that draw, of the metrics and of the domain feature net.
        arch: the domain feature net (``cnn``, ``resnet10``, ``resnet18``, ``densenet121``); it is
            also the classifier of the export's quality gate.
        feature_epochs: its training epochs when it is not cached yet.
        k: the neighbour count of precision / recall / density / coverage.
        c2st_folds: cross-validation folds of the two-sample CNN.
        c2st_steps: at least this many optimisation steps per C2ST fold.
    """

    n_per_class: int = bounded(200, ge=1)
    seed: int = bounded(12345, ge=0)
    arch: Literal["cnn", "resnet10", "resnet18", "densenet121"] = "cnn"
    feature_epochs: int = bounded(20, ge=1)
    k: int = bounded(3, ge=1)
    c2st_folds: int = bounded(5, ge=2)
    c2st_steps: int = bounded(300, ge=0)


@dataclass
class ExportSection:
    """Stage 4, the quality-gated synthetic set.

    Args:
        n_per_class: candidates drawn per class before the gate; ``null`` draws as many as the
            largest class of the real training split has.
        format: ``png``, ``npz``, ``nifti`` or ``dicom``; ``auto`` is PNG for images, NIfTI for volumes.
        seed: the sampling seed (with the manifest's sample index, it regenerates every sample).
        truncation: latent truncation (``null`` = off).
        memorisation_percentile: a candidate closer to a training image than this percentile of the
            real test images' distances is a likely copy and is dropped (as in the memorisation audit).
        confidence: a candidate is kept only if the real-data classifier gives its class at least this
            probability (0.5: with two classes, it must rank the candidate's class first); the rule is
            :func:`medgan.metrics.curation.curate`, as in the benchmark's curated arm (whose default is 0.8).
    """

    n_per_class: int | None = bounded(None, ge=1)
    format: ExportFormatChoice = "auto"
    seed: int = bounded(0, ge=0)
    truncation: float | None = bounded(None, gt=0)
    memorisation_percentile: float = bounded(1.0, gt=0, lt=100)
    confidence: float = bounded(0.5, ge=0, le=1)


@dataclass
class RunConfig:
    """Everything ``medgan run`` lets a YAML change. Keys are exactly these fields.

    Args:
        seed: seeds the split, the GAN and the benchmark's data draw.
        preprocess: fields of :class:`medgan.data.preprocess.PreprocessOptions` (``fit``, ``window``,
            ``spacing``, ``slices``, ``n_slices``, ``channels``, ``val_frac``, ``test_frac``); the
            size is ``--size``.
        train: overrides of the derived training config (the keys of ``configs/train/*.yaml``).
        evaluate: stage 3's settings.
        export: stage 4's settings.
        benchmark: overrides of the derived benchmark config (the keys of ``configs/benchmark/*.yaml``).
    """

    seed: int = bounded(0, ge=0)
    preprocess: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    evaluate: EvaluateSection = field(default_factory=EvaluateSection)
    export: ExportSection = field(default_factory=ExportSection)
    benchmark: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        for key in ("size", "seed"):
            if key in self.preprocess:
                raise MedganError(
                    f"config key 'preprocess.{key}' is set by medgan run (--size, and the top-level "
                    "'seed'); remove it"
                )
        for section, keys in (
            ("train", ("data", "data_size", "out")),
            ("benchmark", ("data", "data_size", "out")),
        ):
            given = getattr(self, section)
            for key in keys:
                if key in given:
                    raise MedganError(f"config key '{section}.{key}' is set by medgan run; remove it")


def load_run_config(path: str | Path | None) -> RunConfig:
    """Read a ``medgan run --config`` YAML (``None``: every default).

    Raises:
        MedganError: an unreadable file, an unknown key (a training key at the top level is pointed
            to the ``train:`` section) or a wrong type.
    """
    try:
        return load_config(RunConfig, path)
    except MedganError as exc:
        from medgan.training.config import TrainConfig

        text = str(exc)
        train_keys = {f.name for f in fields(TrainConfig)} - {f.name for f in fields(RunConfig)}
        for key in sorted(train_keys):
            if f"unknown config key '{key}'" in text:
                raise MedganError(
                    f"{text.split(' (allowed')[0]}: training keys go under 'train:' "
                    f"(e.g. train: {{{key}: ...}})",
                    path,
                ) from None
        raise
